/**
 * What handlers receive. The types here are the handler author's whole view of the framework at run time.
 */
import type { Logger } from 'pino';
import type { DiffOp } from '../core/diff.js';
import type { ObjectIndex } from '../core/index-store.js';
import type { ChangeCause } from '../core/progress.js';
import type { EventTarget, EventType } from '../kube/events.js';
import type { FullKubeApi, KubeObject } from '../kube/types.js';
import type { ResolvedSettings } from './settings.js';

/**
 * Why a handler runs: a change cause, a timer tick, a change of a watched object (`@OnSecondary`), or a daemon.
 * Field handlers run for `create` or `update`.
 */
export type HandlerCause = ChangeCause | 'timer' | 'secondary' | 'daemon';

/** The essence of an object as handlers see it in `ctx.old` / `ctx.new` (field handlers get the field instead). */
export interface ObjectEssence<Spec = unknown> {
  spec?: Spec;
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

/**
 * Merge-patch accumulators, written by the framework after the handler returns (also when it throws, so a handler
 * can report why it failed). Assigning `null` deletes a key (merge-patch semantics).
 */
export interface HandlerPatch {
  /** Merged into `status` (shared by all instances in node scope). */
  status: Record<string, unknown>;
  /** Node scope: merged into `status.<instanceStatusField>.<instanceId>`; cluster scope: same as `status`. */
  instanceStatus: Record<string, unknown>;
  /**
   * Labels and annotations to set (string) or remove (null). They are part of the essence, so changing them
   * triggers an update cause afterwards, except annotations under the framework's prefix.
   */
  metadata: { labels: Record<string, string | null>; annotations: Record<string, string | null> };
}

/** Event posting for handlers (deduplicated and rate-limited; never throws). */
export interface HandlerEvents {
  normal(reason: string, message: string): void;
  warning(reason: string, message: string): void;
}

/**
 * Event posting about any object, for code that runs outside a handler (`@OnStartup` and the long-lived components it
 * creates). It is the runtime's recorder, shared with handlers: deduplicated (repeats of the same object, type,
 * reason and message within 10 minutes bump one Event's count), rate-limited per object, flushed at shutdown, never
 * throwing and never waiting.
 */
export interface EventPublisher {
  /**
   * Queues an Event about `target`. A target without `apiVersion`/`kind` is taken to be of this operator's resource.
   * Events about cluster-scoped objects go to namespace `default`.
   */
  record(target: EventTarget, type: EventType, reason: string, message: string): void;
  /** The `normal`/`warning` shorthand bound to one object, as handlers have it in `ctx.events`. */
  about(target: EventTarget): HandlerEvents;
}

/** A change of the cluster's Nodes, as {@link NodeCache.onChange} delivers it. */
export type NodeChange =
  | {
      type: 'upsert';
      /** The Node as it is now. */
      node: KubeObject;
      /** Its previous copy; undefined when the Node is new to this instance. */
      previous: KubeObject | undefined;
      /** The Node is this instance's own (its name is the instance id). */
      own: boolean;
    }
  | { type: 'delete'; node: KubeObject; own: boolean }
  /** After every complete (re)list of Nodes: the cache equals the cluster's list. */
  | { type: 'synced' };

/** Receives Node changes; runs inside the watch loop, so it must return quickly (schedule work, do not await it). */
export type NodeChangeListener = (change: NodeChange) => void;

/** Options of {@link NodeCache.onChange}. */
export interface NodeChangeOptions {
  /** Only changes of this instance's own Node (no `synced`). Defaults to false (every change). */
  ownOnly?: boolean;
}

/**
 * Read-only access to the cluster's Nodes, backed by the one Nodes watch the runtime runs in node scope (the same
 * watch that releases what dead instances held). Objects are shared snapshots: do not mutate them.
 *
 * With `nodeWatch: 'own'` the watch follows only this instance's own Node: `list()` then holds that one Node (or
 * nothing before it exists), `get()` finds no other, and changes concern only it.
 */
export interface NodeCache {
  /** True once the first complete list of Nodes arrived. */
  readonly synced: boolean;
  /**
   * True while the Nodes watch stream is open. False while it is listing or reconnecting after an error (an API
   * outage, this node cut off): the cache may then lack changes others already see, e.g. a Node deleted meanwhile.
   */
  readonly streaming: boolean;
  /** Every cached Node. */
  list(): KubeObject[];
  /** One cached Node by name. */
  get(name: string): KubeObject | undefined;
  /** This instance's own Node (named like `instanceId`), if it exists. */
  own(): KubeObject | undefined;
  /**
   * Resolves once the first list of Nodes arrived (at once if it did). Rejects when `signal` aborts or the runtime
   * stops first. A list that keeps failing (e.g. without RBAC access to Nodes) keeps this pending; the watch logs why.
   */
  whenSynced(signal?: AbortSignal): Promise<void>;
  /**
   * Subscribes to Node changes (of any Node, or with `ownOnly` of this instance's own Node). Changes come in watch
   * order; there is no replay of what is already cached (read `list()` first, then subscribe, within one tick).
   *
   * @returns the unsubscribe function (idempotent). Subscriptions end by themselves when the runtime stops.
   */
  onChange(listener: NodeChangeListener, options?: NodeChangeOptions): () => void;
}

/** Read access to the watcher's cache of this operator's resource. */
export interface ObjectCache {
  /** Every cached object. */
  list(): KubeObject[];
  /** One cached object by name (and namespace for namespaced resources). */
  get(name: string, namespace?: string): KubeObject | undefined;
}

/** The public, read-only view of the runtime settings. */
export type HandlerSettings = ResolvedSettings;

/**
 * The framework's API client as handlers, daemons and activities get it (`ctx.api`): every {@link KubeApi} verb, plus
 * replace (PUT), server-side apply and a 404 test, tested against the real API server.
 *
 * @example
 * ```ts
 * await ctx.api.apply(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data },
 *   { fieldManager: 'widget-operator', force: true });
 * try { await ctx.api.delete(CONFIGMAPS, name, namespace); } catch (error) { if (!ctx.api.isNotFound(error)) throw error; }
 * ```
 */
export type HandlerApi = FullKubeApi;

/**
 * What every handler of an operator can read besides its object: the caches of its watches and its indexes. Both
 * are complete once the operator is ready (handlers run only after every watch listed once).
 */
export interface OperatorViews {
  /** The watch cache of the operator's own resource. */
  readonly cache: ObjectCache;
  /** The watch caches of the operator's secondary resources (`@Operator({ watches })`), by watch id. */
  readonly caches: Readonly<Record<string, ObjectCache>>;
  /** The operator's indexes (`@Index`), by id. */
  readonly indexes: Readonly<Record<string, ObjectIndex>>;
  /**
   * One index by id, with the type of its values (the index function's return type is not checked against it).
   * Throws for an id that no `@Index` declares.
   */
  index<V = unknown>(id: string): ObjectIndex<V>;
}

/** A change of a watched (secondary) object, as `@OnSecondary` handlers get it in `ctx.secondary`. */
export interface SecondaryChange<T extends KubeObject = KubeObject> {
  /** The id of the watch (`@Operator({ watches: [{ id }] })`, by default the resource's plural). */
  readonly resource: string;
  /** `upsert`: created or changed (the latest copy); `delete`: deleted (its last known copy). */
  readonly type: 'upsert' | 'delete';
  readonly object: T;
  /** The cached copy before the first of the changes delivered now; undefined for an object new to the watch. */
  readonly previous: T | undefined;
}

/**
 * The context of a change or timer handler.
 *
 * @typeParam Spec - the resource's spec type.
 * @typeParam Status - the resource's status type.
 * @typeParam Value - type of `old` / `new`: the object essence, or for `@OnField` handlers the field's type.
 */
export interface HandlerContext<Spec = unknown, Status = unknown, Value = ObjectEssence<Spec>> extends OperatorViews {
  /** The object as last seen (a snapshot; do not mutate). */
  readonly body: KubeObject;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly uid: string;
  readonly spec: Spec;
  readonly status: Status | undefined;
  /** What this instance last handled (undefined on create). Field handlers: the field's old value. */
  readonly old: Value | undefined;
  /** What is handled now. Field handlers: the field's new value. On delete and resume: the current essence. */
  readonly new: Value | undefined;
  /** From `old` to `new`, sorted by path (full paths from the essence root, also for field handlers). */
  readonly diff: readonly DiffOp[];
  readonly cause: HandlerCause;
  /** The running handler's id. */
  readonly handlerId: string;
  /**
   * Failed attempts before this one for this cause (0 on the first attempt). A change handler's count survives
   * restarts (it is stored with the object); a timer's or an `@OnSecondary` handler's starts again at 0.
   */
  readonly retry: number;
  /** This instance's id (in node scope, the Node name). */
  readonly instanceId: string;
  /** A pino child bound to the object, cause and handler. */
  readonly logger: Logger;
  /** A pino child bound to the operator only, for work that outlives this handler. */
  readonly operatorLogger: Logger;
  readonly patch: HandlerPatch;
  readonly events: HandlerEvents;
  /** The cluster's Nodes (node scope; undefined in cluster scope). */
  readonly nodes: NodeCache | undefined;
  /** Aborted when the attempt's `timeout` elapses or the operator's shutdown grace period ends. */
  readonly signal: AbortSignal;
  readonly settings: HandlerSettings;
  /** The framework's API client, for reading or writing other objects. */
  readonly api: HandlerApi;
}

/**
 * The context of an `@OnSecondary` handler: the primary object's handler context (`cause: 'secondary'`; `old` and
 * `new` are its current essence, `diff` is empty), plus the change of the watched object.
 *
 * @typeParam Secondary - the watched object's type.
 */
export interface SecondaryContext<
  Spec = unknown,
  Status = unknown,
  Secondary extends KubeObject = KubeObject,
> extends HandlerContext<Spec, Status> {
  readonly secondary: SecondaryChange<Secondary>;
}

/**
 * The context of a `@Daemon`. Unlike a handler's, its object fields are live: `body`, `spec` and `status` read the
 * freshest copy of the object each time (do not keep them in variables across awaits if you want the latest).
 */
export interface DaemonContext<Spec = unknown, Status = unknown> extends OperatorViews {
  /** The object as last seen (a snapshot per read; do not mutate). */
  readonly body: KubeObject;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly uid: string;
  readonly spec: Spec;
  readonly status: Status | undefined;
  /** The daemon's id. */
  readonly daemonId: string;
  /** Failed runs of this daemon for this object before this one (0 on the first start). */
  readonly retry: number;
  readonly instanceId: string;
  /** A pino child bound to the object and the daemon. */
  readonly logger: Logger;
  /** A pino child bound to the operator only. */
  readonly operatorLogger: Logger;
  /** Events about this object. */
  readonly events: HandlerEvents;
  /** The cluster's Nodes (node scope; undefined in cluster scope). */
  readonly nodes: NodeCache | undefined;
  /**
   * Aborted when the daemon must stop: the object is being deleted or is gone, it no longer matches the daemon's
   * filters, or the operator shuts down.
   */
  readonly signal: AbortSignal;
  readonly settings: HandlerSettings;
  readonly api: HandlerApi;
  /**
   * Waits `ms`, or less when `signal` aborts first. Resolves true when the full time passed, false when the daemon
   * must stop: `while (await ctx.sleep(10_000)) { ... }`.
   */
  sleep(ms: number): Promise<boolean>;
}

/** The context of an `@OnEvent` handler. */
export interface EventContext<Spec = unknown, Status = unknown> extends OperatorViews {
  readonly type: 'upsert' | 'delete';
  readonly body: KubeObject;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly uid: string;
  readonly spec: Spec;
  readonly status: Status | undefined;
  readonly instanceId: string;
  /** A pino child bound to the object and the event type. */
  readonly logger: Logger;
  /** A pino child bound to the operator only. */
  readonly operatorLogger: Logger;
  /** The cluster's Nodes (node scope; undefined in cluster scope). */
  readonly nodes: NodeCache | undefined;
  readonly settings: HandlerSettings;
  readonly api: HandlerApi;
}

/**
 * The context of `@OnStartup` and `@OnCleanup` handlers. What it holds (other than `retry` and `signal`) stays valid
 * until the runtime stopped, so long-lived components created at startup may keep `api`, `events`, `nodes` and
 * `operatorLogger`.
 */
export interface ActivityContext {
  /** A pino child bound to this activity (`handler`, `activity`): for the activity's own messages. */
  readonly logger: Logger;
  /** A pino child bound to the operator only: for long-lived components created here. */
  readonly operatorLogger: Logger;
  /** Events about any object, through the runtime's recorder. */
  readonly events: EventPublisher;
  /**
   * The cluster's Nodes (node scope; undefined in cluster scope). Its watch starts before the startup handlers, so
   * they can `await ctx.nodes.whenSynced(ctx.signal)`, and stops after the cleanup handlers.
   */
  readonly nodes: NodeCache | undefined;
  readonly settings: HandlerSettings;
  readonly api: HandlerApi;
  readonly instanceId: string;
  /** Startup: failed attempts so far. Cleanup: always 0. */
  readonly retry: number;
  /** Aborted when the attempt's timeout elapses (startup) or the shutdown must end (cleanup). */
  readonly signal: AbortSignal;
}

/** A fresh, empty patch accumulator. */
export function emptyHandlerPatch(): HandlerPatch {
  return { status: {}, instanceStatus: {}, metadata: { labels: {}, annotations: {} } };
}
