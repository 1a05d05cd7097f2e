/**
 * A small JSON client for the Kubernetes API over `node:https` / `node:http`, with a keep-alive agent.
 *
 * Why not @kubernetes/client-node: importing it costs ~75 MB RSS per process, and its watch goes silent on connection
 * resets. This client does the few verbs the framework needs, streams watches for the {@link Watcher}, and heals the
 * way client-go does (see `connection.ts`):
 * - a 401 or a failed TLS handshake re-reads the credential files (token, CA, client certificate and key) and, if they
 *   did not change, re-resolves the credentials, then retries the request once;
 * - the credential files are also checked periodically, and exec-plugin credentials are renewed before they expire;
 * - re-resolutions are single-flight and rate-limited (a revoked token does not spawn a helper per request);
 * - an idempotent request (get, list, watch) sent on a pooled keep-alive connection that turns out to be closed
 *   (reset before any response byte) is sent again once on a new connection;
 * - requests go through the kubeconfig's `proxy-url`, or `HTTPS_PROXY` unless `NO_PROXY` says otherwise (CONNECT).
 *
 * Guarantees: every method rejects with {@link ApiError} on an HTTP error status (with the API's `Status` message,
 * reason and any `Retry-After`), and with a plain Error on transport errors. A request is sent again only when the
 * server has provably not acted on it: after a 401, after a TLS handshake failure, or (idempotent requests only)
 * after a reset of a reused connection before any response byte.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { Connections, type Connection, type SentWith } from './connection.js';
import type { ClusterCredentials } from './credentials.js';
import { consumeStream, isStaleSocket, isTlsFailure, markStaleSocket, readBody, toApiError } from './http.js';
import { resourcePath } from './paths.js';
import type { ProxyEnv } from './proxy.js';
import { ResolutionLimiter } from './rate-limit.js';
import {
  isNotFound,
  type ApiResponseInfo,
  type ApplyOptions,
  type FullKubeApi,
  type KubeList,
  type KubeObject,
  type ListOptions,
  type PatchType,
  type ReplaceOptions,
  type ResourceRef,
  type WatchEvent,
  type WatchOptions,
} from './types.js';

export { resourcePath } from './paths.js';

/** Options for {@link createKubeApi}. */
export interface KubeApiOptions {
  /**
   * Fixed credentials, or a function that resolves them (called lazily on first use, and again after a 401 or a TLS
   * failure that changed files do not explain, and before exec-plugin credentials expire), usually
   * `() => resolveCredentials(...)`.
   */
  credentials: ClusterCredentials | (() => Promise<ClusterCredentials>);
  logger?: Logger;
  /** Sent as `User-Agent`. Defaults to `opkit`. */
  userAgent?: string;
  /** Called once per HTTP request sent (including retries), e.g. to count requests in metrics. */
  onRequest?: (verb: string, ref: ResourceRef) => void;
  /**
   * Called once per HTTP request when its response headers arrive or it fails before them (latency and status codes
   * for metrics; a watch counts until its headers, not for the stream). Not called for requests the caller aborted.
   */
  onResponse?: (info: ApiResponseInfo) => void;
  /** `fieldManager` for create and patch requests. Defaults to `opkit`. */
  fieldManager?: string;
  /** Timeout for non-watch requests, in ms. Defaults to 60 000. */
  requestTimeoutMs?: number;
  /**
   * How often the credential files (token, CA, client certificate and key) are checked for a change, at most, in ms.
   * They are also checked after every 401 and TLS failure. Defaults to 10 000.
   */
  credentialFileCheckMs?: number;
  /** @deprecated The former name of {@link credentialFileCheckMs}. */
  tokenFileCheckMs?: number;
  /**
   * Shortest time between two credential re-resolutions, in ms; doubled after each one that did not help, up to
   * `reresolveMaxIntervalMs`. The first re-resolution is never held back. Defaults to 5 000.
   */
  reresolveMinIntervalMs?: number;
  /** Longest time between two re-resolutions that do not help, in ms. Defaults to 300 000. */
  reresolveMaxIntervalMs?: number;
  /**
   * Renew expiring credentials (exec plugins' `expirationTimestamp`) this long before they expire, in ms (at most
   * half their remaining lifetime ahead). Defaults to 60 000.
   */
  credentialRefreshMarginMs?: number;
  /** Idle time before TCP keep-alive probes start on a connection, in ms. Defaults to 30 000. */
  tcpKeepAliveDelayMs?: number;
  /** Where `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are read. Defaults to `process.env`. */
  proxyEnv?: ProxyEnv;
}

/** The {@link KubeApi} returned by {@link createKubeApi}, plus lifecycle helpers. */
export interface KubeClient extends FullKubeApi {
  /** Credential resolutions started so far (1 after the first request, +1 per re-resolution). */
  readonly credentialResolutions: number;
  /** Closes idle keep-alive connections. In-flight requests and watches finish or are aborted by their callers. */
  close(): void;
}

interface RequestSpec {
  verb: string;
  ref: ResourceRef;
  method: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Safe to send twice: the verb does not change anything (get, list, watch). */
  idempotent: boolean;
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
  const connections = new Connections({
    credentials: opts.credentials,
    logger: opts.logger,
    fileCheckMs: opts.credentialFileCheckMs ?? opts.tokenFileCheckMs ?? 10_000,
    keepAliveDelayMs: opts.tcpKeepAliveDelayMs ?? 30_000,
    // The CONNECT answer is part of opening a connection: bounded like a request even for watches.
    proxyTimeoutMs: Math.min(requestTimeoutMs, 30_000),
    refreshMarginMs: opts.credentialRefreshMarginMs ?? 60_000,
    limiter: new ResolutionLimiter({
      minIntervalMs: opts.reresolveMinIntervalMs,
      maxIntervalMs: opts.reresolveMaxIntervalMs,
    }),
    proxyEnv: opts.proxyEnv ?? process.env,
  });
  let requestCount = 0;

  /**
   * Sends a request; heals once after a 401 and once after a TLS failure, and resends an idempotent request once
   * after a stale keep-alive connection. Resolves with a 2xx response.
   */
  async function send(spec: RequestSpec, timeoutMs: number | undefined, signal?: AbortSignal): Promise<OkResponse> {
    let conn = await connections.acquire();
    let healedUnauthorized = false;
    let healedTls = false;
    let resent = false;
    for (;;) {
      const used = connections.sentWith(conn);
      let res: http.IncomingMessage;
      try {
        res = await sendOnce(conn, used, spec, timeoutMs, signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        if (!healedTls && isTlsFailure(err)) {
          healedTls = true;
          // CA rotated, client certificate expired or replaced: the handshake failed, so the server saw nothing.
          opts.logger?.debug({ err, verb: spec.verb, path: spec.path }, 'TLS failure; checking credentials');
          const next = await connections.heal(used, 'tls failure');
          if (next) {
            conn = next;
            continue;
          }
        } else if (!resent && spec.idempotent && isStaleSocket(err)) {
          resent = true;
          // The server closed the idle keep-alive connection as the request went out; it never read it.
          opts.logger?.debug({ verb: spec.verb, path: spec.path }, 'pooled connection was closed; sending again');
          continue;
        }
        throw err;
      }
      const status = res.statusCode ?? 0;
      if (status !== 401) connections.accepted();
      if (status >= 200 && status < 300) return res;
      const error = await toApiError(res);
      if (status === 401 && !healedUnauthorized) {
        healedUnauthorized = true;
        // Expired exec-plugin token, rotated service-account token, renewed client certificate, revoked token.
        opts.logger?.info({ verb: spec.verb, path: spec.path }, 'API server answered 401; checking credentials');
        const next = await connections.heal(used, 'unauthorized');
        if (next) {
          conn = next;
          continue;
        }
      }
      throw error;
    }
  }

  function sendOnce(
    conn: Connection,
    used: SentWith,
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
      ...used.headers,
      accept: 'application/json',
      'user-agent': userAgent,
    };
    if (used.token) headers.authorization = `Bearer ${used.token}`;
    if (payload) {
      headers['content-type'] = spec.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    requestCount += 1;
    opts.onRequest?.(spec.verb, spec.ref);
    const transport = url.protocol === 'http:' ? http : https;
    const started = performance.now();
    let responded = false;
    const report = (statusCode: number | undefined): void => {
      if (!opts.onResponse || signal?.aborted) return;
      try {
        opts.onResponse({ verb: spec.verb, ref: spec.ref, statusCode, seconds: (performance.now() - started) / 1000 });
      } catch {
        // A metrics callback must not fail requests.
      }
    };
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { method: spec.method, headers, agent: used.agent, signal }, (res) => {
        responded = true;
        report(res.statusCode);
        resolve(res);
      });
      req.on('error', (err) => {
        // After the response, errors belong to the body, which its reader reports.
        if (!responded) {
          report(undefined);
          markStaleSocket(err, req);
        }
        // Report why the caller aborted (e.g. the watchdog's InactivityError), not Node's generic AbortError.
        reject(signal?.aborted && signal.reason !== undefined ? signal.reason : err);
      });
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
      return connections.resolutions;
    },
    get server() {
      return connections.server;
    },

    list<T extends KubeObject>(ref: ResourceRef, options: ListOptions = {}): Promise<KubeList<T>> {
      return json<KubeList<T>>({
        verb: 'list',
        ref,
        method: 'GET',
        idempotent: true,
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
      return json<T>({
        verb: 'get',
        ref,
        method: 'GET',
        path: resourcePath(ref, { namespace, name }),
        idempotent: true,
      });
    },

    create<T extends KubeObject>(ref: ResourceRef, body: unknown, namespace?: string): Promise<T> {
      return json<T>({
        verb: 'create',
        ref,
        method: 'POST',
        idempotent: false,
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
        idempotent: false,
        path: resourcePath(ref, { namespace: options.namespace, name, subresource: options.subresource }),
        query: { fieldManager },
        body: patch,
        contentType: type === 'json' ? 'application/json-patch+json' : 'application/merge-patch+json',
      });
    },

    async delete(ref: ResourceRef, name: string, namespace?: string): Promise<void> {
      // Not resent: a delete the server did carry out would come back as a 404 the caller did not expect.
      await json<unknown>({
        verb: 'delete',
        ref,
        method: 'DELETE',
        path: resourcePath(ref, { namespace, name }),
        idempotent: false,
      });
    },

    replace<T extends KubeObject>(
      ref: ResourceRef,
      name: string,
      body: unknown,
      options: ReplaceOptions = {},
    ): Promise<T> {
      const namespace = options.namespace ?? metadataOf(body).namespace;
      return json<T>({
        verb: 'update',
        ref,
        method: 'PUT',
        // Not resent: a replace that went through would come back as a 409 on its stale resourceVersion.
        idempotent: false,
        path: resourcePath(ref, { namespace, name, subresource: options.subresource }),
        query: { fieldManager },
        body,
      });
    },

    apply<T extends KubeObject>(
      ref: ResourceRef,
      body: KubeObject | Record<string, unknown>,
      options: ApplyOptions = {},
    ): Promise<T> {
      const metadata = metadataOf(body);
      if (typeof metadata.name !== 'string' || metadata.name === '') {
        return Promise.reject(new Error('apply: the object needs metadata.name'));
      }
      return json<T>({
        verb: 'apply',
        ref,
        method: 'PATCH',
        // Applying the same configuration twice yields the same object: safe to resend on a stale connection.
        idempotent: true,
        path: resourcePath(ref, {
          namespace: options.namespace ?? metadata.namespace,
          name: metadata.name,
          subresource: options.subresource,
        }),
        query: { fieldManager: options.fieldManager ?? fieldManager, force: options.force ? true : undefined },
        body,
        // JSON is YAML: the API server takes an apply configuration in either.
        contentType: 'application/apply-patch+yaml',
      });
    },

    isNotFound,

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
          idempotent: true,
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
      connections.close();
    },
  };
  return api;
}

/** The metadata of a request body, as far as paths need it. */
function metadataOf(body: unknown): { name?: unknown; namespace?: string } {
  const metadata = (body as { metadata?: { name?: unknown; namespace?: unknown } } | undefined)?.metadata;
  return {
    name: metadata?.name,
    ...(typeof metadata?.namespace === 'string' ? { namespace: metadata.namespace } : {}),
  };
}
