/**
 * Retry timing for the API client and the watch loop: exponential backoff with full jitter, and `Retry-After`.
 *
 * Full jitter (a uniformly random delay between 0 and the exponential cap) spreads reconnects of hundreds of
 * DaemonSet pods after an API server restart, instead of having them hammer it in lockstep.
 */

/** Backoff settings. */
export interface BackoffSettings {
  /** Cap of the first delay. Defaults to 500 ms. */
  initialMs?: number;
  /** Largest cap. Defaults to 30 000 ms. */
  maxMs?: number;
}

/** Default initial backoff cap in ms. */
export const DEFAULT_BACKOFF_INITIAL_MS = 500;
/** Default maximal backoff cap in ms. */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;
/** Longest `Retry-After` honoured, in ms: a broken proxy must not park the watch loop for hours. */
export const MAX_RETRY_AFTER_MS = 600_000;

/** The exponential cap for a 0-based attempt: `min(maxMs, initialMs * 2^attempt)`. */
export function backoffCap(attempt: number, settings: BackoffSettings = {}): number {
  const initial = Math.max(0, settings.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS);
  const max = Math.max(initial, settings.maxMs ?? DEFAULT_BACKOFF_MAX_MS);
  // Clamp the exponent so 2^attempt never overflows to Infinity on long outages.
  return Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt), 52));
}

/**
 * A full-jitter delay for a 0-based attempt: uniform in `[0, backoffCap(attempt)]`.
 *
 * @param random - Source of uniform numbers in [0, 1); injectable for tests.
 */
export function fullJitterDelay(
  attempt: number,
  settings: BackoffSettings = {},
  random: () => number = Math.random,
): number {
  return Math.floor(random() * (backoffCap(attempt, settings) + 1));
}

/**
 * Parses a `Retry-After` header: delta-seconds or an HTTP date. Returns seconds (>= 0), or undefined when absent or
 * unparseable.
 *
 * @param now - Current time in ms since the epoch, for HTTP dates.
 */
export function parseRetryAfter(header: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (/^[+-]?\d*\.?\d+$/.test(value)) return undefined; // negative or fractional: not delta-seconds per RFC 9110
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * The delay before the next attempt: the server's `Retry-After` when it sent one (429 Too Many Requests,
 * 503 Service Unavailable), else full-jitter backoff.
 */
export function nextRetryDelay(
  attempt: number,
  retryAfterSeconds: number | undefined,
  settings: BackoffSettings = {},
  random: () => number = Math.random,
): number {
  if (retryAfterSeconds !== undefined) return Math.min(retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS);
  return fullJitterDelay(attempt, settings, random);
}
