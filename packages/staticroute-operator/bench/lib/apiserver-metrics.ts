/**
 * The API server's own account of the load (GET /metrics as admin): `apiserver_request_total` (requests by verb,
 * group, resource, subresource and response code) and `apiserver_watch_events_sizes` (bytes of every watch event
 * written to every watcher, by resource). A benchmark takes a snapshot before and after a phase, subtracts its own
 * requests (counted by lib/api.ts with the same labels) and classifies the rest ({@link writeFigures}).
 */
import { parseRequestKey, requestKey, type BenchApi, type RequestCounts, type RequestKey } from './api.js';

/** Counters of the API server at one instant. */
export interface ApiServerSnapshot {
  at: number;
  requests: RequestCounts;
  /** `group/resource` -> bytes of watch events sent (sum of the histogram). */
  watchBytes: Map<string, number>;
  /** `group/resource` -> watch events sent. */
  watchEvents: Map<string, number>;
}

const SERIES =
  /^(apiserver_request_total|apiserver_watch_events_sizes_sum|apiserver_watch_events_total)\{(.*)\}\s+(\S+)$/;

function labelsOf(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [, key, value] of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[key as string] = value as string;
  }
  return labels;
}

function add(map: Map<string, number>, key: string, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

/** Parses the series the benchmarks use out of the API server's metrics text. */
export function parseApiServerMetrics(text: string, at = Date.now()): ApiServerSnapshot {
  const snapshot: ApiServerSnapshot = { at, requests: new Map(), watchBytes: new Map(), watchEvents: new Map() };
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_')) continue;
    const match = SERIES.exec(line);
    if (!match) continue;
    const labels = labelsOf(match[2] as string);
    const value = Number(match[3]);
    if (match[1] === 'apiserver_request_total') {
      // Dry runs store nothing: they are not writes.
      if (labels.dry_run) continue;
      const key: RequestKey = {
        verb: labels.verb ?? '',
        group: labels.group ?? '',
        resource: labels.resource ?? '',
        subresource: labels.subresource ?? '',
        code: labels.code ?? '',
      };
      add(snapshot.requests, requestKey(key), value);
    } else {
      // Labelled by resource since 1.32 (by kind before).
      const what = `${labels.group ?? ''}/${labels.resource ?? labels.kind ?? ''}`;
      add(match[1] === 'apiserver_watch_events_total' ? snapshot.watchEvents : snapshot.watchBytes, what, value);
    }
  }
  return snapshot;
}

export async function scrapeApiServer(api: BenchApi): Promise<ApiServerSnapshot> {
  const response = await api.request<string>('GET', '/metrics');
  if (response.status !== 200) throw new Error(`API server /metrics answered ${response.status}`);
  return parseApiServerMetrics(String(response.body), response.acceptedAt);
}

/** `after - before` per key (keys missing before count from 0). */
export function subtract(after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [key, value] of after) {
    const change = value - (before.get(key) ?? 0);
    if (change !== 0) delta.set(key, change);
  }
  return delta;
}

/** Requests the API server counted between two snapshots, minus the benchmark's own sent meanwhile. */
export function requestsBetween(
  before: ApiServerSnapshot,
  after: ApiServerSnapshot,
  ownBefore: RequestCounts,
  ownAfter: RequestCounts,
): Map<string, number> {
  const server = subtract(after.requests, before.requests);
  for (const [key, count] of subtract(ownAfter, ownBefore)) {
    const left = (server.get(key) ?? 0) - count;
    if (left === 0) server.delete(key);
    else server.set(key, left);
  }
  return server;
}

/** Verbs that change what is stored. */
export const MUTATING_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'DELETECOLLECTION', 'APPLY']);
export const STATIC_ROUTE_GROUP = 'networking.digitalocean.com';

/** What a request is, for the benchmarks' tallies. */
export function categoryOf(key: RequestKey): string {
  if (key.group === STATIC_ROUTE_GROUP && key.resource === 'staticroutes') {
    return key.subresource ? `staticroutes/${key.subresource}` : 'staticroutes';
  }
  if (key.group === STATIC_ROUTE_GROUP && key.resource === 'staticroutenodestatuses') return 'node reports';
  if (key.group === 'coordination.k8s.io' && key.resource === 'leases') return 'leases';
  // The API server's own endpoint reconciler (default/kubernetes), every 10 s: nothing of ours writes Endpoints.
  if (key.group === '' && key.resource === 'endpoints') return 'API server endpoints';
  if (key.resource === 'events') return 'events';
  return `${key.group || 'core'}/${key.resource}${key.subresource ? `/${key.subresource}` : ''}`;
}

/**
 * Writes that happen whatever the cluster does, on a clock: Lease renewals (the aggregator's leader Lease every 2 s,
 * the API server's own identity Lease every 10 s) and the API server's reconciliation of its own Endpoints. They are
 * left out of the total writes and of the quiet check, and counted apart.
 */
export const BACKGROUND_CATEGORIES = new Set(['leases', 'API server endpoints']);

/** Writes, conflicts and throttled requests among counted requests. */
export interface WriteFigures {
  /** Mutating requests on StaticRoutes (the object and its status subresource). */
  staticRouteWrites: number;
  /** Every mutating request except the background ones ({@link BACKGROUND_CATEGORIES}, counted in `byCategory`). */
  totalWrites: number;
  /** 409 on any verb, and 422 on patches (a JSON patch whose `test` failed). */
  conflicts: number;
  /** 429 on any verb (API Priority and Fairness turned the request away). */
  throttled: number;
  /** Mutating requests by category (`staticroutes`, `staticroutes/status`, `node reports`, `events`, `leases`, ...). */
  byCategory: Record<string, number>;
  /** Responses by code, of the mutating requests. */
  writeCodes: Record<string, number>;
  /**
   * GETs of node reports: an agent reads its report before each heartbeat write (and after a failed write). Heartbeats
   * land in a phase's window by chance (one per node per 60 s); each adds at most one report write.
   */
  reportReads: number;
}

export function writeFigures(requests: ReadonlyMap<string, number>): WriteFigures {
  const figures: WriteFigures = {
    staticRouteWrites: 0,
    totalWrites: 0,
    conflicts: 0,
    throttled: 0,
    byCategory: {},
    writeCodes: {},
    reportReads: 0,
  };
  for (const [text, count] of requests) {
    const key = parseRequestKey(text);
    if (key.code === '409' || (key.code === '422' && key.verb === 'PATCH')) figures.conflicts += count;
    if (key.code === '429') figures.throttled += count;
    const category = categoryOf(key);
    if (key.verb === 'GET' && category === 'node reports') figures.reportReads += count;
    if (!MUTATING_VERBS.has(key.verb)) continue;
    figures.byCategory[category] = (figures.byCategory[category] ?? 0) + count;
    figures.writeCodes[key.code] = (figures.writeCodes[key.code] ?? 0) + count;
    if (category.startsWith('staticroutes')) figures.staticRouteWrites += count;
    if (!BACKGROUND_CATEGORIES.has(category)) figures.totalWrites += count;
  }
  return figures;
}

/**
 * Bytes of watch events sent between two snapshots: the total (Leases aside: the API server's own informer sees its
 * identity Lease renewals) and by `group/resource`.
 */
export function watchBytesBetween(
  before: ApiServerSnapshot,
  after: ApiServerSnapshot,
): { total: number; byResource: Record<string, number>; events: number } {
  const delta = subtract(after.watchBytes, before.watchBytes);
  const events = [...subtract(after.watchEvents, before.watchEvents).values()].reduce((a, b) => a + b, 0);
  return {
    total: [...delta].reduce((sum, [what, bytes]) => (what === 'coordination.k8s.io/leases' ? sum : sum + bytes), 0),
    byResource: Object.fromEntries([...delta].sort((a, b) => b[1] - a[1])),
    events,
  };
}

/** Options of {@link waitForQuiet}. */
export interface QuietOptions {
  /** How long the write counters must hold still. Defaults to 2,000 ms. */
  quietMs?: number;
  /** Scrape interval. Defaults to 500 ms. */
  intervalMs?: number;
  /** Give up (and say so) after this long. Defaults to 120 s. */
  timeoutMs?: number;
  /**
   * Report writes tolerated within `quietMs` (heartbeats: one per node per heartbeat period, which at a hundred nodes
   * leave no 2-s window without one). Defaults to 0.
   */
  reportWritesAllowed?: number;
}

/** The snapshot at which the cluster was found quiet, and how long that took. */
export interface Quiet {
  snapshot: ApiServerSnapshot;
  /** The benchmark's own requests at that instant (to subtract from the next snapshot's). */
  own: RequestCounts;
  waitedMs: number;
  /** False when `timeoutMs` passed first (the snapshot is the last one taken). */
  reached: boolean;
}

/** Mutating requests other than the background ones, split into node-report writes and the rest, minus our own. */
function activity(snapshot: ApiServerSnapshot, own: RequestCounts): { reports: number; other: number } {
  const result = { reports: 0, other: 0 };
  const tally = (counts: ReadonlyMap<string, number>, sign: number): void => {
    for (const [text, count] of counts) {
      const key = parseRequestKey(text);
      if (!MUTATING_VERBS.has(key.verb)) continue;
      const category = categoryOf(key);
      if (BACKGROUND_CATEGORIES.has(category)) continue;
      if (category === 'node reports') result.reports += sign * count;
      else result.other += sign * count;
    }
  };
  tally(snapshot.requests, 1);
  tally(own, -1);
  return result;
}

/**
 * Waits until writes have stopped: no mutating request (background aside) counted by the API server for `quietMs`,
 * besides at most `reportWritesAllowed` node-report writes (heartbeats). Scrapes /metrics every `intervalMs`.
 */
export async function waitForQuiet(api: BenchApi, options: QuietOptions = {}): Promise<Quiet> {
  const quietMs = options.quietMs ?? 2_000;
  const intervalMs = options.intervalMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const allowed = options.reportWritesAllowed ?? 0;
  const started = Date.now();
  const samples: Array<{ at: number; reports: number; other: number }> = [];
  for (;;) {
    const snapshot = await scrapeApiServer(api);
    const own = new Map(api.sent);
    const now = { at: snapshot.at, ...activity(snapshot, own) };
    samples.push(now);
    // The newest sample at least quietMs old is the start of the window.
    let base: (typeof samples)[number] | undefined;
    for (const sample of samples) if (sample.at <= now.at - quietMs) base = sample;
    const reached = base !== undefined && base.other === now.other && now.reports - base.reports <= allowed;
    if (reached || Date.now() - started > timeoutMs) {
      return { snapshot, own, waitedMs: Date.now() - started, reached };
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
