/**
 * What handlers receive. The types here are the handler author's whole view of the framework at run time.
 */
import type { Logger } from 'pino';
import type { DiffOp } from '../core/diff.js';
import type { ChangeCause } from '../core/progress.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import type { ResolvedSettings } from './settings.js';

/** Why a handler runs: a change cause, or a timer tick. Field handlers run for `create` or `update`. */
export type HandlerCause = ChangeCause | 'timer';

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
 * The context of a change or timer handler.
 *
 * @typeParam Spec - the resource's spec type.
 * @typeParam Status - the resource's status type.
 * @typeParam Value - type of `old` / `new`: the object essence, or for `@OnField` handlers the field's type.
 */
export interface HandlerContext<Spec = unknown, Status = unknown, Value = ObjectEssence<Spec>> {
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
  /** Failed attempts before this one for this cause (0 on the first attempt). Survives restarts. */
  readonly retry: number;
  /** This instance's id (in node scope, the Node name). */
  readonly instanceId: string;
  /** A pino child bound to the object, cause and handler. */
  readonly logger: Logger;
  readonly patch: HandlerPatch;
  readonly events: HandlerEvents;
  readonly cache: ObjectCache;
  /** Aborted when the attempt's `timeout` elapses or the operator's shutdown grace period ends. */
  readonly signal: AbortSignal;
  readonly settings: HandlerSettings;
  /** The framework's API client, for reading or writing other objects. */
  readonly api: KubeApi;
}

/** The context of an `@OnEvent` handler. */
export interface EventContext<Spec = unknown, Status = unknown> {
  readonly type: 'upsert' | 'delete';
  readonly body: KubeObject;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly uid: string;
  readonly spec: Spec;
  readonly status: Status | undefined;
  readonly instanceId: string;
  readonly logger: Logger;
  readonly cache: ObjectCache;
  readonly settings: HandlerSettings;
  readonly api: KubeApi;
}

/** The context of `@OnStartup` and `@OnCleanup` handlers. */
export interface ActivityContext {
  readonly logger: Logger;
  readonly settings: HandlerSettings;
  readonly api: KubeApi;
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
