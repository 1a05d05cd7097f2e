/**
 * The benchmark driver's own API client: JSON over a keep-alive HTTPS agent, plus a watch stream.
 *
 * Deliberately independent of the framework's client, so that the driver's requests are never counted as the
 * operator's, and so that the "bare request" baselines measure the API server, not opkit.
 */
import https from 'node:https';
import type { ControlPlane } from '@opkit/testbed';

/** A decoded API response of any status. */
export interface Response<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** One watch event as the API sends it. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: BenchObject;
}

/** The fields of an object the benchmarks read. */
export interface BenchObject {
  metadata: {
    name: string;
    uid?: string;
    resourceVersion: string;
    finalizers?: string[];
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** The driver's client. */
export interface BenchClient {
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<Response<T>>;
  /** Like `request`, but rejects unless the status is 2xx. */
  ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType?: string): Promise<T>;
  /** Lists `path`, then watches it from the list's resourceVersion until `signal` aborts. Resolves once listening. */
  watch(path: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<BenchObject[]>;
  close(): void;
}

/** A client for the control plane's admin identity. */
export function benchClient(controlPlane: ControlPlane, maxSockets = 32): BenchClient {
  const agent = new https.Agent({ keepAlive: true, maxSockets, ca: controlPlane.caPem });
  const headers = { authorization: `Bearer ${controlPlane.adminToken}`, accept: 'application/json' };

  function send(method: string, path: string, body?: unknown, contentType?: string): Promise<Response<never>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, controlPlane.server),
        {
          method,
          agent,
          headers: {
            ...headers,
            ...(payload
              ? {
                  'content-type':
                    contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'),
                  'content-length': payload.length,
                }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: decode(text) as never });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  const client: BenchClient = {
    request: (method, path, body, contentType) => send(method, path, body, contentType),
    async ok(method, path, body, contentType) {
      const res = await send(method, path, body, contentType);
      if (res.status < 200 || res.status > 299) {
        throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
      return res.body;
    },
    async watch(path, onEvent, signal) {
      const list = await client.ok<{ metadata: { resourceVersion: string }; items: BenchObject[] }>('GET', path);
      const url = new URL(path, controlPlane.server);
      url.searchParams.set('watch', '1');
      url.searchParams.set('resourceVersion', list.metadata.resourceVersion);
      url.searchParams.set('timeoutSeconds', '3600');
      await new Promise<void>((resolve, reject) => {
        // A dedicated connection: a watch holds its socket for as long as it lives.
        const req = https.request(url, { headers, ca: controlPlane.caPem, agent: false, signal }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`watch ${path}: ${res.statusCode}`));
          resolve();
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            let newline: number;
            while ((newline = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, newline);
              buffered = buffered.slice(newline + 1);
              if (line.trim()) onEvent(JSON.parse(line) as WatchEvent);
            }
          });
          res.on('error', () => undefined);
        });
        req.on('error', (error) => (signal.aborted ? undefined : reject(error)));
        req.end();
      });
      return list.items;
    },
    close: () => agent.destroy(),
  };
  return client;
}

/** JSON bodies decoded; anything else (e.g. `404 page not found` before a CRD is served) as `{ text }`. */
function decode(text: string): unknown {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}

/** Runs `task(i)` for i in [0, count) with at most `parallel` in flight; resolves when all settled. */
export async function inParallel(count: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
}
