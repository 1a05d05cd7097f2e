/**
 * Retry delays: exponential backoff with jitter.
 *
 * The delay of attempt `n` (0-based count of failures so far) is `base = min(maxMs, initialMs * factor^n)`, then
 * jittered downwards into `[base * (1 - jitter), base]`. Jittering only downwards keeps `maxMs` a hard ceiling (an
 * operator author can rely on "never more than 5 minutes between attempts") while still spreading the retries of
 * many objects that failed together (an API outage) instead of retrying them in lock-step.
 */

/** A backoff policy. Every field has a default, see {@link DEFAULT_BACKOFF}. */
export interface BackoffPolicy {
  /** Delay after the first failure. Default 1000 ms. */
  initialMs: number;
  /** Ceiling of any delay. Default 300000 ms (5 minutes). */
  maxMs: number;
  /** Growth per failure. Default 2. */
  factor: number;
  /** Fraction of the delay that is randomized (0 = none, 1 = anywhere in [0, base]). Default 0.2. */
  jitter: number;
}

/** The framework's default policy: 1 s, 2 s, 4 s, ... capped at 5 minutes, 20 % jitter. */
export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialMs: 1_000,
  maxMs: 300_000,
  factor: 2,
  jitter: 0.2,
});

/** Fills a partial policy from `base` (handler options over global settings over defaults), validating it. */
export function resolveBackoff(
  partial: Partial<BackoffPolicy> | undefined,
  base: Readonly<BackoffPolicy> = DEFAULT_BACKOFF,
): BackoffPolicy {
  const policy = { ...base, ...stripUndefined(partial ?? {}) };
  if (!(policy.initialMs >= 0) || !(policy.maxMs >= 0) || !(policy.factor >= 1)) {
    throw new Error(`invalid backoff policy ${JSON.stringify(policy)}: need initialMs >= 0, maxMs >= 0, factor >= 1`);
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new Error(`invalid backoff jitter ${policy.jitter}: need 0 <= jitter <= 1`);
  }
  return policy;
}

/**
 * The delay before the next attempt after `failures` failures (1 = the first failure).
 *
 * @param random - A number in [0, 1); injectable so tests can pin the jitter.
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, failures - 1);
  // Cap the exponent before Math.pow so huge failure counts cannot overflow to Infinity * 0 = NaN.
  const raw = policy.initialMs * Math.pow(policy.factor, Math.min(exponent, 1_000));
  const base = Math.min(policy.maxMs, Number.isFinite(raw) ? raw : policy.maxMs);
  const jittered = base * (1 - policy.jitter * random());
  return Math.max(0, Math.round(jittered));
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
