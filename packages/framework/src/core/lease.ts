/**
 * Leader election decisions on a coordination.k8s.io/v1 Lease: pure functions, no I/O (the loop that reads and writes
 * the Lease is `kube/leader-election.ts`).
 *
 * Clocks: a holder's `renewTime` is written with the holder's clock, which may disagree with ours. So, as client-go
 * does, expiry is never computed from the remote timestamp: a candidate remembers when *it observed* the record change
 * ({@link observeLease}) and considers the lease expired once `leaseDurationSeconds` passed on its own clock since
 * then without a change. Only the rates of the clocks must agree, not their readings.
 *
 * Guarantees (with clocks that run at the same rate): a leader that sent its last successful renewal at `t` stops
 * considering itself leader at `t + renewDeadline` ({@link renewalExpired}); a candidate observes that renewal at
 * `t' >= t` and cannot take over before `t' + leaseDuration` ({@link leaseState}). Since `renewDeadline <
 * leaseDuration` ({@link resolveLeaseTiming}), the old leader has `leaseDuration - renewDeadline` to stop its work
 * before anyone else starts.
 */

/** The `spec` of a coordination.k8s.io/v1 Lease, as far as leader election uses it. */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  /** RFC 3339 time with microseconds (`MicroTime`), see {@link microTime}. */
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

/** The timing of leader election, in seconds. */
export interface LeaseTiming {
  /** How long a lease stays valid after a candidate observed its last change. Integer (the Lease field is). */
  leaseDurationSeconds: number;
  /** How long a leader keeps trying to renew before it gives leadership up. Less than the lease duration. */
  renewDeadlineSeconds: number;
  /** Pause between attempts to acquire or renew. */
  retryPeriodSeconds: number;
}

/** client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period. */
export const DEFAULT_LEASE_TIMING: Readonly<LeaseTiming> = Object.freeze({
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
});

/** Candidates wait `retryPeriod * [1, 1 + JITTER_FACTOR)` between attempts to acquire, as client-go does. */
export const ACQUIRE_JITTER_FACTOR = 1.2;

/** A lease record and when this process first saw it (its own clock, ms). */
export interface LeaseObservation {
  readonly record: LeaseSpec;
  readonly observedAtMs: number;
}

/** Where a lease stands for one candidate. */
export type LeaseState =
  /** Nobody holds it (no holder, or released): take it at once. */
  | 'unheld'
  /** This identity holds it: renew it. */
  | 'held-by-us'
  /** Another identity holds it and renewed it within the lease duration, as we observed it: wait. */
  | 'held-by-other'
  /** Another identity held it but did not renew it for the lease duration, as we observed it: take it over. */
  | 'expired';

/** Fills partial timing from the defaults and checks it; throws on an inconsistent combination. */
export function resolveLeaseTiming(partial: Partial<LeaseTiming> = {}): LeaseTiming {
  const timing: LeaseTiming = {
    leaseDurationSeconds: partial.leaseDurationSeconds ?? DEFAULT_LEASE_TIMING.leaseDurationSeconds,
    renewDeadlineSeconds: partial.renewDeadlineSeconds ?? DEFAULT_LEASE_TIMING.renewDeadlineSeconds,
    retryPeriodSeconds: partial.retryPeriodSeconds ?? DEFAULT_LEASE_TIMING.retryPeriodSeconds,
  };
  const { leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds } = timing;
  if (!(Number.isInteger(leaseDurationSeconds) && leaseDurationSeconds >= 1)) {
    throw new Error(`leaseDurationSeconds must be an integer >= 1 (got ${leaseDurationSeconds})`);
  }
  if (!(retryPeriodSeconds > 0)) throw new Error(`retryPeriodSeconds must be > 0 (got ${retryPeriodSeconds})`);
  // The safety margin of the module comment: a leader gives up before anyone may take over.
  if (!(renewDeadlineSeconds < leaseDurationSeconds)) {
    throw new Error(
      `renewDeadlineSeconds (${renewDeadlineSeconds}) must be less than leaseDurationSeconds (${leaseDurationSeconds})`,
    );
  }
  // client-go's rule: a renewal attempt, even a late one, fits within the deadline.
  if (!(renewDeadlineSeconds > ACQUIRE_JITTER_FACTOR * retryPeriodSeconds)) {
    throw new Error(
      `renewDeadlineSeconds (${renewDeadlineSeconds}) must be more than ${ACQUIRE_JITTER_FACTOR} x retryPeriodSeconds (${retryPeriodSeconds})`,
    );
  }
  return timing;
}

/** Whether two records are the same (a renewal changes `renewTime`, so any write by a live holder differs). */
export function sameLeaseRecord(a: LeaseSpec, b: LeaseSpec): boolean {
  return (
    (a.holderIdentity ?? '') === (b.holderIdentity ?? '') &&
    (a.leaseDurationSeconds ?? null) === (b.leaseDurationSeconds ?? null) &&
    (a.acquireTime ?? null) === (b.acquireTime ?? null) &&
    (a.renewTime ?? null) === (b.renewTime ?? null) &&
    (a.leaseTransitions ?? 0) === (b.leaseTransitions ?? 0)
  );
}

/**
 * Folds a freshly read record into what was observed before: the observation time moves only when the record
 * changed, so a holder that stopped renewing ages on our clock.
 */
export function observeLease(
  previous: LeaseObservation | undefined,
  record: LeaseSpec,
  nowMs: number,
): LeaseObservation {
  if (previous && sameLeaseRecord(previous.record, record)) return previous;
  return { record: { ...record }, observedAtMs: nowMs };
}

/**
 * Where the observed lease stands for `identity` at `nowMs` (local clock). A record without a duration counts
 * with `defaultDurationSeconds`.
 */
export function leaseState(
  observation: LeaseObservation,
  identity: string,
  nowMs: number,
  defaultDurationSeconds: number,
): LeaseState {
  const holder = observation.record.holderIdentity ?? '';
  if (holder === '') return 'unheld';
  if (holder === identity) return 'held-by-us';
  const durationSeconds = observation.record.leaseDurationSeconds ?? defaultDurationSeconds;
  return nowMs < observation.observedAtMs + durationSeconds * 1000 ? 'held-by-other' : 'expired';
}

/** Whether a candidate in `state` may write itself into the lease. */
export function mayAcquire(state: LeaseState): boolean {
  return state !== 'held-by-other';
}

/**
 * The record to write to acquire or renew the lease: `acquireTime` and `leaseTransitions` stay while the holder
 * stays; taking over from another holder (or from nobody) starts a new term and counts one more transition.
 */
export function acquiredRecord(
  previous: LeaseSpec | undefined,
  identity: string,
  leaseDurationSeconds: number,
  now: Date,
): LeaseSpec {
  const time = microTime(now);
  const transitions = previous?.leaseTransitions ?? 0;
  if (previous && (previous.holderIdentity ?? '') === identity) {
    return {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: previous.acquireTime ?? time,
      renewTime: time,
      leaseTransitions: transitions,
    };
  }
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: time,
    renewTime: time,
    // A brand-new Lease starts at 0 transitions, as client-go's does.
    leaseTransitions: previous ? transitions + 1 : 0,
  };
}

/**
 * The record a leader writes when it steps down gracefully: no holder, so candidates take over at their next attempt
 * instead of waiting for the lease to expire; a 1 s duration for candidates that read only the duration.
 */
export function releasedRecord(previous: LeaseSpec, now: Date): LeaseSpec {
  const time = microTime(now);
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: previous.leaseTransitions ?? 0,
  };
}

/**
 * Whether a leader whose last successful renewal was sent at `lastRenewalSentAtMs` must give leadership up: the
 * renew deadline passed on its own clock. The send time, not the answer's, is the safe reference (see the module
 * comment).
 */
export function renewalExpired(lastRenewalSentAtMs: number, renewDeadlineSeconds: number, nowMs: number): boolean {
  return nowMs >= lastRenewalSentAtMs + renewDeadlineSeconds * 1000;
}

/** Time left before {@link renewalExpired} turns true, in ms (0 when it has). */
export function renewalTimeLeftMs(lastRenewalSentAtMs: number, renewDeadlineSeconds: number, nowMs: number): number {
  return Math.max(0, lastRenewalSentAtMs + renewDeadlineSeconds * 1000 - nowMs);
}

/** The pause before the next attempt to acquire: the retry period stretched by up to {@link ACQUIRE_JITTER_FACTOR}. */
export function acquireRetryDelayMs(retryPeriodSeconds: number, random: number): number {
  return retryPeriodSeconds * 1000 * (1 + ACQUIRE_JITTER_FACTOR * Math.min(Math.max(random, 0), 1));
}

/**
 * A `MicroTime` as the API server parses it: RFC 3339 in UTC with exactly six fractional digits
 * (`2006-01-02T15:04:05.000000Z`).
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
