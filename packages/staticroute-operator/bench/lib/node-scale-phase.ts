/**
 * One phase of the node-scale benchmark (node-scale.ts): a change of some StaticRoutes made through the API, the
 * wait until every node's kernel and the aggregator's status show it, and what the API server counted meanwhile,
 * from the quiet before the change to the quiet after it.
 */
import { summarize, type Summary } from '@opkit/testbed/bench';
import { inParallel, isReadyEverywhere, STATIC_ROUTES_PATH, type BenchApi, type StaticRouteStatus } from './api.js';
import {
  requestsBetween,
  waitForQuiet,
  watchBytesBetween,
  writeFigures,
  type Quiet,
  type QuietOptions,
} from './apiserver-metrics.js';
import { sleep } from './report.js';
import { waitForChanges, type ExpectedChange, type RouteLog } from './route-log.js';

export const GATEWAY_A = '10.116.0.5';
export const GATEWAY_B = '10.116.0.12';
/** The release's ROUTE_PROTOCOL. */
export const OURS = 201;
/** Label of the objects of one burst (listed together while waiting for their status). */
const SET_LABEL = 'bench.opkit.dev/set';

/** What every phase needs. */
export interface PhaseContext {
  api: BenchApi;
  logs: RouteLog[];
  nodes: number;
  timeoutMs: number;
  quiet: QuietOptions;
  /** The agents' report heartbeat period (to tell how many heartbeats a window holds on average). */
  heartbeatMs: number;
}

/** A StaticRoute of a phase: one destination. */
export interface PhaseObject {
  name: string;
  dst: string;
}

/** The change a phase makes. */
export type PhaseChange =
  | { kind: 'create'; objects: readonly PhaseObject[]; gateway: string; concurrency?: number }
  | { kind: 'gateway'; objects: readonly PhaseObject[]; from: string; gateway: string; concurrency?: number }
  | { kind: 'delete'; objects: readonly PhaseObject[]; gateway: string; concurrency?: number };

/** A phase's figures: the headline ones, and the detail for the JSON. */
export interface PhaseResult {
  staticRouteWrites: number;
  totalWrites: number;
  conflicts: number;
  throttled: number;
  routesAllNodesMs: number;
  readyAllNodesMs: number;
  watchBytes: number;
  detail: {
    objects: number;
    /** First request sent -> last response (the change "accepted" is the last response). */
    issueMs: number;
    /** Accepted -> this node's last expected kernel change, over nodes. */
    routesPerNodeMs: Summary;
    /** The same two, counted from the first request sent. */
    routesFromFirstSentMs: number;
    readyFromFirstSentMs: number;
    /** Mutating requests by category, and by response code. */
    byCategory: Record<string, number>;
    writeCodes: Record<string, number>;
    /** Agents' report GETs (one before each heartbeat write), and heartbeats expected in the window on average. */
    reportReads: number;
    expectedHeartbeats: number;
    watchBytesByResource: Record<string, number>;
    watchEvents: number;
    /** The accounting window: quiet before -> quiet after. */
    windowMs: number;
    /** Time spent waiting for quiet after convergence, and whether it came (else: the window ends at the timeout). */
    quietWaitMs: number;
    quietReached: boolean;
  };
}

/** Makes the change; resolves with when the first request was sent and the last one was answered. */
async function makeChange(
  api: BenchApi,
  change: PhaseChange,
  set: string,
): Promise<{ sentAt: number; acceptedAt: number }> {
  const sentAt = Date.now();
  let acceptedAt = 0;
  await inParallel(change.objects, change.concurrency ?? 1, async (object) => {
    let response;
    if (change.kind === 'create') {
      response = await api.createStaticRoute(
        object.name,
        { destinations: [object.dst], gateway: change.gateway },
        { [SET_LABEL]: set },
      );
    } else if (change.kind === 'gateway') {
      response = await api.patchSpec(object.name, { gateway: change.gateway });
    } else {
      response = await api.deleteStaticRoute(object.name);
    }
    acceptedAt = Math.max(acceptedAt, response.acceptedAt);
  });
  return { sentAt, acceptedAt };
}

/** The kernel changes every node must show. */
function expectedChanges(change: PhaseChange): ExpectedChange[] {
  return change.objects.flatMap((object): ExpectedChange[] => {
    if (change.kind === 'create') return [{ kind: 'add', dst: object.dst, gateways: change.gateway }];
    if (change.kind === 'delete') return [{ kind: 'delete', dst: object.dst, gateways: change.gateway }];
    return [
      { kind: 'delete', dst: object.dst, gateways: change.from },
      { kind: 'add', dst: object.dst, gateways: change.gateway },
    ];
  });
}

/**
 * Polls until the aggregator shows the change: READY N/N for the current generation of every object (one object:
 * GET every 25 ms; several: LIST by label every 100 ms), or every object gone for a delete. Resolves with the instant
 * the last poll's response arrived.
 */
async function waitForStatus(context: PhaseContext, change: PhaseChange, set: string): Promise<number> {
  const { api, nodes, timeoutMs } = context;
  const deadline = Date.now() + timeoutMs;
  const single = change.objects.length === 1 ? (change.objects[0] as PhaseObject) : undefined;
  let last = '';
  for (;;) {
    if (single) {
      const response = await api.request<StaticRouteStatus>('GET', `${STATIC_ROUTES_PATH}/${single.name}`);
      if (change.kind === 'delete' ? response.status === 404 : isReadyEverywhere(response.body, nodes)) {
        return response.acceptedAt;
      }
      last = JSON.stringify(response.body).slice(0, 600);
    } else {
      const selector = encodeURIComponent(`${SET_LABEL}=${set}`);
      const response = await api.call<{ items: StaticRouteStatus[] }>(
        'GET',
        `${STATIC_ROUTES_PATH}?labelSelector=${selector}`,
      );
      const { items } = response.body;
      const done =
        change.kind === 'delete'
          ? items.length === 0
          : items.length === change.objects.length && items.every((item) => isReadyEverywhere(item, nodes));
      if (done) return response.acceptedAt;
      const lagging = items.filter((item) => !isReadyEverywhere(item, nodes));
      last = `${items.length} listed, ${lagging.length} not ready, e.g. ${JSON.stringify(lagging[0] ?? null).slice(0, 600)}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the status: ${last}`);
    await sleep(single ? 25 : 100);
  }
}

/**
 * Runs one phase from `before` (the quiet snapshot the previous phase ended with): the change, the waits for the
 * kernels and the status, and the quiet after. Resolves with the figures and that last quiet.
 */
export async function runPhase(
  context: PhaseContext,
  before: Quiet,
  label: string,
  change: PhaseChange,
): Promise<{ result: PhaseResult; quiet: Quiet }> {
  const { api, logs, timeoutMs } = context;
  const set = label.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
  const marks = logs.map((log) => (log.poll(), log.events.length));
  // The status wait starts with the change: its first polls are made while the requests are still being answered.
  const made = makeChange(api, change, set);
  const [times, routesDoneAt, readyAt] = await Promise.all([
    made,
    made.then(() => waitForChanges(logs, marks, expectedChanges(change), OURS, timeoutMs)),
    made.then(() => waitForStatus(context, change, set)),
  ]);
  const convergedAt = Date.now();
  const after = await waitForQuiet(api, context.quiet);
  const requests = requestsBetween(before.snapshot, after.snapshot, before.own, after.own);
  const writes = writeFigures(requests);
  const watch = watchBytesBetween(before.snapshot, after.snapshot);
  const windowMs = after.snapshot.at - before.snapshot.at;
  const routesAllAt = Math.max(...routesDoneAt);
  const result: PhaseResult = {
    staticRouteWrites: writes.staticRouteWrites,
    totalWrites: writes.totalWrites,
    conflicts: writes.conflicts,
    throttled: writes.throttled,
    routesAllNodesMs: routesAllAt - times.acceptedAt,
    readyAllNodesMs: readyAt - times.acceptedAt,
    watchBytes: watch.total,
    detail: {
      objects: change.objects.length,
      issueMs: times.acceptedAt - times.sentAt,
      routesPerNodeMs: summarize(routesDoneAt.map((at) => at - times.acceptedAt)),
      routesFromFirstSentMs: routesAllAt - times.sentAt,
      readyFromFirstSentMs: readyAt - times.sentAt,
      byCategory: writes.byCategory,
      writeCodes: writes.writeCodes,
      reportReads: writes.reportReads,
      expectedHeartbeats: Number(((context.nodes * windowMs) / context.heartbeatMs).toFixed(2)),
      watchBytesByResource: watch.byResource,
      watchEvents: watch.events,
      windowMs,
      quietWaitMs: after.snapshot.at - convergedAt,
      quietReached: after.reached,
    },
  };
  console.log(
    `${label}: routes on all ${context.nodes} nodes ${result.routesAllNodesMs.toFixed(0)} ms, READY ` +
      `${result.readyAllNodesMs.toFixed(0)} ms after accepted; ${result.staticRouteWrites} StaticRoute writes, ` +
      `${result.totalWrites} in total ${JSON.stringify(writes.byCategory)}${after.reached ? '' : ' (quiet not reached)'}`,
  );
  return { result, quiet: after };
}
