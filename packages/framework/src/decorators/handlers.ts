/**
 * Method decorators. Each records a {@link HandlerSpec} on the class; nothing runs until the runtime starts.
 *
 * Handlers of one cause run one after the other, in the order they are written in the class, and never
 * concurrently for the same object. They must be idempotent: after a crash the handler that was running is run
 * again, and in node scope a lost state directory makes every object look new.
 */
import { hasFilters, type HandlerFilters } from '../core/filters.js';
import type { ExtendedHandlerSpec } from '../core/handler-extensions.js';
import type { HandlerKind } from '../core/handlers.js';
import { parseFieldPath, type FieldPath } from '../core/paths.js';
import { defineHandler, nextOrder } from './metadata.js';
import type {
  ActivityOptions,
  ChangeHandlerOptions,
  DeleteHandlerOptions,
  EventHandlerOptions,
  FieldHandlerOptions,
  FilterOptions,
  TimerOptions,
} from './options.js';

/** A legacy (`experimentalDecorators`) method decorator. */
export type HandlerDecorator = (target: object, propertyKey: string | symbol, descriptor?: PropertyDescriptor) => void;

function handlerDecorator(
  kind: HandlerKind,
  build: (method: string | symbol) => Partial<ExtendedHandlerSpec>,
): HandlerDecorator {
  return (target, propertyKey, descriptor) => {
    assertMethod(`@${kind} handler`, target, propertyKey, descriptor);
    const extra = build(propertyKey);
    const spec: ExtendedHandlerSpec = { kind, id: String(propertyKey), method: propertyKey, order: nextOrder() };
    for (const [key, value] of Object.entries(extra)) {
      if (value !== undefined) (spec as unknown as Record<string, unknown>)[key] = value;
    }
    defineHandler(target, spec);
  };
}

/** Throws unless `propertyKey` names a method (decorators on fields or accessors are mistakes). */
export function assertMethod(
  what: string,
  target: object,
  propertyKey: string | symbol,
  descriptor: PropertyDescriptor | undefined,
): void {
  const method = descriptor?.value ?? (target as Record<string | symbol, unknown>)[propertyKey];
  if (typeof method !== 'function') throw new Error(`${what}: ${String(propertyKey)} is not a method`);
}

/** The filters among a decorator's options, or undefined when it has none (so specs stay small). */
export function filtersOf(options: FilterOptions | undefined): HandlerFilters | undefined {
  if (!options || !hasFilters(options)) return undefined;
  const { labels, annotations, when } = options;
  return {
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
    ...(when ? { when: when as HandlerFilters['when'] } : {}),
  };
}

function changeOptions(options: ChangeHandlerOptions = {}): Partial<ExtendedHandlerSpec> {
  return {
    id: options.id,
    retries: options.retries,
    timeoutMs: options.timeout,
    backoff: options.backoff,
    filters: filtersOf(options),
  };
}

function activityOptions(options: ActivityOptions = {}): Partial<ExtendedHandlerSpec> {
  return { id: options.id, retries: options.retries, timeoutMs: options.timeout, backoff: options.backoff };
}

/**
 * Runs when this instance sees the object for the first time (no diff-base), including after its state was lost.
 * `ctx.old` is undefined; `ctx.new` and `ctx.diff` describe the whole essence.
 */
export function OnCreate(options?: ChangeHandlerOptions): HandlerDecorator {
  return handlerDecorator('create', () => changeOptions(options));
}

/**
 * Runs when the essence (spec, labels, annotations other than the framework's) differs from what this instance
 * last handled. Status-only changes and the framework's own writes never trigger it.
 */
export function OnUpdate(options?: ChangeHandlerOptions): HandlerDecorator {
  return handlerDecorator('update', () => changeOptions(options));
}

/**
 * Runs when the object is being deleted and holds our finalizer. Unless `optional`, its presence makes the
 * framework add the finalizer before any other handler runs; the finalizer is released only after every delete
 * handler succeeded.
 */
export function OnDelete(options?: DeleteHandlerOptions): HandlerDecorator {
  return handlerDecorator('delete', () => ({ ...changeOptions(options), optional: options?.optional }));
}

/**
 * Runs once per object after the operator (re)starts, when the object was handled before and has not changed since:
 * the place to re-establish in-memory or node-local effects.
 */
export function OnResume(options?: ChangeHandlerOptions): HandlerDecorator {
  return handlerDecorator('resume', () => changeOptions(options));
}

/**
 * Runs on create and update when the value at `field` changed (on create: when it is set, unless
 * `onCreate: false`). `ctx.old` / `ctx.new` are that field's values; `ctx.diff` holds the operations under it (full
 * paths). The default id is `<method>/<field>`.
 *
 * Field handlers run with the create or update handlers of the same change, one after the other in declaration
 * order: declared below `@OnCreate`, a field handler runs after it, once it finished (succeeded or failed for good);
 * declared above, before it.
 */
export function OnField(field: FieldPath, options?: FieldHandlerOptions): HandlerDecorator {
  const path = parseFieldPath(field);
  return handlerDecorator('field', (method) => ({
    ...changeOptions(options),
    id: options?.id ?? `${String(method)}/${path.join('.')}`,
    field: path,
    onCreate: options?.onCreate,
  }));
}

/**
 * Runs for every watch event of the resource (upserts and deletions), as it arrives, with no state, no retries and
 * no finalizer. Errors are logged. Not serialized with the change handlers.
 */
export function OnEvent(options?: EventHandlerOptions): HandlerDecorator {
  return handlerDecorator('event', () => ({ id: options?.id }));
}

/**
 * Runs every `intervalMs` for every object (measured from the end of one run to the start of the next, or start to
 * start with `sharp`), serialized with the object's other handlers. Starts when the object is first seen, whatever
 * its create handlers do (they may still be retrying or have failed, as in Kopf); with `idleMs`, runs only once the
 * object has not changed for that long. Stops when the object is being deleted.
 *
 * A failed run is retried as a change handler's is: after a `TemporaryError`'s delay or the backoff, until it
 * succeeds, throws a `PermanentError` or used up `retries`, with `ctx.retry` counting the failed attempts. No regular
 * tick comes meanwhile; afterwards the interval counts from the end of the last attempt (from the start of the first
 * with `sharp`). Retry counts are kept in memory only.
 */
export function OnTimer(intervalMs: number, options?: TimerOptions): HandlerDecorator {
  if (!(intervalMs > 0)) throw new Error(`@OnTimer: interval must be positive, not ${intervalMs}`);
  if (options?.idleMs !== undefined && !(options.idleMs > 0)) {
    throw new Error(`@OnTimer: idleMs must be positive, not ${options.idleMs}`);
  }
  return handlerDecorator('timer', () => ({
    id: options?.id,
    intervalMs,
    initialDelayMs: options?.initialDelayMs,
    timeoutMs: options?.timeout,
    retries: options?.retries,
    backoff: options?.backoff,
    idleMs: options?.idleMs,
    sharp: options?.sharp,
    filters: filtersOf(options),
  }));
}

/**
 * Runs once when the runtime starts, before any watch begins. Failures are retried with backoff (unlimited by
 * default); the operator is not ready until every startup handler succeeded. A `PermanentError` is fatal.
 */
export function OnStartup(options?: ActivityOptions): HandlerDecorator {
  return handlerDecorator('startup', () => activityOptions(options));
}

/** Runs once at shutdown, after running handlers finished (or the grace period ended). Errors are logged. */
export function OnCleanup(options?: ActivityOptions): HandlerDecorator {
  return handlerDecorator('cleanup', () => ({ id: options?.id, timeoutMs: options?.timeout }));
}
