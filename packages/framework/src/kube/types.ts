/**
 * The contract between the engine and the Kubernetes I/O layer.
 *
 * The engine never imports `@kubernetes/client-node` at run time: the client library is used only to resolve
 * credentials (kubeconfig, in-cluster service account, exec plugins) in a short-lived worker, and for its API
 * types. Everything the engine sends goes through {@link KubeApi}, a small JSON-over-HTTPS client with keep-alive.
 */

/** Identifies one API resource collection, e.g. `{ group: 'networking.digitalocean.com', version: 'v1', plural: 'staticroutes' }`. */
export interface ResourceRef {
  /** API group; `''` for the core group (`/api/v1`). */
  group: string;
  version: string;
  plural: string;
  /** Whether objects live in namespaces. Defaults to false (cluster-scoped). */
  namespaced?: boolean;
}

/** Object metadata fields the framework reads and writes. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** Any Kubernetes object as the API returns it. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

/** A list page as the API returns it. */
export interface KubeList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

/** One watch event. BOOKMARK carries only `metadata.resourceVersion`. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Options common to list and watch. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  /**
   * Lists only: unset reads the latest state from etcd (a quorum read); `'0'` accepts any version the API server
   * has cached, which costs etcd nothing and can be behind what a watch already delivered.
   */
  resourceVersion?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  /** Server-side timeout; the server ends the stream after it (the watcher then resumes). */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
}

/** An HTTP error from the API server, with the decoded `Status` object when there is one. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly reason?: string,
    /** Seconds from a `Retry-After` header (429, some 5xx). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** One HTTP request's outcome, as the API client reports it for metrics (`KubeApiOptions.onResponse`). */
export interface ApiResponseInfo {
  /** `list`, `get`, `create`, `patch`, `delete`, `watch`, `update` (replace) or `apply` (server-side apply). */
  verb: string;
  ref: ResourceRef;
  /** The HTTP status; undefined when the request failed before a response (connection, TLS, timeout). */
  statusCode: number | undefined;
  /** From sending the request to its response headers (or its failure), in seconds. */
  seconds: number;
}

/** Patch flavours the framework uses. */
export type PatchType = 'merge' | 'json';

/** Options of {@link KubeApi.replace}. */
export interface ReplaceOptions {
  /** Namespace of the object (namespaced resources). Defaults to `body.metadata.namespace`. */
  namespace?: string;
  /** Replace a subresource (`status`) instead of the object. Defaults to the object. */
  subresource?: 'status';
}

/** Options of {@link KubeApi.apply}. */
export interface ApplyOptions {
  /** Who owns the applied fields. Defaults to the client's field manager (the runtime's `component`, `opkit`). */
  fieldManager?: string;
  /** Take over fields another manager owns instead of failing with 409 Conflict. Defaults to false. */
  force?: boolean;
  /** Namespace of the object (namespaced resources). Defaults to `body.metadata.namespace`. */
  namespace?: string;
  /** Apply to a subresource (`status`). Defaults to the object. */
  subresource?: 'status';
}

/** Whether `error` is the API server's 404 Not Found (an {@link ApiError}); false for anything else. */
export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.statusCode === 404;
}

/**
 * A minimal Kubernetes API client. Every method rejects with {@link ApiError} on HTTP errors and with a plain
 * Error on transport errors.
 */
export interface KubeApi {
  list<T extends KubeObject>(ref: ResourceRef, options?: ListOptions): Promise<KubeList<T>>;
  get<T extends KubeObject>(ref: ResourceRef, name: string, namespace?: string): Promise<T>;
  create<T extends KubeObject>(ref: ResourceRef, body: unknown, namespace?: string): Promise<T>;
  patch<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    options?: { namespace?: string; type?: PatchType; subresource?: 'status' },
  ): Promise<T>;
  delete(ref: ResourceRef, name: string, namespace?: string): Promise<void>;
  /**
   * Replaces an object (HTTP PUT) with `body`, which must carry `metadata.name` (and `metadata.resourceVersion` to
   * fail with 409 Conflict when the object changed since it was read). Optional for other implementations of this
   * interface; the client of `createKubeApi` has it, and handlers get it as `ctx.api.replace`.
   */
  replace?<T extends KubeObject>(ref: ResourceRef, name: string, body: unknown, options?: ReplaceOptions): Promise<T>;
  /**
   * Server-side apply (`application/apply-patch+yaml`): creates the object or merges the fields of `body` (a whole
   * object with `apiVersion`, `kind` and `metadata.name`) into it, recording them as owned by the field manager.
   * Fields another manager owns make it fail with 409 Conflict unless `force`. Optional like `replace`.
   */
  apply?<T extends KubeObject>(
    ref: ResourceRef,
    body: KubeObject | Record<string, unknown>,
    options?: ApplyOptions,
  ): Promise<T>;
  /**
   * Opens one watch stream. Events are delivered in order through `onEvent`; the promise resolves when the server
   * ends the stream normally and rejects on errors. `signal` aborts the stream.
   */
  watch<T extends KubeObject>(
    ref: ResourceRef,
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Count of HTTP requests sent so far (for metrics and benchmarks). */
  readonly requestCount: number;
  /**
   * The URL of the API server requests go to, once known (after the first request); undefined for clients that do not
   * say. Agents that must never route it away use its host.
   */
  readonly server?: string | undefined;
}

/** The request methods of {@link KubeApi} (everything but its counters), for {@link forwardingApi} overrides. */
export type KubeApiVerbs = Omit<KubeApi, 'requestCount' | 'server'>;

/**
 * A {@link KubeApi} that forwards every call to `api` (its optional verbs only when `api` has them) except those
 * `overrides` replaces: the base of wrappers that record, delay or complete a client.
 */
export function forwardingApi(api: KubeApi, overrides: Partial<KubeApiVerbs> = {}): KubeApi {
  const { replace, apply } = api;
  return {
    get requestCount() {
      return api.requestCount;
    },
    get server() {
      return api.server;
    },
    list: (...args) => api.list(...args),
    get: (...args) => api.get(...args),
    create: (...args) => api.create(...args),
    patch: (...args) => api.patch(...args),
    delete: (...args) => api.delete(...args),
    watch: (...args) => api.watch(...args),
    ...(replace ? { replace: (...args: Parameters<typeof replace>) => replace.apply(api, args) } : {}),
    ...(apply ? { apply: (...args: Parameters<typeof apply>) => apply.apply(api, args) } : {}),
    ...overrides,
  } as KubeApi;
}

/**
 * A {@link KubeApi} with every verb, that also tells a 404: the client of `createKubeApi` and handlers' `ctx.api`.
 */
export type FullKubeApi = KubeApi &
  Required<Pick<KubeApi, 'replace' | 'apply'>> & {
    /** Whether `error` is the API server's 404 Not Found. */
    isNotFound(error: unknown): boolean;
  };
