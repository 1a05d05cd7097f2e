/**
 * Errors a handler throws to steer retries.
 *
 * Anything else a handler throws is treated as temporary: it is retried with the handler's exponential backoff.
 * These two classes exist for the cases where the handler knows better than the backoff.
 */

/** Options of {@link TemporaryError}. */
export interface TemporaryErrorOptions {
  /** Retry after this many milliseconds instead of the handler's backoff delay. */
  delayMs?: number;
  /** The underlying error, kept for logs. */
  cause?: unknown;
}

/**
 * A failure that will likely go away: the handler is retried, after `delayMs` when given, else after its backoff
 * delay. Counts towards the handler's `retries` limit like any other failure.
 *
 * @example
 * ```ts
 * if (!gatewayReachable) throw new TemporaryError('gateway not reachable yet', { delayMs: 5_000 });
 * ```
 */
export class TemporaryError extends Error {
  /** Requested delay before the next attempt, if the thrower chose one. */
  readonly delayMs: number | undefined;

  constructor(message: string, options: TemporaryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TemporaryError';
    this.delayMs = options.delayMs;
  }
}

/**
 * A failure that retrying cannot fix (invalid input, refused by policy): the handler is not retried for this cause.
 * The failure is recorded in status and reported as a Warning event.
 *
 * Caveat: a permanently failed delete handler keeps the finalizer (the framework never releases an object whose
 * cleanup failed); an administrator resolves it, for example by removing the finalizer by hand.
 */
export class PermanentError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PermanentError';
  }
}

/**
 * Raised by the framework (never by handlers) when one attempt of a handler exceeds its `timeout`. It is a
 * temporary failure: the handler is retried with backoff and the attempt counts towards `retries`.
 */
export class HandlerTimeoutError extends Error {
  constructor(
    readonly handlerId: string,
    readonly timeoutMs: number,
  ) {
    super(`handler '${handlerId}' timed out after ${timeoutMs} ms`);
    this.name = 'HandlerTimeoutError';
  }
}

/** How the framework classifies a thrown value. */
export type FailureKind = 'temporary' | 'permanent' | 'timeout';

/** Classifies a thrown value (pure; used by the executor and its tests). */
export function classifyFailure(error: unknown): FailureKind {
  if (error instanceof PermanentError) return 'permanent';
  if (error instanceof HandlerTimeoutError) return 'timeout';
  return 'temporary';
}

/** A one-line message for status and events; never throws, whatever was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
