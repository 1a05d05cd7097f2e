/**
 * Handler descriptors: what the decorators record and the engine executes. Defined here, in the pure layer, so that
 * both the decorators (above) and the engine (beside) share one vocabulary without importing each other.
 */
import type { BackoffPolicy } from './backoff.js';

/** Handlers that react to a change of the object and keep progress. */
export type ChangeHandlerKind = 'create' | 'update' | 'delete' | 'resume' | 'field';
/** Every handler kind. */
export type HandlerKind = ChangeHandlerKind | 'event' | 'timer' | 'startup' | 'cleanup';

/** One decorated method. */
export interface HandlerSpec {
  kind: HandlerKind;
  /** Unique within the operator and kind; defaults to the method name (field handlers: `method/field.path`). */
  id: string;
  /** The decorated method's name. */
  method: string | symbol;
  /** Declaration order; handlers of one cause run in this order. */
  order: number;
  /** Field handlers: the watched field. */
  field?: string[];
  /** Timers: the interval between the end of one run and the start of the next. */
  intervalMs?: number;
  /** Timers: the delay before the first run (defaults to the interval). */
  initialDelayMs?: number;
  /** Maximum attempts before the failure is permanent (default: unlimited). */
  retries?: number;
  /** Time limit of one attempt in milliseconds (default: none). */
  timeoutMs?: number;
  /** Backoff overrides for this handler. */
  backoff?: Partial<BackoffPolicy>;
  /** Delete handlers: when true, they do not make the framework add a finalizer (best-effort cleanup). */
  optional?: boolean;
}

/** True when the handlers need a finalizer: at least one delete handler that is not optional. */
export function needsFinalizer(handlers: readonly HandlerSpec[]): boolean {
  return handlers.some((handler) => handler.kind === 'delete' && !handler.optional);
}

/** True when the operator keeps change state at all (diff-base, progress). Pure event/timer operators do not. */
export function keepsChangeState(handlers: readonly HandlerSpec[]): boolean {
  return handlers.some((handler) => ['create', 'update', 'delete', 'resume', 'field'].includes(handler.kind));
}

/** Rejects definitions that could not work: duplicate ids within one kind, bad intervals. */
export function validateHandlers(operator: string, handlers: readonly HandlerSpec[]): void {
  const seen = new Set<string>();
  for (const handler of handlers) {
    // Ids share a namespace per cause; create and update may both use the method name, two field handlers may not.
    const group = handler.kind === 'field' ? 'create|update' : handler.kind;
    for (const kind of group.split('|')) {
      const key = `${kind}:${handler.id}`;
      if (seen.has(key)) throw new Error(`${operator}: duplicate handler id '${handler.id}' for ${kind}`);
      seen.add(key);
    }
    if (handler.kind === 'timer' && !(typeof handler.intervalMs === 'number' && handler.intervalMs > 0)) {
      throw new Error(`${operator}: timer '${handler.id}' needs a positive interval`);
    }
    if (handler.retries !== undefined && !(handler.retries >= 1)) {
      throw new Error(`${operator}: handler '${handler.id}' retries must be >= 1 (it counts attempts)`);
    }
  }
}
