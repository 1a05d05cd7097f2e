/**
 * Option types of the decorators. Every field documents its default.
 */
import type { BackoffPolicy } from '../core/backoff.js';
import type { HandlerFilters } from '../core/filters.js';
import type { ObjectIndex } from '../core/index-store.js';
import type { PrimaryKeys } from '../core/secondary-keys.js';
import type { PermissionDeclaration } from '../manifests/permissions.js';

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
  /**
   * Secondary resources: other resources the operator watches (one watch per resource and selection per runtime,
   * shared by every operator class that declares it). Their objects are readable in every handler
   * (`ctx.caches.<id>`), can be indexed (`@Index({ resource })`), and changes mapped to a primary object (`owns`,
   * `map`) run its `@OnSecondary` handlers. Defaults to none.
   */
  watches?: SecondaryWatch[];
  /**
   * What the operator's own code calls beyond what the framework derives from this class (handlers' requests through
   * `ctx.api`, a `KubeClient` used directly), declared next to that code as kubebuilder's RBAC markers are.
   * `derivePermissions` and `opkit manifests rbac` add them to the framework's own. Nothing checks them at run
   * time. Defaults to none.
   */
  permissions?: PermissionDeclaration[];
}

/** A resource collection, as `watches` names it. */
export interface WatchedResource {
  /** API group; `''` for the core group. */
  group: string;
  version: string;
  plural: string;
  /** Whether objects live in namespaces. Defaults to false. */
  namespaced?: boolean;
}

/** A read-only view of a watch cache. Objects are shared snapshots: do not mutate them. */
export interface CacheView<T extends WatchedObject = WatchedObject> {
  /** Every cached object. */
  list(): T[];
  /** One cached object by name (and namespace for namespaced resources). */
  get(name: string, namespace?: string): T | undefined;
}

/** What a watch's `map` function can read besides the changed object. */
export interface WatchMapContext {
  /** The operator's own (primary) objects. */
  readonly primary: CacheView;
  /** The operator's indexes, by id (maintained before `map` is called, so they include this change). */
  readonly indexes: Readonly<Record<string, ObjectIndex>>;
}

/**
 * One secondary resource of an operator (`@Operator({ watches })`): controller-runtime's `Owns` and `Watches`.
 *
 * Namespaced resources are watched in the runtime's `namespaces` (all by default), like the primary resource.
 */
export interface SecondaryWatch {
  /** The resource to watch. */
  resource: WatchedResource;
  /**
   * Names the watch in `ctx.caches`, `@OnSecondary({ resource })`, `@Index({ resource })` and
   * `ctx.secondary.resource`. Defaults to `resource.plural`; unique per operator.
   */
  id?: string;
  /**
   * The changed object's controller owner reference names the primary object (`ownerReferences` entry with
   * `controller: true` and the primary's group and kind): controller-runtime's `Owns`. Defaults to false.
   */
  owns?: boolean;
  /**
   * Maps a changed object to the primary objects it concerns (names; `namespace/name` or `{ name, namespace }`, the
   * namespace defaulting to the changed object's): controller-runtime's `Watches` with a map function. For an update
   * both the copy before and after are mapped. Runs in the watch loop: keep it quick, and never throw. Defaults to
   * none (with neither `owns` nor `map`, the watch is a cache and index source only).
   */
  map?: (object: WatchedObject, context: WatchMapContext) => PrimaryKeys;
  /** Watch only objects matching this label selector. Defaults to all. */
  labelSelector?: Selector;
  /** Watch only objects matching this field selector. Defaults to all. */
  fieldSelector?: Selector;
  /**
   * What the watch cache keeps of each object (see `OperatorOptions.cacheTransform` for the contract). Defaults to
   * dropping `metadata.managedFields`. Watches are shared only between declarations with the same transform.
   */
  cacheTransform?: (object: WatchedObject) => WatchedObject;
}

/**
 * Per-handler filters (Kopf's `labels=`, `annotations=`, `when=`): the handler runs only for objects that match all
 * of them, evaluated against the current object whenever the handler could run. Values are a string (that exact
 * value), `PRESENT`, `ABSENT`, or a predicate over the value (`undefined` when absent). Default: no filter.
 */
export type FilterOptions = HandlerFilters<WatchedObject>;

/** Options shared by the change handlers. */
export interface ChangeHandlerOptions extends FilterOptions {
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

/** Options of `@OnField`. */
export interface FieldHandlerOptions extends ChangeHandlerOptions {
  /**
   * Whether the handler also runs on create (when the field is set then). With `false` it runs only when an update
   * changes the field. Defaults to true.
   */
  onCreate?: boolean;
}

/** Options of `@OnTimer`. */
export interface TimerOptions extends FilterOptions {
  /** Id in logs and status. Defaults to the method name. */
  id?: string;
  /**
   * Delay before the first run after the object is first seen. Defaults to the interval, or for `idleMs` timers to
   * 0 (the first run then comes once the object was quiet for `idleMs`).
   */
  initialDelayMs?: number;
  /** Time limit of one run in ms; a run that exceeds it failed and is retried. Defaults to none. */
  timeout?: number;
  /**
   * Maximum attempts of one tick (the first included) before its failure is final and the timer waits for its next
   * regular tick. Defaults to the runtime's `retries` (unlimited).
   */
  retries?: number;
  /** Backoff between the retries of a failed run; defaults come from the runtime settings. */
  backoff?: Partial<BackoffPolicy>;
  /**
   * Run only once the object has not changed (spec, labels, annotations) for this long, in ms, and then every
   * interval while it stays unchanged; a change makes it wait this long again (Kopf's `idle`). Defaults to none.
   */
  idleMs?: number;
  /**
   * Keep a fixed schedule: the interval is measured from the start of one run to the start of the next, instead of
   * from the end of one run (Kopf's `sharp`). Defaults to false.
   */
  sharp?: boolean;
}

/** Options of `@OnSecondary`. */
export interface SecondaryHandlerOptions extends ChangeHandlerOptions {
  /** Handle only changes of this watch (its `id`). Defaults to changes of every watch. */
  resource?: string;
}

/** Options of `@Daemon`. */
export interface DaemonOptions extends FilterOptions {
  /** Id in logs, metrics and Events. Defaults to the method name. */
  id?: string;
  /**
   * After `ctx.signal` was aborted (deletion, filters no longer matching, shutdown), how long to wait for the daemon
   * to return before giving up on it: the finalizer release and the shutdown then go on, and the daemon is left to
   * itself (still counted as running: no second one is started for the object until it returns). Defaults to 10 000.
   */
  cancellationTimeoutMs?: number;
  /** Delay before the daemon first starts for an object. Defaults to 0. */
  initialDelayMs?: number;
  /** Maximum attempts (the first start included) before a failing daemon is given up. Defaults to unlimited. */
  retries?: number;
  /** Backoff between restarts after failures; defaults come from the runtime settings. */
  backoff?: Partial<BackoffPolicy>;
}

/** Options of `@Index`. */
export interface IndexOptions extends FilterOptions {
  /** The index's name in `ctx.indexes` and `ctx.index(id)`. Defaults to the method name. */
  id?: string;
  /** Index the objects of this watch (its `id`) instead of the operator's own objects. Defaults to the own ones. */
  resource?: string;
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
