/**
 * Rate limits of the kube layer:
 * - {@link KeyedTokenBucket}: per-key token buckets, for Kubernetes Events per target object. A handler failing in a
 *   tight retry loop must not flood the API server (and `kubectl describe`) with Events: each target object gets
 *   `burst` tokens, refilled at `refillPerSecond`; a record without a token is dropped.
 * - {@link ResolutionLimiter}: how often the API client may resolve credentials again. Each resolution spawns a helper
 *   process (and maybe an exec plugin): a revoked token answered by 401 on every request, on every node, must not
 *   become a spawn storm.
 */

/** Options for {@link KeyedTokenBucket}. */
export interface TokenBucketOptions {
  /** Bucket size: events allowed at once. */
  burst: number;
  /** Tokens added per second. */
  refillPerSecond: number;
  /** Clock in ms; injectable for tests. Defaults to Date.now. */
  now?: () => number;
  /** Keys tracked at most; full buckets are forgotten first. Defaults to 10 000. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** A token bucket per key (e.g. per target uid). */
export class KeyedTokenBucket {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: TokenBucketOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const bucket = this.refilled(key, now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Tokens available for `key` now (fractional). */
  available(key: string): number {
    return this.refilled(key, this.now()).tokens;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  private refilled(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      this.makeRoom(now);
      bucket = { tokens: this.options.burst, updatedAt: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    // A clock that goes backwards (injected clocks, NTP steps) must not drain or overfill the bucket.
    const elapsedSeconds = Math.max(0, now - bucket.updatedAt) / 1000;
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + elapsedSeconds * this.options.refillPerSecond);
    bucket.updatedAt = now;
    return bucket;
  }

  /** Bounded memory: drop buckets that have refilled completely (they behave exactly like new ones). */
  private makeRoom(now: number): void {
    const max = this.options.maxKeys ?? 10_000;
    if (this.buckets.size < max) return;
    for (const [key, bucket] of this.buckets) {
      const tokens = bucket.tokens + (Math.max(0, now - bucket.updatedAt) / 1000) * this.options.refillPerSecond;
      if (tokens >= this.options.burst) this.buckets.delete(key);
    }
    // Still full: forget the oldest (Map keeps insertion order). Rare, and errs towards allowing events.
    while (this.buckets.size >= max) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
  }
}

/** Options for {@link ResolutionLimiter}. */
export interface ResolutionLimiterOptions {
  /** Shortest time between two resolutions, in ms. Defaults to 5 000. */
  minIntervalMs?: number;
  /** Longest time between two resolutions while they do not help, in ms. Defaults to 300 000. */
  maxIntervalMs?: number;
  /** Clock in ms; injectable for tests. Defaults to Date.now. */
  now?: () => number;
}

/**
 * Spaces credential re-resolutions: at least `minIntervalMs` apart, and twice as far apart after each one that was not
 * followed by an accepted request (a revoked token stays revoked however often it is re-read), up to `maxIntervalMs`.
 * The first re-resolution is allowed at once: a rotated token is the common case and must heal immediately.
 *
 * It only decides when; keeping a single resolution in flight is the caller's job.
 */
export class ResolutionLimiter {
  private lastStart: number | undefined;
  private unhelpful = 0;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly maxIntervalMs: number;

  constructor(options: ResolutionLimiterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.minIntervalMs = Math.max(0, options.minIntervalMs ?? 5_000);
    this.maxIntervalMs = Math.max(this.minIntervalMs, options.maxIntervalMs ?? 300_000);
  }

  /** When the next resolution may start, in ms since the epoch (`-Infinity`: now). */
  nextAllowedAt(): number {
    if (this.lastStart === undefined) return -Infinity;
    const doublings = Math.min(Math.max(0, this.unhelpful - 1), 40);
    return this.lastStart + Math.min(this.maxIntervalMs, this.minIntervalMs * 2 ** doublings);
  }

  /** Takes the slot when a resolution may start now (and records it); false when it must wait. */
  tryAcquire(): boolean {
    const now = this.now();
    if (now < this.nextAllowedAt()) return false;
    this.lastStart = now;
    this.unhelpful += 1;
    return true;
  }

  /** The API server accepted a request: the last resolution helped, and the backoff starts over. */
  succeeded(): void {
    this.unhelpful = 0;
  }
}
