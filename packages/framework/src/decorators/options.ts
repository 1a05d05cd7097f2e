/**
 * Option types of the decorators. Every field documents its default.
 */
import type { BackoffPolicy } from '../core/backoff.js';

/** The object shape `when` filters receive (any Kubernetes object). */
export interface WatchedObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

/** What a selector function may depend on. */
export interface SelectorContext {
  /** This instance's id (in node scope, the Node name). */
  instanceId: string;
}

/** A label or field selector, fixed or computed at start-up (e.g. `(s) => \`metadata.name=${s.instanceId}\``). */
export type Selector = string | ((context: SelectorContext) => string);

/** Options of `@Operator`. */
export interface OperatorOptions {
  /** API group, e.g. `networking.digitalocean.com`; `''` for the core group. */
  group: string;
  /** API version, e.g. `v1`. */
  version: string;
  /** Plural resource name, e.g. `staticroutes`. */
  plural: string;
  /** Kind, e.g. `StaticRoute` (used in events and logs). */
  kind: string;
  /** Whether objects live in namespaces. Defaults to false. */
  namespaced?: boolean;
  /**
   * Who owns the handling state. `'cluster'` (default, Kopf-like): one finalizer, one diff-base and progress per
   * object, kept in annotations. `'node'`: every running instance handles every object and keeps its own
   * finalizer, diff-base, progress (node-local files) and status entry.
   */
  scope?: 'cluster' | 'node';
  /** Node scope: each instance owns `status.<instanceStatusField>.<instanceId>`. Defaults to `'nodes'`. */
  instanceStatusField?: string;
  /** Where handler outcomes go (`status.<field>` or inside the instance entry). Defaults to `'handlers'`. */
  handlerStatusField?: string;
  /**
   * Whether a Normal `HandlerSucceeded` Event is posted when a create, update or delete handler succeeds (failures
   * and retries are always Warning Events). Defaults to true, as Kopf does. A node-scope operator posts one per node
   * per change, which on a large cluster is more Events than objects: turn it off when the handlers report their
   * outcome themselves (status, Events on transitions).
   */
  successEvents?: boolean;
  /** Prefix of the framework's annotations and finalizers (a DNS subdomain). Defaults to `'opkit.dev'`. */
  persistencePrefix?: string;
  /** Watch only objects matching this label selector. Defaults to all. */
  labelSelector?: Selector;
  /** Watch only objects matching this field selector. Defaults to all. */
  fieldSelector?: Selector;
  /**
   * Handle only objects for which this returns true. Objects that stop matching are left alone, except that a
   * deletion is still handled when they carry our finalizer (so they can never get stuck).
   */
  when?: (object: WatchedObject) => boolean;
  /**
   * What the watch cache keeps of each object: applied to every listed and watched object before it is cached and
   * handed to handlers (`ctx.body`, `ctx.cache`). Defaults to dropping `metadata.managedFields`, which nothing in
   * the framework reads. A transform replaces the default: drop `managedFields` in it too to keep that saving, or
   * return the object unchanged to keep every field.
   *
   * It must keep `metadata` `name`, `namespace`, `uid`, `resourceVersion`, `generation`, `deletionTimestamp` and
   * `finalizers` unchanged (an object whose identity it changes is cached untransformed, with an error logged), and
   * should keep `spec`, `labels` and `annotations` whole: they make the essence compared with the diff-base (a
   * field the cache lacks looks like a change; the copies the framework's own writes return are transformed too), the
   * diff-base and progress live in the framework's `<prefix>/` annotations, and its metadata patches are built from
   * the cached labels, annotations and finalizers. kubectl's `last-applied-configuration`, which the essence
   * ignores, is safe to drop. It runs synchronously in the watch loop for every object and event: keep it cheap,
   * never throw, and build new objects rather than `delete` properties (V8 makes objects with deleted properties
   * larger).
   */
  cacheTransform?: (object: WatchedObject) => WatchedObject;
  /** Name in logs and metrics. Defaults to the class name. */
  name?: string;
}

/** Options shared by the change handlers. */
export interface ChangeHandlerOptions {
  /** Id in progress, status and events. Defaults to the method name. */
  id?: string;
  /** Maximum attempts (the first included) before the failure is permanent. Defaults to unlimited. */
  retries?: number;
  /** Time limit of one attempt in ms; `ctx.signal` aborts then and the attempt counts as failed. Defaults to none. */
  timeout?: number;
  /** Backoff overrides; defaults come from the runtime settings (1 s doubling to 5 min, 20 % jitter). */
  backoff?: Partial<BackoffPolicy>;
}

/** Options of `@OnDelete`. */
export interface DeleteHandlerOptions extends ChangeHandlerOptions {
  /**
   * Best-effort cleanup: an optional delete handler does not make the framework add a finalizer, so it runs only if
   * another delete handler holds the object. Defaults to false.
   */
  optional?: boolean;
}

/** Options of `@OnTimer`. */
export interface TimerOptions {
  /** Id in logs and status. Defaults to the method name. */
  id?: string;
  /** Delay before the first run after the object is first seen. Defaults to the interval. */
  initialDelayMs?: number;
  /** Time limit of one run in ms. Defaults to none. */
  timeout?: number;
}

/** Options of `@OnStartup` and `@OnCleanup`. */
export interface ActivityOptions {
  /** Id in logs. Defaults to the method name. */
  id?: string;
  /** Startup: maximum attempts before the operator gives up (fatal). Defaults to unlimited. */
  retries?: number;
  /** Time limit of one attempt in ms. Defaults to none. */
  timeout?: number;
  /** Backoff overrides for startup retries. */
  backoff?: Partial<BackoffPolicy>;
}

/** Options of `@OnEvent`. */
export interface EventHandlerOptions {
  /** Id in logs. Defaults to the method name. */
  id?: string;
}
