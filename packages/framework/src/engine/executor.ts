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
  // One controller per attempt, aborted by the timeout or by the shutdown signal. Not `AbortSignal.any`: on Node 20
  // every signal it creates stays registered with its sources for the life of the process (~60 bytes per attempt,
  // never collected while the long-lived shutdown signal lives); a listener removed in `finally` leaves nothing.
  const attempt = new AbortController();
  let timeoutError: HandlerTimeoutError | undefined;
  const { shutdownSignal } = options;
  const onShutdown = (): void => attempt.abort(shutdownSignal?.reason);
  if (shutdownSignal?.aborted) onShutdown();
  else shutdownSignal?.addEventListener('abort', onShutdown, { once: true });
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          // As before shutdown: an attempt still running at its time limit is reported as timed out.
          timeoutError = new HandlerTimeoutError(options.handlerId, options.timeoutMs as number);
          attempt.abort(timeoutError);
        }, options.timeoutMs);
  const started = performance.now();
  try {
    const value = await fn(attempt.signal);
    return { ok: true, value, durationMs: performance.now() - started };
  } catch (error) {
    const reported = timeoutError ?? error;
    return { ok: false, error: reported, durationMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    shutdownSignal?.removeEventListener('abort', onShutdown);
  }
}
