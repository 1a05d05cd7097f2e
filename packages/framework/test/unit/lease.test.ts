import { describe, expect, test } from 'vitest';
import {
  ACQUIRE_JITTER_FACTOR,
  acquiredRecord,
  acquireRetryDelayMs,
  DEFAULT_LEASE_TIMING,
  leaseState,
  mayAcquire,
  microTime,
  observeLease,
  releasedRecord,
  renewalExpired,
  renewalTimeLeftMs,
  resolveLeaseTiming,
  sameLeaseRecord,
  type LeaseSpec,
} from '../../src/core/lease.js';

const held = (holder: string, renewTime = '2024-05-01T10:00:00.000000Z'): LeaseSpec => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: '2024-05-01T09:00:00.000000Z',
  renewTime,
  leaseTransitions: 3,
});

describe('resolveLeaseTiming', () => {
  test("defaults to client-go's 15 s / 10 s / 2 s", () => {
    expect(resolveLeaseTiming()).toEqual({ leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 });
    expect(DEFAULT_LEASE_TIMING).toEqual(resolveLeaseTiming({}));
  });

  test('fills what is missing from the defaults', () => {
    expect(resolveLeaseTiming({ leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 0.5 })).toEqual({
      leaseDurationSeconds: 4,
      renewDeadlineSeconds: 3,
      retryPeriodSeconds: 0.5,
    });
    expect(resolveLeaseTiming({ leaseDurationSeconds: 60 }).renewDeadlineSeconds).toBe(10);
  });

  test('rejects a lease duration that is no positive integer (the Lease field is an int32)', () => {
    expect(() => resolveLeaseTiming({ leaseDurationSeconds: 0 })).toThrow(/integer >= 1/);
    expect(() => resolveLeaseTiming({ leaseDurationSeconds: 15.5 })).toThrow(/integer >= 1/);
  });

  test('rejects a renew deadline that is not shorter than the lease duration (no safety margin)', () => {
    expect(() => resolveLeaseTiming({ leaseDurationSeconds: 10, renewDeadlineSeconds: 10 })).toThrow(/less than/);
    expect(() => resolveLeaseTiming({ leaseDurationSeconds: 5 })).toThrow(/less than/);
  });

  test('rejects a retry period that leaves no renewal attempt within the deadline', () => {
    expect(() => resolveLeaseTiming({ renewDeadlineSeconds: 2.4, retryPeriodSeconds: 2 })).toThrow(/1.2 x/);
    expect(() => resolveLeaseTiming({ retryPeriodSeconds: 0 })).toThrow(/> 0/);
    expect(resolveLeaseTiming({ renewDeadlineSeconds: 2.5, retryPeriodSeconds: 2 }).renewDeadlineSeconds).toBe(2.5);
  });
});

describe('observeLease', () => {
  test('a first observation is stamped with the local time', () => {
    expect(observeLease(undefined, held('a'), 1_000)).toEqual({ record: held('a'), observedAtMs: 1_000 });
  });

  test('an unchanged record keeps its first observation time, so a silent holder ages', () => {
    const first = observeLease(undefined, held('a'), 1_000);
    expect(observeLease(first, held('a'), 9_000)).toBe(first);
  });

  test('a renewal (new renewTime) or a new holder restarts the clock', () => {
    const first = observeLease(undefined, held('a'), 1_000);
    expect(observeLease(first, held('a', '2024-05-01T10:00:02.000000Z'), 3_000).observedAtMs).toBe(3_000);
    expect(observeLease(first, held('b'), 4_000).observedAtMs).toBe(4_000);
  });

  test("the remote timestamps never count: a renewTime from a holder's clock far ahead changes nothing", () => {
    const observation = observeLease(undefined, held('a', '2999-01-01T00:00:00.000000Z'), 1_000);
    expect(leaseState(observation, 'b', 1_000 + 15_000, 15)).toBe('expired');
  });

  test('sameLeaseRecord treats absent and empty values alike', () => {
    expect(sameLeaseRecord({}, { holderIdentity: '', leaseTransitions: 0, renewTime: null })).toBe(true);
    expect(sameLeaseRecord(held('a'), { ...held('a'), leaseTransitions: 4 })).toBe(false);
    expect(sameLeaseRecord(held('a'), { ...held('a'), leaseDurationSeconds: 1 })).toBe(false);
    expect(sameLeaseRecord(held('a'), { ...held('a'), acquireTime: null })).toBe(false);
  });
});

describe('leaseState', () => {
  const at = (record: LeaseSpec, observedAtMs = 10_000) => ({ record, observedAtMs });

  test('no holder, or a released lease, is free at once', () => {
    expect(leaseState(at({}), 'me', 10_000, 15)).toBe('unheld');
    expect(leaseState(at({ ...held('x'), holderIdentity: '' }), 'me', 10_000, 15)).toBe('unheld');
    expect(leaseState(at({ ...held('x'), holderIdentity: null }), 'me', 10_000, 15)).toBe('unheld');
  });

  test('our own identity holds it', () => {
    expect(leaseState(at(held('me')), 'me', 999_999, 15)).toBe('held-by-us');
  });

  test("another holder's lease is valid for its duration after we observed it, then expired", () => {
    expect(leaseState(at(held('x')), 'me', 10_000, 15)).toBe('held-by-other');
    expect(leaseState(at(held('x')), 'me', 24_999, 15)).toBe('held-by-other');
    expect(leaseState(at(held('x')), 'me', 25_000, 15)).toBe('expired');
  });

  test("the record's own duration counts; the default only when it has none", () => {
    expect(leaseState(at({ ...held('x'), leaseDurationSeconds: 1 }), 'me', 11_000, 15)).toBe('expired');
    expect(leaseState(at({ ...held('x'), leaseDurationSeconds: null }), 'me', 20_000, 5)).toBe('expired');
    expect(leaseState(at({ ...held('x'), leaseDurationSeconds: null }), 'me', 20_000, 15)).toBe('held-by-other');
  });

  test('only a lease validly held by another may not be acquired', () => {
    expect(mayAcquire('held-by-other')).toBe(false);
    expect(mayAcquire('unheld')).toBe(true);
    expect(mayAcquire('expired')).toBe(true);
    expect(mayAcquire('held-by-us')).toBe(true);
  });
});

describe('records written', () => {
  const now = new Date('2024-05-01T10:00:05.123Z');

  test('a new Lease starts our term at 0 transitions', () => {
    expect(acquiredRecord(undefined, 'me', 15, now)).toEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: '2024-05-01T10:00:05.123000Z',
      renewTime: '2024-05-01T10:00:05.123000Z',
      leaseTransitions: 0,
    });
  });

  test('a renewal keeps acquireTime and the transitions, and moves renewTime', () => {
    expect(acquiredRecord(held('me'), 'me', 15, now)).toEqual({
      ...held('me'),
      renewTime: '2024-05-01T10:00:05.123000Z',
    });
  });

  test('taking over from another holder or from nobody starts a new term and counts a transition', () => {
    for (const previous of [held('x'), { ...held('x'), holderIdentity: '' }]) {
      expect(acquiredRecord(previous, 'me', 20, now)).toEqual({
        holderIdentity: 'me',
        leaseDurationSeconds: 20,
        acquireTime: '2024-05-01T10:00:05.123000Z',
        renewTime: '2024-05-01T10:00:05.123000Z',
        leaseTransitions: 4,
      });
    }
  });

  test('a release names nobody, lasts 1 s, and keeps the transitions', () => {
    expect(releasedRecord(held('me'), now)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2024-05-01T10:00:05.123000Z',
      renewTime: '2024-05-01T10:00:05.123000Z',
      leaseTransitions: 3,
    });
  });

  test('MicroTime has exactly six fractional digits', () => {
    expect(microTime(new Date('2024-01-02T03:04:05.000Z'))).toBe('2024-01-02T03:04:05.000000Z');
    expect(microTime(new Date('2024-01-02T03:04:05.9Z'))).toBe('2024-01-02T03:04:05.900000Z');
  });
});

describe('renewal deadline', () => {
  test('passes renewDeadline after the last successful renewal was sent', () => {
    expect(renewalExpired(1_000, 10, 10_999)).toBe(false);
    expect(renewalExpired(1_000, 10, 11_000)).toBe(true);
    expect(renewalTimeLeftMs(1_000, 10, 4_000)).toBe(7_000);
    expect(renewalTimeLeftMs(1_000, 10, 50_000)).toBe(0);
  });

  test('a leader gives up before any candidate that observed its last renewal may take over', () => {
    const timing = resolveLeaseTiming();
    const sentAt = 5_000;
    // The candidate cannot have observed the renewal before it was sent.
    const observation = observeLease(undefined, held('leader'), sentAt);
    for (let now = sentAt; now < sentAt + 20_000; now += 250) {
      const candidateMay = mayAcquire(leaseState(observation, 'candidate', now, timing.leaseDurationSeconds));
      if (candidateMay) expect(renewalExpired(sentAt, timing.renewDeadlineSeconds, now)).toBe(true);
    }
  });
});

describe('acquireRetryDelayMs', () => {
  test('stretches the retry period by up to the jitter factor', () => {
    expect(acquireRetryDelayMs(2, 0)).toBe(2_000);
    expect(acquireRetryDelayMs(2, 0.5)).toBe(2_000 * (1 + ACQUIRE_JITTER_FACTOR / 2));
    expect(acquireRetryDelayMs(2, 1)).toBe(2_000 * (1 + ACQUIRE_JITTER_FACTOR));
    expect(acquireRetryDelayMs(2, 7)).toBe(acquireRetryDelayMs(2, 1));
  });
});
