/**
 * Desired routes for one node, computed from every StaticRoute at once (level-based): which objects select the
 * node, which destinations are safe, and which object wins a destination two objects ask for.
 *
 * Conflict rule: for one destination the winner is the object with the oldest `creationTimestamp`, ties broken by
 * name. Objects asking for exactly the same next hops are not in conflict: they share the route, so deleting one of
 * them leaves it in place. An object being deleted claims nothing, so deleting the winner hands the destination to
 * the next claimant in the same reconcile.
 *
 * Gateway health (optional, {@link GatewayHealthView}): the winner's next hops pass through `effectiveGateways` when the
 * winner is health-checked on this node: an Unreachable gateway leaves an ECMP route while another one is usable; when
 * all are Unreachable the route keeps its installed next hops, or is not desired at all with `whenAllDown: Withdraw`.
 * Claims and conflicts are decided on the configured next hops, so a gateway's health never changes who wins.
 *
 * Safety is judged per object, before claims: a destination's refusal depends on the object's own gateways, its
 * allow-covering annotation and its whole destination set (destinations that add up to a default route), never on
 * other objects.
 */
import { effectiveGateways, type GatewayState } from './gateway-health.js';
import { formatPrefix, sameAddresses, type Prefix } from './ip.js';
import { selectorMatches } from './label-selector.js';
import { lastHandledGateways } from './migration.js';
import { allowCoveringOf, safetyCheck, type SafetyPolicy } from './safety.js';
import { gatewayHealthChecked, parseRouteSpec, type ParsedRouteSpec, type StaticRouteObject } from './spec.js';

/** The node the operator instance runs on. */
export interface NodeView {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** What the desired-state computation needs to know of gateway health on this node. */
export interface GatewayHealthView {
  /** Whether objects without `spec.gatewayHealth.check` are checked (the agent's GATEWAY_HEALTH_CHECK). */
  checkByDefault: boolean;
  /** The prober's verdict on a gateway (`Unknown` when it has none). */
  stateOf(gateway: string): GatewayState;
  /** The next hops of our route at a destination as the table holds it now, if there is one. */
  installed?(key: string): readonly string[] | undefined;
}

/** What gateway health did to an object's routes on this node (absent from the assessment when nothing). */
export interface GatewayHealthEffect {
  /** Its configured gateways that are Unreachable here, in the parsed spec's order. */
  unreachable: string[];
  /** Routes of the object that lost next hops (installed through the gateways left). */
  withdrawnFrom: number;
  /** Routes kept on their last next hops because every gateway is Unreachable (`whenAllDown: Keep`). */
  keptAllDown: number;
  /** Routes removed because every gateway is Unreachable (`whenAllDown: Withdraw`). */
  removedAllDown: number;
}

/** One route this node should have. */
export interface DesiredRoute {
  /** Canonical destination, e.g. `34.160.111.145/32`: the route's identity. */
  key: string;
  destination: Prefix;
  /** Canonical next hops, sorted; more than one means an ECMP multipath route. */
  gateways: string[];
  /** The object that owns the destination (conflict winner). */
  owner: string;
  /** Other objects asking for exactly this route. */
  sharedWith: string[];
  /**
   * Next-hop sets a route installed by the seed operator may carry and still be adopted: the seed's last handled
   * gateway(s) of the owner and sharers (from Kopf's annotation).
   */
  seedGateways: string[][];
}

/** What this node makes of one StaticRoute before touching the kernel. */
export interface ObjectAssessment {
  name: string;
  generation?: number;
  /** True when the object is being deleted (it claims nothing). */
  deleting: boolean;
  /** Whether its nodeSelector selects this node. */
  selected: boolean;
  /** Spec problems; non-empty means the object is refused as a whole. */
  invalid: string[];
  /** Destinations refused by the safety rules. */
  refused: Array<{ destination: string; reason: string }>;
  /**
   * What is applied but worth telling the user: more destinations than the CRD admits (an object from before the
   * limit), unusable entries of the allow-covering annotation. Absent when nothing.
   */
  warnings?: string[];
  /** Destinations another object won. */
  conflicts: Array<{ destination: string; winner: string }>;
  /** Destinations whose route serves this object on this node (owned or shared). */
  claimed: string[];
  /**
   * The configured gateways, when the object is health-checked and routes something here (or had its routes withdrawn
   * while every gateway is down): what the prober must probe.
   */
  checkedGateways?: string[];
  /** What gateway health did to its routes here; absent when nothing. */
  gatewayHealth?: GatewayHealthEffect;
}

/** The desired state of one node. */
export interface DesiredState {
  routes: Map<string, DesiredRoute>;
  assessments: Map<string, ObjectAssessment>;
}

interface Claim {
  object: StaticRouteObject;
  destination: Prefix;
  gateways: string[];
  /** `spec.gatewayHealth` of the object when its gateways are health-checked on this node. */
  health?: ParsedRouteSpec['gatewayHealth'];
}

/** Orders claimants: oldest creationTimestamp first, then name. Objects without a timestamp sort last. */
export function compareClaimants(a: StaticRouteObject, b: StaticRouteObject): number {
  const at = a.metadata.creationTimestamp ? Date.parse(a.metadata.creationTimestamp) : Number.POSITIVE_INFINITY;
  const bt = b.metadata.creationTimestamp ? Date.parse(b.metadata.creationTimestamp) : Number.POSITIVE_INFINITY;
  if (at !== bt) return at < bt ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/**
 * Computes the routes `node` should carry and each object's assessment.
 * Pure and deterministic: the same objects and node always give the same result, whatever their order.
 */
export function computeDesiredState(
  objects: readonly StaticRouteObject[],
  node: NodeView,
  policy: SafetyPolicy,
  health?: GatewayHealthView,
): DesiredState {
  const assessments = new Map<string, ObjectAssessment>();
  const claims = new Map<string, Claim[]>();
  const check = safetyCheck(policy);
  for (const object of objects) {
    const assessment: ObjectAssessment = {
      name: object.metadata.name,
      generation: object.metadata.generation,
      deleting: Boolean(object.metadata.deletionTimestamp),
      selected: false,
      invalid: [],
      refused: [],
      conflicts: [],
      claimed: [],
    };
    assessments.set(assessment.name, assessment);
    const parsed = parseRouteSpec(object.spec);
    if (!parsed.ok) {
      assessment.invalid = parsed.problems;
      // An invalid selector cannot be evaluated; report the object on every node rather than hide it.
      assessment.selected = !assessment.deleting;
      continue;
    }
    assessment.selected = selectorMatches(parsed.spec.nodeSelector, node.labels);
    if (assessment.deleting || !assessment.selected) continue;
    const checked = health !== undefined && gatewayHealthChecked(parsed.spec, health.checkByDefault);
    if (checked) assessment.checkedGateways = parsed.spec.gateways;
    const allowCovering = allowCoveringOf(object.metadata.annotations);
    const warnings = [...(parsed.spec.warnings ?? []), ...allowCovering.problems];
    if (warnings.length > 0) assessment.warnings = warnings;
    const refusals = check(parsed.spec.destinations, {
      gateways: parsed.spec.gateways,
      allowCovering: allowCovering.prefixes,
    });
    for (const [index, destination] of parsed.spec.destinations.entries()) {
      const key = formatPrefix(destination);
      const reason = refusals[index];
      if (reason) {
        assessment.refused.push({ destination: key, reason });
        continue;
      }
      const list = claims.get(key) ?? [];
      list.push({
        object,
        destination,
        gateways: parsed.spec.gateways,
        ...(checked ? { health: parsed.spec.gatewayHealth } : {}),
      });
      claims.set(key, list);
    }
  }

  const routes = new Map<string, DesiredRoute>();
  const healthOf = health ? healthEffects(health) : undefined;
  for (const key of [...claims.keys()].sort()) {
    const list = (claims.get(key) as Claim[]).sort((a, b) => compareClaimants(a.object, b.object));
    const winner = list[0] as Claim;
    const effective = winner.health && healthOf ? healthOf(key, winner.gateways, winner.health) : undefined;
    const route: DesiredRoute = {
      key,
      destination: winner.destination,
      gateways: effective?.gateways ?? winner.gateways,
      owner: winner.object.metadata.name,
      sharedWith: [],
      seedGateways: [],
    };
    for (const claim of list) {
      const assessment = assessments.get(claim.object.metadata.name) as ObjectAssessment;
      if (claim !== winner && !sameAddresses(claim.gateways, winner.gateways)) {
        assessment.conflicts.push({ destination: key, winner: route.owner });
        continue;
      }
      if (effective?.outcome) recordHealth(assessment, effective.outcome, effective.unreachable);
      if (effective?.outcome === 'removed') continue;
      if (claim !== winner) route.sharedWith.push(claim.object.metadata.name);
      assessment.claimed.push(key);
      const seed = lastHandledGateways(claim.object.metadata.annotations);
      if (seed && !route.seedGateways.some((known) => sameAddresses(known, seed))) route.seedGateways.push(seed);
    }
    if (effective?.outcome !== 'removed') routes.set(key, route);
  }
  // Probe only gateways that route something here: not those of an object whose destinations are all refused or
  // lost to another object. A route withdrawn because every gateway is down still needs them probed to come back.
  for (const assessment of assessments.values()) {
    if (assessment.checkedGateways && assessment.claimed.length === 0 && !assessment.gatewayHealth?.removedAllDown) {
      delete assessment.checkedGateways;
    }
  }
  return { routes, assessments };
}

/** What health made of one route: its next hops, and what to tell (absent outcome: nothing happened). */
interface HealthDecision {
  gateways: string[];
  outcome?: 'withdrawn' | 'kept' | 'removed';
  unreachable: readonly string[];
}

/**
 * The effective next hops of health-checked routes. Decisions are shared between routes with the same configured and
 * installed next hops (10,000 destinations via two gateways share one array, as the parsed spec's does).
 */
function healthEffects(
  health: GatewayHealthView,
): (key: string, configured: string[], spec: ParsedRouteSpec['gatewayHealth']) => HealthDecision {
  const decisions = new Map<string, HealthDecision>();
  const unchanged = new WeakMap<string[], HealthDecision>();
  return (key, configured, spec) => {
    const unreachable = configured.filter((gateway) => health.stateOf(gateway) === 'Unreachable');
    if (unreachable.length === 0) {
      let decision = unchanged.get(configured);
      if (!decision) {
        decision = { gateways: configured, unreachable: [] };
        unchanged.set(configured, decision);
      }
      return decision;
    }
    const installed = health.installed?.(key);
    const id = `${configured.join(',')}|${installed?.join(',') ?? ''}|${spec.whenAllDown}|${unreachable.join(',')}`;
    let decision = decisions.get(id);
    if (!decision) {
      const result = effectiveGateways(configured, health.stateOf, {
        withdrawWhenAllDown: spec.whenAllDown === 'Withdraw',
        ...(installed ? { installed } : {}),
      });
      const allDown = unreachable.length === configured.length;
      decision = {
        gateways: result.gateways,
        unreachable,
        outcome: result.gateways.length === 0 ? 'removed' : allDown ? 'kept' : 'withdrawn',
      };
      decisions.set(id, decision);
    }
    return decision;
  };
}

function recordHealth(
  assessment: ObjectAssessment,
  outcome: NonNullable<HealthDecision['outcome']>,
  unreachable: readonly string[],
): void {
  const effect = (assessment.gatewayHealth ??= {
    unreachable: [],
    withdrawnFrom: 0,
    keptAllDown: 0,
    removedAllDown: 0,
  });
  // In the spec's (sorted) order: every claim of one object has the same configured gateways.
  for (const gateway of unreachable) if (!effect.unreachable.includes(gateway)) effect.unreachable.push(gateway);
  if (outcome === 'withdrawn') effect.withdrawnFrom++;
  else if (outcome === 'kept') effect.keptAllDown++;
  else effect.removedAllDown++;
}
