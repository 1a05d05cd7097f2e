/**
 * Runs one attempt of one handler with its time limit.
 *
 * Guarantees: the attempt's promise is always awaited to the end, even after its timeout fired, so the object's
 * serialization holds (a handler that ignores `ctx.signal` delays the object's next run instead of overlapping it).
 * A handler that throws after its signal was aborted by the timeout is classified as timed out whatever it threw.
 */
import { HandlerTimeoutError } from '../core/errors.js';

/** The settled attempt. */
export type AttemptOutcome =
  { ok: true; value: unknown; durationMs: number } | { ok: false; error: unknown; durationMs: number };

/** Options of {@link runAttempt}. */
export interface AttemptOptions {
  handlerId: string;
  /** Time limit in ms; undefined for none. */
  timeoutMs?: number;
  /** Aborted on shutdown (after the grace period). */
  shutdownSignal?: AbortSignal;
}

/** Calls `fn` with the attempt's signal and settles with its value or error. Never rejects. */
export async function runAttempt(
  fn: (signal: AbortSignal) => unknown,
  options: AttemptOptions,
): Promise<AttemptOutcome> {
  const timeout = new AbortController();
  const signals = [timeout.signal, ...(options.shutdownSignal ? [options.shutdownSignal] : [])];
  const signal = signals.length === 1 ? timeout.signal : AbortSignal.any(signals);
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => timeout.abort(new HandlerTimeoutError(options.handlerId, options.timeoutMs as number)),
          options.timeoutMs,
        );
  const started = performance.now();
  try {
    const value = await fn(signal);
    return { ok: true, value, durationMs: performance.now() - started };
  } catch (error) {
    const reported = timeout.signal.aborted ? timeout.signal.reason : error;
    return { ok: false, error: reported, durationMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
