/**
 * The benchmark's own API client: admin token, one keep-alive connection pool, and the instants each request was
 * sent and answered. "Accepted" in every figure is the wall-clock time the response arrived (the API server has
 * stored the change by then); the round trip, from a monotonic clock, is the baseline the figures compare with.
 */
import https from 'node:https';
import type { ControlPlane } from '@opkit/testbed';

export const STATIC_ROUTES_PATH = '/apis/networking.digitalocean.com/v1/staticroutes';

export interface TimedResponse<T> {
  status: number;
  body: T;
  /** `Date.now()` when the response was complete. */
  acceptedAt: number;
  /** Send to response, ms (monotonic). */
  roundTripMs: number;
}

export class BenchApi {
  private readonly agent: https.Agent;

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

  createStaticRoute(name: string, spec: Record<string, unknown>): Promise<TimedResponse<unknown>> {
    return this.call('POST', STATIC_ROUTES_PATH, {
      apiVersion: 'networking.digitalocean.com/v1',
      kind: 'StaticRoute',
      metadata: { name },
      spec,
    });
  }

  patchSpec(name: string, spec: Record<string, unknown>): Promise<TimedResponse<unknown>> {
    return this.call('PATCH', `${STATIC_ROUTES_PATH}/${name}`, { spec });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The summary column `kubectl get sr` shows (`3/3` when every node applied the current generation). */
export interface StaticRouteStatus {
  metadata: { generation: number };
  status?: { ready?: string; nodes?: Record<string, { state?: string; observedGeneration?: number }> };
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
