/**
 * The benchmark's own API client: admin token, one keep-alive connection pool, and the instants each request was
 * sent and answered. "Accepted" in every figure is the wall-clock time the response arrived (the API server has
 * stored the change by then); the round trip, from a monotonic clock, is the baseline the figures compare with.
 *
 * Every request is also counted the way the API server counts it in `apiserver_request_total` (verb, group,
 * resource, subresource, code; lib/apiserver-metrics.ts), so that a benchmark can take its own requests out of the
 * server's counters.
 */
import https from 'node:https';
import type { ControlPlane } from '@opkit/testbed';

export const STATIC_ROUTES_PATH = '/apis/networking.digitalocean.com/v1/staticroutes';
export const NODE_REPORTS_PATH = '/apis/networking.digitalocean.com/v1/staticroutenodestatuses';

export interface TimedResponse<T> {
  status: number;
  body: T;
  /** `Date.now()` when the response was complete. */
  acceptedAt: number;
  /** Send to response, ms (monotonic). */
  roundTripMs: number;
}

/** A request as `apiserver_request_total` labels it. */
export interface RequestKey {
  /** POST, PUT, PATCH, DELETE, GET, LIST, WATCH; empty for non-resource paths (/metrics). */
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  code: string;
}

/** Counts of requests by their labels (`verb|group|resource|subresource|code`). */
export type RequestCounts = Map<string, number>;

export const requestKey = (key: RequestKey): string =>
  `${key.verb}|${key.group}|${key.resource}|${key.subresource}|${key.code}`;

export function parseRequestKey(text: string): RequestKey {
  const [verb = '', group = '', resource = '', subresource = '', code = ''] = text.split('|');
  return { verb, group, resource, subresource, code };
}

/** How the API server labels a request to `path` (resource requests only; `/metrics` and the like get no verb). */
export function classifyRequest(method: string, path: string, status: number): RequestKey {
  const url = new URL(path, 'https://api.invalid');
  const segments = url.pathname.split('/').filter(Boolean);
  let rest: string[];
  let group = '';
  if (segments[0] === 'api' && segments.length >= 2) rest = segments.slice(2);
  else if (segments[0] === 'apis' && segments.length >= 3) {
    group = segments[1] as string;
    rest = segments.slice(3);
  } else return { verb: '', group: '', resource: '', subresource: '', code: String(status) };
  // namespaces/<ns>/<resource>/... unless it is a Namespace's own subresource (namespaces/<name>/status).
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    rest = rest.slice(2);
  }
  const [resource = '', name, subresource = ''] = rest;
  let verb = method.toUpperCase();
  if (verb === 'GET') verb = url.searchParams.get('watch') === 'true' ? 'WATCH' : name === undefined ? 'LIST' : 'GET';
  if (verb === 'DELETE' && name === undefined) verb = 'DELETECOLLECTION';
  return { verb, group, resource, subresource, code: String(status) };
}

export class BenchApi {
  private readonly agent: https.Agent;
  /** Every request this client sent, counted as the API server counts them. */
  readonly sent: RequestCounts = new Map();

  constructor(private readonly controlPlane: ControlPlane) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: controlPlane.caPem });
  }

  request<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<TimedResponse<T>> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const type = contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const request = https.request(new URL(path, this.controlPlane.server), {
        method,
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.controlPlane.adminToken}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': type, 'content-length': Buffer.byteLength(payload) }),
        },
      });
      request.setTimeout(60_000, () => request.destroy(new Error(`${method} ${path} timed out`)));
      request.once('error', reject);
      request.once('response', (response) => {
        const key = requestKey(classifyRequest(method, path, response.statusCode ?? 0));
        this.sent.set(key, (this.sent.get(key) ?? 0) + 1);
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          const acceptedAt = Date.now();
          const roundTripMs = performance.now() - started;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON: keep the text.
          }
          resolve({ status: response.statusCode ?? 0, body: parsed as T, acceptedAt, roundTripMs });
        });
      });
      request.end(payload);
    });
  }

  /** Like {@link request} but throws unless 2xx. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<TimedResponse<T>> {
    const response = await this.request<T>(method, path, body);
    if (response.status < 200 || response.status > 299) {
      throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body).slice(0, 500)}`);
    }
    return response;
  }

  createStaticRoute(
    name: string,
    spec: Record<string, unknown>,
    labels?: Record<string, string>,
  ): Promise<TimedResponse<StaticRouteStatus>> {
    return this.call('POST', STATIC_ROUTES_PATH, {
      apiVersion: 'networking.digitalocean.com/v1',
      kind: 'StaticRoute',
      metadata: { name, ...(labels ? { labels } : {}) },
      spec,
    });
  }

  patchSpec(name: string, spec: Record<string, unknown>): Promise<TimedResponse<StaticRouteStatus>> {
    return this.call('PATCH', `${STATIC_ROUTES_PATH}/${name}`, { spec });
  }

  deleteStaticRoute(name: string): Promise<TimedResponse<unknown>> {
    return this.call('DELETE', `${STATIC_ROUTES_PATH}/${name}`);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The parts of a StaticRoute the benchmarks read: its status is written by the aggregator only. */
export interface StaticRouteStatus {
  metadata: { name: string; generation: number; finalizers?: string[]; deletionTimestamp?: string };
  status?: {
    /** `k/N` (printer column READY): nodes that applied the current generation / nodes selected. */
    ready?: string;
    observedGeneration?: number;
    notReady?: Array<{ state: string; message: string; count: number; nodes: string[] }>;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

/** True once the aggregator wrote `N/N` for the object's current generation (what `kubectl get sr` shows as READY). */
export function isReadyEverywhere(object: StaticRouteStatus, nodes: number): boolean {
  return (
    object.status?.ready === `${nodes}/${nodes}` && object.status.observedGeneration === object.metadata.generation
  );
}

/** One node's report (`StaticRouteNodeStatus`, written by that node's agent only). */
export interface NodeReport {
  metadata: { name: string };
  status?: {
    heartbeatTime?: string;
    summary?: { staticRoutes: number; notReady: number; routes: number };
    staticRoutes?: Record<
      string,
      { uid: string; generation?: number; state: string; message?: string; routes: number }
    >;
  };
}

/** Runs `task` over `items` with at most `limit` at once. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
