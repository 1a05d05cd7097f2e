/**
 * The node report: `StaticRouteNodeStatus`, one cluster-scoped object per node, named after the node and written only
 * by that node's agent (deploy/crd-report.yaml). It holds the node's outcome for every StaticRoute it knows; the
 * aggregator reads all reports and writes each StaticRoute's status from them.
 *
 * Entries are kept small (the report holds one per StaticRoute, and etcd limits an object to about 1.5 MB): the
 * message is left out when the state says everything (Applied, Removed).
 */
import type { GatewayState } from './gateway-health.js';
import type { NodeOutcome, RouteState } from './status.js';

export const REPORT_PLURAL = 'staticroutenodestatuses';
export const REPORT_KIND = 'StaticRouteNodeStatus';
/** The field of `status` holding the entries (by StaticRoute name). */
export const REPORT_ENTRIES_FIELD = 'staticRoutes';

/** A node's state for one StaticRoute: the route states, or `Removed` once a deleted object's routes are gone. */
export type ReportState = RouteState | 'Removed';

/** One entry of a node report: `status.staticRoutes.<name>`. */
export interface ReportEntry {
  /** The StaticRoute's uid: an entry about an older namesake is not about this object. */
  uid: string;
  /** The generation the entry reports on. */
  generation?: number;
  state: ReportState;
  /** Why the state is not Applied. */
  message?: string;
  /** Routes of this object installed on the node. */
  routes: number;
  /** Its health-checked gateways that are Unreachable from this node; absent when none. */
  unreachableGateways?: string[];
}

/** One gateway this node probes: `status.gateways.<address>`. */
export interface GatewayReport {
  state: GatewayState;
  /** When the state began (RFC 3339). */
  since?: string;
  /** Why, for Unreachable (e.g. no neighbour reply). */
  reason?: string;
}

/** What the report needs of the prober's view of one gateway (adapters/gateway-prober.ts). */
export interface ProbedGateway {
  state: GatewayState;
  since?: string;
  probed: boolean;
  reason?: string;
}

/** `status.gatewayHealthCheck`: the node's default for StaticRoutes that do not say (GATEWAY_HEALTH_CHECK). */
export type GatewayHealthDefault = 'Enabled' | 'Disabled';

/** Counts a user reads with `kubectl get srns` (printer columns), written with every report write. */
export interface ReportSummary {
  /** StaticRoutes the node reports on. */
  staticRoutes: number;
  /** Of those, the ones Failed, Refused or in Conflict on this node. */
  notReady: number;
  /** Routes of the operator installed on the node. */
  routes: number;
}

/** `status` of a StaticRouteNodeStatus. */
export interface NodeReportStatus {
  heartbeatTime?: string;
  summary?: ReportSummary;
  /** The gateways this node probes, by address (null: no longer probed). */
  gateways?: Record<string, GatewayReport | null>;
  gatewayHealthCheck?: GatewayHealthDefault;
  staticRoutes?: Record<string, ReportEntry | null>;
}

/** A node report as read from the API. */
export interface NodeReport {
  metadata: { name: string; uid?: string; deletionTimestamp?: string };
  status?: NodeReportStatus;
}

/**
 * Longest message an entry carries (the report CRD allows 2048): a longer one would make the API server refuse the
 * whole report, every other entry of the node included.
 */
export const MAX_ENTRY_MESSAGE = 1024;

function bounded(message: string): string {
  return message.length <= MAX_ENTRY_MESSAGE ? message : `${message.slice(0, MAX_ENTRY_MESSAGE - 1)}…`;
}

/** The entry for an outcome of a live object. */
export function entryFromOutcome(uid: string, generation: number | undefined, outcome: NodeOutcome): ReportEntry {
  const entry: ReportEntry = { uid, state: outcome.state, routes: outcome.routes };
  if (generation !== undefined) entry.generation = generation;
  // An Applied entry carries a message only when there is more to say than the count (a warning, gateway health).
  const unreachable = outcome.unreachableGateways ?? [];
  if (outcome.state !== 'Applied' || outcome.message.includes('; warning: ') || unreachable.length > 0) {
    entry.message = bounded(outcome.message);
  }
  if (unreachable.length > 0) entry.unreachableGateways = [...unreachable];
  return entry;
}

/**
 * `status.gateways` of the report: the probed gateways (those off the node's connected subnets are not probed and
 * not listed), and null for the ones listed before that are no longer probed (a merge patch keeps absent keys).
 *
 * @param listed addresses this agent listed so far; updated in place
 */
export function gatewaysField(
  snapshot: ReadonlyMap<string, ProbedGateway>,
  listed: Set<string>,
): Record<string, GatewayReport | null> {
  const result: Record<string, GatewayReport | null> = {};
  for (const [address, health] of [...snapshot].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!health.probed) continue;
    const report: GatewayReport = { state: health.state };
    if (health.since !== undefined) report.since = health.since;
    if (health.reason !== undefined && health.state !== 'Reachable') report.reason = health.reason;
    result[address] = report;
  }
  for (const address of listed) if (!(address in result)) result[address] = null;
  listed.clear();
  for (const address of Object.keys(result)) if (result[address] !== null) listed.add(address);
  return result;
}

/**
 * The entry of an object being deleted: `Removed` once none of its routes is left on the node, otherwise `Failed`
 * with the destinations that could not be removed.
 *
 * @param undeleted destination -> error, for this object's destinations whose removal failed
 */
export function entryForDeletion(
  uid: string,
  generation: number | undefined,
  undeleted: ReadonlyMap<string, string>,
): ReportEntry {
  const entry: ReportEntry = { uid, state: 'Removed', routes: 0 };
  if (generation !== undefined) entry.generation = generation;
  if (undeleted.size === 0) return entry;
  const details = [...undeleted].slice(0, 5).map(([destination, error]) => `${destination}: ${error}`);
  return {
    ...entry,
    state: 'Failed',
    routes: undeleted.size,
    message: bounded(
      `cannot remove routes: ${details.join('; ')}${undeleted.size > 5 ? `; and ${undeleted.size - 5} more` : ''}`,
    ),
  };
}

/** The printer-column counts of a report. */
export function summarizeReport(entries: ReadonlyMap<string, ReportEntry>): ReportSummary {
  let notReady = 0;
  let routes = 0;
  for (const entry of entries.values()) {
    routes += entry.routes;
    if (entry.state === 'Failed' || entry.state === 'Refused' || entry.state === 'Conflict') notReady++;
  }
  return { staticRoutes: entries.size, notReady, routes };
}
