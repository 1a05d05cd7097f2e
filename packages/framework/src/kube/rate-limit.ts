/**
 * Per-key token buckets, for rate-limiting Kubernetes Events per target object.
 *
 * A handler failing in a tight retry loop must not flood the API server (and `kubectl describe`) with Events:
 * each target object gets `burst` tokens, refilled at `refillPerSecond`; a record without a token is dropped.
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
