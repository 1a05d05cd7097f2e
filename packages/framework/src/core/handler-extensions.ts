/**
 * Handler descriptors beyond {@link HandlerSpec}: the per-handler options that came with filters, timer idling and
 * sharpness and `@OnField({ onCreate })`, and the handler kinds that are not change, event, timer or activity
 * handlers: `@OnSecondary`, `@Daemon` and `@Index`. Like `handlers.ts`, defined in the pure layer so that decorators
 * and engine share them without importing each other.
 */
import type { BackoffPolicy } from './backoff.js';
import { validateFilters, type HandlerFilters } from './filters.js';
import type { HandlerSpec } from './handlers.js';
import { validateTiming } from './timer-schedule.js';

/** Options the decorators record on a {@link HandlerSpec} in addition to its own fields. */
export interface HandlerExtras {
  /** Labels, annotations and `when` the object must match for the handler to run. */
  filters?: HandlerFilters;
  /** Timers: run only when the object did not change for this long (ms). */
  idleMs?: number;
  /** Timers: measure the interval start-to-start. */
  sharp?: boolean;
  /** Field handlers: whether they run on create (when the field is set). Defaults to true. */
  onCreate?: boolean;
}

/** A handler descriptor with its extras. */
export type ExtendedHandlerSpec = HandlerSpec & HandlerExtras;

/** The extras of a handler (an empty object when it has none). */
export function extrasOf(handler: HandlerSpec): HandlerExtras {
  return handler as ExtendedHandlerSpec;
}

/** What every method-backed handler has. */
export interface MethodSpec {
  /** Unique among the handlers of its kind in one operator. */
  id: string;
  method: string | symbol;
  /** Declaration order. */
  order: number;
  filters?: HandlerFilters;
}

/** `@OnSecondary`: runs for changes of watched (secondary) objects mapped to the primary object. */
export interface SecondaryHandlerSpec extends MethodSpec {
  kind: 'secondary';
  /** Only changes of this watch (its id). Defaults to every watch. */
  resource?: string;
  retries?: number;
  timeoutMs?: number;
  backoff?: Partial<BackoffPolicy>;
}

/** `@Daemon`: a long-lived task per object. */
export interface DaemonSpec extends MethodSpec {
  kind: 'daemon';
  /** After its signal is aborted, how long to wait for the task to return before giving up on it. */
  cancellationTimeoutMs?: number;
  /** Delay before the first start for an object. */
  initialDelayMs?: number;
  /** Maximum attempts (restarts after failures, plus one). */
  retries?: number;
  backoff?: Partial<BackoffPolicy>;
}

/** `@Index`: an in-memory index over the primary or a watched resource. */
export interface IndexSpec extends MethodSpec {
  kind: 'index';
  /** The watch id of the indexed resource. Defaults to the operator's own resource. */
  resource?: string;
}

/** Everything {@link validateExtensions} checks, of one operator. */
export interface ExtensionsToValidate {
  handlers: readonly HandlerSpec[];
  secondary: readonly SecondaryHandlerSpec[];
  daemons: readonly DaemonSpec[];
  indexes: readonly IndexSpec[];
  /** Ids of the operator's watches (`@Operator({ watches })`). */
  watchIds: readonly string[];
  /** Ids of watches that map changes to primaries (`map` or `owns`). */
  mappingWatchIds: readonly string[];
}

/**
 * Rejects definitions that could not work: duplicate ids, filters of the wrong shape, bad timer schedules, handlers
 * or indexes of watches that do not exist, and watches that map changes to primaries no `@OnSecondary` handles.
 */
export function validateExtensions(operator: string, input: ExtensionsToValidate): void {
  for (const handler of input.handlers) {
    const extras = extrasOf(handler);
    validateFilters(`${operator}: handler '${handler.id}'`, extras.filters);
    if (handler.kind === 'timer') {
      validateTiming(`${operator}: timer '${handler.id}'`, {
        intervalMs: handler.intervalMs as number,
        ...(handler.initialDelayMs === undefined ? {} : { initialDelayMs: handler.initialDelayMs }),
        ...(extras.idleMs === undefined ? {} : { idleMs: extras.idleMs }),
      });
    }
  }
  const watchIds = new Set(input.watchIds);
  unique(operator, '@OnSecondary handler', input.secondary);
  unique(operator, '@Daemon', input.daemons);
  unique(operator, '@Index', input.indexes);
  for (const handler of input.secondary) {
    validateFilters(`${operator}: @OnSecondary '${handler.id}'`, handler.filters);
    if (handler.resource !== undefined && !watchIds.has(handler.resource)) {
      throw new Error(
        `${operator}: @OnSecondary '${handler.id}' names watch '${handler.resource}', which is not declared`,
      );
    }
    if (handler.retries !== undefined && !(handler.retries >= 1)) {
      throw new Error(`${operator}: @OnSecondary '${handler.id}' retries must be >= 1 (it counts attempts)`);
    }
  }
  for (const daemon of input.daemons) {
    validateFilters(`${operator}: @Daemon '${daemon.id}'`, daemon.filters);
    for (const field of ['cancellationTimeoutMs', 'initialDelayMs'] as const) {
      const value = daemon[field];
      if (value !== undefined && !(value >= 0))
        throw new Error(`${operator}: @Daemon '${daemon.id}' ${field} must be >= 0`);
    }
    if (daemon.retries !== undefined && !(daemon.retries >= 1)) {
      throw new Error(`${operator}: @Daemon '${daemon.id}' retries must be >= 1 (it counts attempts)`);
    }
  }
  for (const index of input.indexes) {
    validateFilters(`${operator}: @Index '${index.id}'`, index.filters);
    if (index.resource !== undefined && !watchIds.has(index.resource)) {
      throw new Error(`${operator}: @Index '${index.id}' names watch '${index.resource}', which is not declared`);
    }
  }
  for (const watchId of input.mappingWatchIds) {
    const handled = input.secondary.some((handler) => handler.resource === undefined || handler.resource === watchId);
    if (!handled) {
      throw new Error(
        `${operator}: watch '${watchId}' maps changes to primary objects (map or owns), but no @OnSecondary handler ` +
          'handles them; add one, or drop map/owns to keep the watch as a cache only',
      );
    }
  }
}

function unique(operator: string, what: string, specs: readonly MethodSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.id)) throw new Error(`${operator}: duplicate ${what} id '${spec.id}'`);
    seen.add(spec.id);
  }
}
