/**
 * A small JSON client for the Kubernetes API over `node:https` / `node:http`, with a keep-alive agent.
 *
 * Why not @kubernetes/client-node: importing it costs ~75 MB RSS per process, and its watch goes silent on connection
 * resets. This client does the few verbs the framework needs, streams watches for the {@link Watcher}, and handles
 * credential rotation:
 * - a 401 re-resolves the credentials once (exec plugins, rotated tokens) and retries the request;
 * - a token file (in-cluster service account) is re-read when its modification time changes.
 *
 * Guarantees: every method rejects with {@link ApiError} on an HTTP error status (with the API's `Status` message,
 * reason and any `Retry-After`), and with a plain Error on transport errors. A request is retried only after a 401,
 * when the server has provably not acted on it.
 */
import { stat, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { ClusterCredentials } from './credentials.js';
import { consumeStream, destroyIdleSockets, readBody, toApiError } from './http.js';
import { resourcePath } from './paths.js';
import {
  type KubeApi,
  type KubeList,
  type KubeObject,
  type ListOptions,
  type PatchType,
  type ResourceRef,
  type WatchEvent,
  type WatchOptions,
} from './types.js';

export { resourcePath } from './paths.js';

/** Options for {@link createKubeApi}. */
export interface KubeApiOptions {
  /**
   * Fixed credentials, or a function that resolves them (called lazily on first use and again after a 401), usually
   * `() => resolveCredentials(...)`.
   */
  credentials: ClusterCredentials | (() => Promise<ClusterCredentials>);
  logger?: Logger;
  /** Sent as `User-Agent`. Defaults to `opkit`. */
  userAgent?: string;
  /** Called once per HTTP request sent (including the retry after a 401), e.g. to count requests in metrics. */
  onRequest?: (verb: string, ref: ResourceRef) => void;
  /** `fieldManager` for create and patch requests. Defaults to `opkit`. */
  fieldManager?: string;
  /** Timeout for non-watch requests, in ms. Defaults to 60 000. */
  requestTimeoutMs?: number;
  /** How often a token file is checked for a change, at most, in ms. Defaults to 10 000. */
  tokenFileCheckMs?: number;
}

/** The {@link KubeApi} returned by {@link createKubeApi}, plus lifecycle helpers. */
export interface KubeClient extends KubeApi {
  /** Credential resolutions done so far (1 after the first request; +1 per 401 re-resolve). */
  readonly credentialResolutions: number;
  /** Closes idle keep-alive connections. In-flight requests and watches finish or are aborted by their callers. */
  close(): void;
}

interface Connection {
  credentials: ClusterCredentials;
  base: URL;
  agent: http.Agent;
  token: string | undefined;
  tokenFileMtimeMs: number | undefined;
  tokenFileCheckedAt: number;
}

interface RequestSpec {
  verb: string;
  ref: ResourceRef;
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
}

/** A response whose status is already known to be 2xx; the body is streamed or collected by the caller. */
type OkResponse = http.IncomingMessage;

/**
 * Creates the API client.
 *
 * @example
 * ```ts
 * const api = createKubeApi({ credentials: () => resolveCredentials(), userAgent: 'staticroute-operator' });
 * const routes = await api.list({ group: 'networking.digitalocean.com', version: 'v1', plural: 'staticroutes' });
 * ```
 */
export function createKubeApi(opts: KubeApiOptions): KubeClient {
  const userAgent = opts.userAgent ?? 'opkit';
  const fieldManager = opts.fieldManager ?? 'opkit';
  const requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
  const tokenFileCheckMs = opts.tokenFileCheckMs ?? 10_000;
  const provider = typeof opts.credentials === 'function' ? opts.credentials : undefined;
  let connection: Promise<Connection> | undefined;
  let requestCount = 0;
  let credentialResolutions = 0;

  /** Starts a resolution; concurrent callers share it through `connection`. */
  function connect(previous?: Connection): Promise<Connection> {
    const attempt = (async () => {
      credentialResolutions += 1;
      const credentials = provider ? await provider() : (opts.credentials as ClusterCredentials);
      const next = await buildConnection(credentials, previous);
      if (previous && previous.agent !== next.agent) destroyIdleSockets(previous.agent);
      return next;
    })();
    // A failed resolution must not stick: the next request tries again.
    attempt.catch(() => {
      if (connection === attempt) connection = undefined;
    });
    connection = attempt;
    return attempt;
  }

  /**
   * Replaces `stale` after a 401. Single-flight: when several requests fail with the same stale connection at once,
   * the first starts a resolution and the others wait for it, instead of each spawning a credential helper.
   */
  async function reconnect(stale: Connection): Promise<Connection> {
    const pending = connection;
    if (pending) {
      // A resolution that fails fails every request waiting for it; the next request starts a fresh one.
      const latest = await pending;
      if (latest !== stale) return latest;
    }
    return connect(stale);
  }

  async function current(): Promise<Connection> {
    const conn = await (connection ?? connect());
    if (conn.credentials.tokenFile && Date.now() - conn.tokenFileCheckedAt >= tokenFileCheckMs) {
      await refreshTokenFile(conn, false);
    }
    return conn;
  }

  async function refreshTokenFile(conn: Connection, force: boolean): Promise<boolean> {
    const file = conn.credentials.tokenFile;
    if (!file) return false;
    conn.tokenFileCheckedAt = Date.now();
    try {
      const info = await stat(file);
      if (!force && info.mtimeMs === conn.tokenFileMtimeMs) return false;
      const token = (await readFile(file, 'utf8')).trim();
      const changed = token !== conn.token;
      conn.token = token;
      conn.tokenFileMtimeMs = info.mtimeMs;
      if (changed) opts.logger?.debug({ tokenFile: file }, 'bearer token file changed; using the new token');
      return changed;
    } catch (err) {
      opts.logger?.warn({ err, tokenFile: file }, 'cannot read the bearer token file; keeping the previous token');
      return false;
    }
  }

  /** Sends a request, re-resolving credentials once after a 401. Resolves with a 2xx response. */
  async function send(spec: RequestSpec, timeoutMs: number | undefined, signal?: AbortSignal): Promise<OkResponse> {
    let conn = await current();
    for (let attempt = 0; ; attempt += 1) {
      const res = await sendOnce(conn, spec, timeoutMs, signal);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return res;
      const error = await toApiError(res);
      if (status !== 401 || attempt > 0) throw error;
      // Expired exec-plugin token, rotated service-account token, or a provider that knows better now.
      opts.logger?.info({ verb: spec.verb, path: spec.path }, 'API server answered 401; re-resolving credentials');
      const rotated = await refreshTokenFile(conn, true);
      if (!rotated || provider) conn = await reconnect(conn);
    }
  }

  function sendOnce(
    conn: Connection,
    spec: RequestSpec,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const url = new URL(conn.base.href);
    url.pathname = conn.base.pathname.replace(/\/+$/, '') + spec.path;
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const headers: Record<string, string | number> = {
      ...conn.credentials.headers,
      accept: 'application/json',
      'user-agent': userAgent,
    };
    if (conn.token) headers.authorization = `Bearer ${conn.token}`;
    if (payload) {
      headers['content-type'] = spec.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    requestCount += 1;
    opts.onRequest?.(spec.verb, spec.ref);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { method: spec.method, headers, agent: conn.agent, signal }, resolve);
      // Report why the caller aborted (e.g. the watchdog's InactivityError), not Node's generic AbortError.
      req.on('error', (err) => reject(signal?.aborted && signal.reason !== undefined ? signal.reason : err));
      if (timeoutMs !== undefined) {
        req.setTimeout(timeoutMs, () =>
          req.destroy(new Error(`${spec.method} ${url.pathname} timed out after ${timeoutMs} ms`)),
        );
      }
      req.end(payload);
    });
  }

  async function json<T>(spec: RequestSpec): Promise<T> {
    const res = await send(spec, requestTimeoutMs);
    const body = await readBody(res);
    return (body.length === 0 ? undefined : JSON.parse(body.toString('utf8'))) as T;
  }

  const api: KubeClient = {
    get requestCount() {
      return requestCount;
    },
    get credentialResolutions() {
      return credentialResolutions;
    },

    list<T extends KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<KubeList<T>> {
      return json<KubeList<T>>({
        verb: 'list',
        ref,
        method: 'GET',
        path: resourcePath(ref, { namespace: options.namespace }),
        query: {
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          limit: options.limit,
          continue: options.continue,
          resourceVersion: options.resourceVersion,
        },
      });
    },

    get<T extends KubeObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T> {
      return json<T>({ verb: 'get', ref, method: 'GET', path: resourcePath(ref, { namespace, name }) });
    },

    create<T extends KubeObject>(ref: ResourceRef, body: unknown, namespace?: string): Promise<T> {
      return json<T>({
        verb: 'create',
        ref,
        method: 'POST',
        path: resourcePath(ref, { namespace }),
        query: { fieldManager },
        body,
      });
    },

    patch<T extends KubeObject>(
      ref: ResourceRef,
      name: string,
      patch: unknown,
      options: { namespace?: string; type?: PatchType; subresource?: 'status' } = {},
    ): Promise<T> {
      const type = options.type ?? 'merge';
      return json<T>({
        verb: 'patch',
        ref,
        method: 'PATCH',
        path: resourcePath(ref, { namespace: options.namespace, name, subresource: options.subresource }),
        query: { fieldManager },
        body: patch,
        contentType: type === 'json' ? 'application/json-patch+json' : 'application/merge-patch+json',
      });
    },

    async delete(ref: ResourceRef, name: string, namespace?: string): Promise<void> {
      await json<unknown>({ verb: 'delete', ref, method: 'DELETE', path: resourcePath(ref, { namespace, name }) });
    },

    async watch<T extends KubeObject>(
      ref: ResourceRef,
      options: WatchOptions,
      onEvent: (event: WatchEvent<T>) => void,
      signal: AbortSignal,
    ): Promise<void> {
      signal.throwIfAborted();
      const res = await send(
        {
          verb: 'watch',
          ref,
          method: 'GET',
          path: resourcePath(ref, { namespace: options.namespace }),
          query: {
            watch: 1,
            resourceVersion: options.resourceVersion,
            allowWatchBookmarks: options.allowWatchBookmarks,
            timeoutSeconds: options.timeoutSeconds,
            labelSelector: options.labelSelector,
            fieldSelector: options.fieldSelector,
          },
        },
        // No socket timeout: the watch is legitimately silent for minutes; the Watcher's watchdog covers stalls.
        undefined,
        signal,
      );
      await consumeStream(res, (value) => onEvent(value as WatchEvent<T>), signal);
    },

    close(): void {
      void connection?.then((conn) => destroyIdleSockets(conn.agent)).catch(() => undefined);
    },
  };
  return api;
}

async function buildConnection(credentials: ClusterCredentials, previous?: Connection): Promise<Connection> {
  const base = new URL(credentials.server);
  const sameTransport =
    previous !== undefined &&
    previous.credentials.server === credentials.server &&
    previous.credentials.ca === credentials.ca &&
    previous.credentials.cert === credentials.cert &&
    previous.credentials.key === credentials.key &&
    previous.credentials.insecureSkipTlsVerify === credentials.insecureSkipTlsVerify &&
    previous.credentials.tlsServerName === credentials.tlsServerName;
  // Keep the pool (and its warm TLS sessions) when only the token changed.
  const agent = sameTransport
    ? previous.agent
    : base.protocol === 'http:'
      ? new http.Agent({ keepAlive: true })
      : new https.Agent({
          keepAlive: true,
          ca: credentials.ca,
          cert: credentials.cert,
          key: credentials.key,
          rejectUnauthorized: !credentials.insecureSkipTlsVerify,
          servername: credentials.tlsServerName,
        });
  const conn: Connection = {
    credentials,
    base,
    agent,
    token: credentials.token,
    tokenFileMtimeMs: undefined,
    tokenFileCheckedAt: 0,
  };
  if (credentials.tokenFile) {
    try {
      const info = await stat(credentials.tokenFile);
      conn.token = (await readFile(credentials.tokenFile, 'utf8')).trim();
      conn.tokenFileMtimeMs = info.mtimeMs;
      conn.tokenFileCheckedAt = Date.now();
    } catch {
      // Keep the token the resolver read; the next check retries the file.
    }
  }
  return conn;
}
