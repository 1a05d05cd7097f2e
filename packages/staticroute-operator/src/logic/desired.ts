/**
 * Desired routes for one node, computed from every StaticRoute at once (level-based): which objects select the
 * node, which destinations are safe, and which object wins a destination two objects ask for.
 *
 * Conflict rule: for one destination the winner is the object with the oldest `creationTimestamp`, ties broken by
 * name. Objects asking for exactly the same next hops are not in conflict: they share the route, so deleting one of
 * them leaves it in place. An object being deleted claims nothing, so deleting the winner hands the destination to
 * the next claimant in the same reconcile.
 *
 * Safety is judged per object, before claims: a destination's refusal depends on the object's own gateways, its
 * allow-covering annotation and its whole destination set (destinations that add up to a default route), never on
 * other objects.
 */
import { formatPrefix, sameAddresses, type Prefix } from './ip.js';
import { selectorMatches } from './label-selector.js';
import { lastHandledGateways } from './migration.js';
import { allowCoveringOf, safetyCheck, type SafetyPolicy } from './safety.js';
import { parseRouteSpec, type StaticRouteObject } from './spec.js';

/** The node the operator instance runs on. */
export interface NodeView {
  name: string;
  labels: Readonly<Record<string, string>>;
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
      list.push({ object, destination, gateways: parsed.spec.gateways });
      claims.set(key, list);
    }
  }

  const routes = new Map<string, DesiredRoute>();
  for (const key of [...claims.keys()].sort()) {
    const list = (claims.get(key) as Claim[]).sort((a, b) => compareClaimants(a.object, b.object));
    const winner = list[0] as Claim;
    const route: DesiredRoute = {
      key,
      destination: winner.destination,
      gateways: winner.gateways,
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
      if (claim !== winner) route.sharedWith.push(claim.object.metadata.name);
      assessment.claimed.push(key);
      const seed = lastHandledGateways(claim.object.metadata.annotations);
      if (seed && !route.seedGateways.some((known) => sameAddresses(known, seed))) route.seedGateways.push(seed);
    }
    routes.set(key, route);
  }
  return { routes, assessments };
}
