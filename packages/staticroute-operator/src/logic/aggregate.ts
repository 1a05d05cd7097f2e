/**
 * The aggregator's decisions for one StaticRoute, from the object, the cluster's Nodes and every node's report: the
 * status summary users read, whether the aggregator's finalizer is added, kept or released, and which Event a
 * transition deserves. Pure: the aggregator's controller reads the caches, calls {@link aggregate} and writes.
 *
 * Status layout (all under `.status`, written by the aggregator only):
 * - `ready`: `"<applied>/<selected>"` (printer column READY), or `"Terminating <removed>/<waited>"` while deleting;
 * - `observedGeneration`: the generation the summary is about;
 * - `conditions`: `Ready` and `Conflict`, and `GatewaysReachable` when some selected node health-checks the object's
 *   gateways (False names each unreachable gateway once: from how many nodes, which, and what it did to the routes);
 * - `unreachableGateways`: the gateways Unreachable from at least one node (what Events compare, see
 *   {@link gatewayTransition}); absent when the object is not health-checked;
 * - `notReady`: the nodes that are not Applied, grouped by state and message: a count and the first few node names
 *   per group, so that `kubectl describe` reads in one screen whatever the node count.
 */
import { selectorMatches } from './label-selector.js';
import { KOPF_FINALIZER } from './migration.js';
import type { GatewayHealthDefault, ReportEntry } from './report.js';
import { gatewayHealthChecked, parseRouteSpec, type ParsedRouteSpec, type StaticRouteObject } from './spec.js';
import type { StatusCondition } from './status.js';

/** The aggregator's finalizer: under its own subdomain, so that no node name can collide with it. */
export const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';
/** Prefix of the finalizers the per-node design (before the aggregator) put on StaticRoutes, one per node. */
export const LEGACY_NODE_FINALIZER_PREFIX = 'staticroute.opkit.dev/';

/** Groups listed in `status.notReady` at most, and nodes named per group. */
const MAX_GROUPS = 5;
const NODES_PER_GROUP = 3;
/** Node names longer than this are abbreviated in summaries (they can be 253 characters). */
const MAX_NODE_NAME = 40;

/** One node's report as the aggregator sees it. */
export interface NodeReportView {
  /** This node's entry for the object's name (any uid). */
  entry: ReportEntry | undefined;
  /** When the node's agent last wrote its report (ms since the epoch). */
  heartbeatAt: number | undefined;
  /** The node's default for objects that do not say; absent: an agent without gateway health (it checks nothing). */
  gatewayHealthCheck?: GatewayHealthDefault;
}

/** Inputs of {@link aggregate}. */
export interface AggregateInput {
  object: StaticRouteObject;
  /** Labels of every existing Node (not being deleted), by name. */
  nodes: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Reports by node name (nodes without a report have no agent running). */
  reports: ReadonlyMap<string, NodeReportView>;
  now: number;
  /** An agent whose report is older than this is silent. */
  silentAfterMs: number;
  /** How long a deletion waits for silent agents before it is released without them. */
  deletionGraceMs: number;
}

/** A group of not-ready nodes with the same state and message. */
export interface NotReadyGroup {
  state: string;
  message: string;
  count: number;
  /** The first few nodes (names abbreviated). */
  nodes: string[];
}

/** The status fields the aggregator owns. */
export interface AggregateStatus {
  ready: string;
  observedGeneration?: number;
  conditions: StatusCondition[];
  notReady: NotReadyGroup[];
  /** Gateways Unreachable from at least one node, in the parsed spec's order; only on health-checked objects. */
  unreachableGateways?: string[];
}

/** What to write and post for one StaticRoute. */
export interface AggregateDecision {
  status: AggregateStatus;
  /** `add`: put the finalizer on; `release`: take it off (deletion complete); `keep`: leave as is. */
  finalizer: 'add' | 'release' | 'keep';
  /**
   * Finalizers of earlier versions (the per-node ones, the seed's Kopf one): dropped together with the aggregator's
   * own being added, or with its release.
   */
  legacyFinalizers: string[];
  /** While deleting: the nodes still waited for. */
  waitingFor: string[];
  /** While deleting: silent nodes given up on (a Warning Event names them). */
  givenUp: string[];
  /** Run again after this delay (a silent node's grace ends), when nothing else triggers a run earlier. */
  requeueAfterMs?: number;
}

type NodeState = { node: string; state: string; message: string };

/** A node name short enough for summaries: the start and the end of a long one. */
export function abbreviateNode(name: string): string {
  if (name.length <= MAX_NODE_NAME) return name;
  return `${name.slice(0, 24)}…${name.slice(-(MAX_NODE_NAME - 25))}`;
}

function condition(
  type: StatusCondition['type'],
  status: StatusCondition['status'],
  reason: string,
  message: string,
  input: AggregateInput,
): StatusCondition {
  const previous = ((input.object.status ?? {}) as { conditions?: StatusCondition[] }).conditions?.find(
    (item) => item.type === type,
  );
  const lastTransitionTime =
    previous && previous.status === status
      ? previous.lastTransitionTime
      : new Date(input.now).toISOString().replace(/\.\d+Z$/, 'Z');
  const result: StatusCondition = { type, status, reason, message, lastTransitionTime };
  if (input.object.metadata.generation !== undefined) result.observedGeneration = input.object.metadata.generation;
  return result;
}

/** Groups not-ready nodes by state and message, largest group first, bounded. */
export function groupNotReady(states: readonly NodeState[]): NotReadyGroup[] {
  const groups = new Map<string, NotReadyGroup>();
  for (const { node, state, message } of [...states].sort((a, b) => (a.node < b.node ? -1 : 1))) {
    const key = `${state}\n${message}`;
    let group = groups.get(key);
    if (!group) {
      group = { state, message, count: 0, nodes: [] };
      groups.set(key, group);
    }
    group.count++;
    if (group.nodes.length < NODES_PER_GROUP) group.nodes.push(abbreviateNode(node));
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || (a.state < b.state ? -1 : 1)).slice(0, MAX_GROUPS);
}

/** One line per group: `Failed on 12 nodes (n1, n2, n3, ...): message`. */
function describeGroups(groups: readonly NotReadyGroup[], total: number): string {
  const lines = groups.map((group) => {
    const more = group.count > group.nodes.length ? ', ...' : '';
    const where = `${group.count} node${group.count === 1 ? '' : 's'} (${group.nodes.join(', ')}${more})`;
    return `${group.state} on ${where}${group.message ? `: ${group.message}` : ''}`;
  });
  const listed = groups.reduce((sum, group) => sum + group.count, 0);
  if (listed < total) lines.push(`and ${total - listed} more nodes`);
  return lines.join('; ');
}

/** The state of one selected node for the object's current generation. */
function nodeState(object: StaticRouteObject, node: string, report: NodeReportView | undefined): NodeState {
  if (!report) return { node, state: 'Pending', message: 'no agent has reported from this node' };
  const entry = report.entry;
  if (!entry || entry.uid !== object.metadata.uid) return { node, state: 'Pending', message: 'not reported yet' };
  if (object.metadata.generation !== undefined && entry.generation !== object.metadata.generation) {
    return { node, state: 'Pending', message: 'reported an older generation' };
  }
  return { node, state: entry.state, message: entry.message ?? '' };
}

function selectedNodes(input: AggregateInput): string[] {
  const parsed = parseRouteSpec(input.object.spec);
  const names = [...input.nodes.keys()].sort();
  // An invalid spec is refused by every node: count them all, so READY shows 0/N rather than hide the object.
  if (!parsed.ok) return names;
  return names.filter((name) => selectorMatches(parsed.spec.nodeSelector, input.nodes.get(name) ?? {}));
}

/** Decides the status, finalizer and deletion progress of one StaticRoute (see the module comment). */
export function aggregate(input: AggregateInput): AggregateDecision {
  const { object } = input;
  const finalizers = object.metadata.finalizers ?? [];
  const legacyFinalizers = finalizers.filter(
    (name) =>
      (name.startsWith(LEGACY_NODE_FINALIZER_PREFIX) && name !== AGGREGATOR_FINALIZER) || name === KOPF_FINALIZER,
  );
  const holds = finalizers.includes(AGGREGATOR_FINALIZER);
  return object.metadata.deletionTimestamp
    ? deletionDecision(input, holds, legacyFinalizers)
    : liveDecision(input, holds, legacyFinalizers);
}

function liveDecision(input: AggregateInput, holds: boolean, legacyFinalizers: string[]): AggregateDecision {
  const { object } = input;
  const selected = selectedNodes(input);
  const states = selected.map((node) => nodeState(object, node, input.reports.get(node)));
  const notReadyStates = states.filter((item) => item.state !== 'Applied');
  const groups = groupNotReady(notReadyStates);
  const applied = states.length - notReadyStates.length;
  let ready: StatusCondition;
  if (selected.length === 0) {
    ready = condition('Ready', 'False', 'NoNodeSelected', 'spec.nodeSelector selects no node', input);
  } else if (notReadyStates.length === 0) {
    ready = condition('Ready', 'True', 'Applied', `routes applied on all ${selected.length} selected nodes`, input);
  } else {
    const reason = (['Failed', 'Refused', 'Conflict'] as const).find((state) =>
      notReadyStates.some((item) => item.state === state),
    );
    ready = condition('Ready', 'False', reason ?? 'Pending', describeGroups(groups, notReadyStates.length), input);
  }
  const conflicted = states.filter((item) => item.state === 'Conflict');
  const conflict =
    conflicted.length > 0
      ? condition(
          'Conflict',
          'True',
          'DestinationConflict',
          describeGroups(groupNotReady(conflicted), conflicted.length),
          input,
        )
      : condition('Conflict', 'False', 'NoConflict', 'no destination is claimed by another StaticRoute', input);
  const status: AggregateStatus = {
    ready: `${applied}/${selected.length}`,
    conditions: [ready, conflict],
    notReady: groups,
  };
  const gateways = gatewaysReachable(input, selected);
  if (gateways) {
    status.conditions.push(gateways.condition);
    status.unreachableGateways = gateways.unreachable;
  }
  if (object.metadata.generation !== undefined) status.observedGeneration = object.metadata.generation;
  return { status, finalizer: holds ? 'keep' : 'add', legacyFinalizers, waitingFor: [], givenUp: [] };
}

function deletionDecision(input: AggregateInput, holds: boolean, legacyFinalizers: string[]): AggregateDecision {
  const { object, now } = input;
  const uid = object.metadata.uid;
  const deletedAt = Date.parse(object.metadata.deletionTimestamp ?? '') || now;
  // Waited for: every existing node with an agent (a report) that is selected or still reports routes of this object.
  const selected = new Set(selectedNodes(input));
  const waitingFor: string[] = [];
  const givenUp: string[] = [];
  let graceEndsIn: number | undefined;
  let removed = 0;
  let waited = 0;
  for (const [node, report] of [...input.reports].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!input.nodes.has(node)) continue;
    const entry = report.entry?.uid === uid ? report.entry : undefined;
    if (!selected.has(node) && !(entry && entry.routes > 0)) continue;
    waited++;
    if (entry?.state === 'Removed') {
      removed++;
      continue;
    }
    // A node is given up on once it is silent and the grace has passed: whichever comes last. A node that is live
    // now may fall silent without any report changing, so the decision names the time to look again in any case.
    const silentAt =
      report.heartbeatAt === undefined ? Number.NEGATIVE_INFINITY : report.heartbeatAt + input.silentAfterMs;
    const giveUpIn = Math.max(silentAt, deletedAt + input.deletionGraceMs) - now;
    if (giveUpIn <= 0) {
      givenUp.push(node);
      continue;
    }
    graceEndsIn = Math.min(graceEndsIn ?? Number.POSITIVE_INFINITY, Math.max(giveUpIn, 1));
    waitingFor.push(node);
  }
  const pending = waitingFor.map((node) => {
    const entry = input.reports.get(node)?.entry;
    const state = entry !== undefined && entry.uid === uid && entry.state === 'Failed' ? 'Failed' : 'Removing';
    return { node, state, message: state === 'Failed' ? (entry?.message ?? '') : 'routes not removed yet' };
  });
  const message =
    waitingFor.length === 0
      ? 'routes removed from every node'
      : `waiting for ${waitingFor.length} node(s) to remove the routes: ${describeGroups(groupNotReady(pending), pending.length)}`;
  const ready = condition('Ready', 'False', 'Deleting', message, input);
  const previousConflict = ((object.status ?? {}) as { conditions?: StatusCondition[] }).conditions?.find(
    (item) => item.type === 'Conflict',
  );
  const status: AggregateStatus = {
    ready: `Terminating ${removed}/${waited}`,
    conditions: previousConflict ? [ready, previousConflict] : [ready],
    notReady: groupNotReady(pending),
  };
  if (object.metadata.generation !== undefined) status.observedGeneration = object.metadata.generation;
  const done = waitingFor.length === 0;
  return {
    status,
    // Objects of earlier versions held only by per-node or Kopf finalizers are released the same way.
    finalizer: done && (holds || legacyFinalizers.length > 0) ? 'release' : 'keep',
    legacyFinalizers,
    waitingFor,
    givenUp: done ? givenUp : [],
    ...(graceEndsIn !== undefined ? { requeueAfterMs: graceEndsIn } : {}),
  };
}

/** What an unreachable gateway did to the object's routes on a node (the words after the colon in the condition). */
function healthEffect(spec: ParsedRouteSpec, unreachable: readonly string[]): string {
  const allDown = spec.gateways.every((gateway) => unreachable.includes(gateway));
  if (!allDown) return 'withdrawn from ECMP';
  if (spec.gatewayHealth.whenAllDown === 'Withdraw')
    return 'all gateways down, routes withdrawn (whenAllDown: Withdraw)';
  return spec.gateways.length === 1 ? 'the only gateway, routes kept' : 'all gateways down, routes kept';
}

/**
 * The `GatewaysReachable` condition, when at least one selected node health-checks the object's gateways (its
 * `spec.gatewayHealth.check`, else the node's default). False lists each unreachable gateway once per effect, with how
 * many of the checking nodes cannot reach it and the first few of them, so the message stays one line at 500 nodes:
 * `10.116.0.12 unreachable from 3/3 nodes (node-1, node-2, node-3): withdrawn from ECMP`.
 */
export function gatewaysReachable(
  input: AggregateInput,
  selected: readonly string[],
): { condition: StatusCondition; unreachable: string[] } | undefined {
  const parsed = parseRouteSpec(input.object.spec);
  if (!parsed.ok) return undefined;
  const spec = parsed.spec;
  const checking = selected.filter((node) => {
    // A report without the node's default comes from an agent that does not check gateways at all.
    const byDefault = input.reports.get(node)?.gatewayHealthCheck;
    return byDefault !== undefined && gatewayHealthChecked(spec, byDefault === 'Enabled');
  });
  if (checking.length === 0) return undefined;
  const groups = new Map<string, { gateway: string; effect: string; nodes: string[] }>();
  for (const node of checking) {
    const entry = input.reports.get(node)?.entry;
    if (!entry || entry.uid !== input.object.metadata.uid) continue;
    const unreachable = (entry.unreachableGateways ?? []).filter((gateway) => spec.gateways.includes(gateway));
    if (unreachable.length === 0) continue;
    const effect = healthEffect(spec, unreachable);
    for (const gateway of unreachable) {
      const key = `${gateway}\n${effect}`;
      const group = groups.get(key) ?? { gateway, effect, nodes: [] };
      group.nodes.push(node);
      groups.set(key, group);
    }
  }
  if (groups.size === 0) {
    const message = `no gateway unreachable from the ${checking.length} node${checking.length === 1 ? '' : 's'} checking them`;
    return { condition: condition('GatewaysReachable', 'True', 'Reachable', message, input), unreachable: [] };
  }
  const sorted = [...groups.values()].sort(
    (a, b) => b.nodes.length - a.nodes.length || (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0),
  );
  const lines = sorted.slice(0, MAX_GROUPS).map(({ gateway, effect, nodes }) => {
    const names = nodes.slice(0, NODES_PER_GROUP).map(abbreviateNode).join(', ');
    const more = nodes.length > NODES_PER_GROUP ? ', ...' : '';
    return `${gateway} unreachable from ${nodes.length}/${checking.length} nodes (${names}${more}): ${effect}`;
  });
  if (sorted.length > MAX_GROUPS) lines.push(`and ${sorted.length - MAX_GROUPS} more`);
  const unreachable = spec.gateways.filter((gateway) => sorted.some((group) => group.gateway === gateway));
  return {
    condition: condition('GatewaysReachable', 'False', 'GatewayUnreachable', lines.join('; '), input),
    unreachable,
  };
}

/** An Event the aggregator posts for a change of `GatewaysReachable`. */
export interface GatewayEvent {
  type: 'Normal' | 'Warning';
  reason: 'GatewayUnreachable' | 'GatewayReachable';
  message: string;
}

/**
 * The Event a change of an object's gateway health deserves, from the stored status to the one written: a Warning
 * when a gateway becomes unreachable (the condition turns False, or another gateway joins the unreachable ones), a
 * Normal on recovery (back to True). Nodes detecting the same gateway one after the other change the message's
 * counts, not the gateways: no Event for that, so there is one per object transition, never one per node.
 */
export function gatewayTransition(
  before: { condition?: StatusCondition; unreachable?: readonly string[] },
  after: { condition?: StatusCondition; unreachable?: readonly string[] },
): GatewayEvent | undefined {
  const next = after.condition;
  if (!next) return undefined;
  if (next.status === 'False') {
    const known = before.condition?.status === 'False' ? (before.unreachable ?? []) : [];
    const added = (after.unreachable ?? []).filter((gateway) => !known.includes(gateway));
    return added.length > 0 ? { type: 'Warning', reason: 'GatewayUnreachable', message: next.message } : undefined;
  }
  if (before.condition?.status === 'False') {
    return { type: 'Normal', reason: 'GatewayReachable', message: `every gateway reachable again: ${next.message}` };
  }
  return undefined;
}
