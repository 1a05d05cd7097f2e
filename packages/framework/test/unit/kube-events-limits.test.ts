import { describe, expect, it } from 'vitest';
import { eventDedupeKey } from '../../src/kube/events.js';
import { KeyedTokenBucket } from '../../src/kube/rate-limit.js';

describe('eventDedupeKey', () => {
  it('is equal exactly when uid, type, reason and message are equal', () => {
    const base = eventDedupeKey('uid-1', 'Warning', 'Failed', 'route add failed');
    expect(eventDedupeKey('uid-1', 'Warning', 'Failed', 'route add failed')).toBe(base);
    expect(eventDedupeKey('uid-2', 'Warning', 'Failed', 'route add failed')).not.toBe(base);
    expect(eventDedupeKey('uid-1', 'Normal', 'Failed', 'route add failed')).not.toBe(base);
    expect(eventDedupeKey('uid-1', 'Warning', 'Retrying', 'route add failed')).not.toBe(base);
    expect(eventDedupeKey('uid-1', 'Warning', 'Failed', 'route add failed!')).not.toBe(base);
  });

  it('cannot be confused by separators inside the fields', () => {
    expect(eventDedupeKey('u', 'Normal', 'a|b', 'c')).not.toBe(eventDedupeKey('u', 'Normal', 'a', 'b|c'));
    expect(eventDedupeKey('u', 'Normal', 'a","b', 'c')).not.toBe(eventDedupeKey('u', 'Normal', 'a', 'b","c'));
  });
});

describe('KeyedTokenBucket', () => {
  function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
    let t = start;
    return { now: () => t, advance: (ms) => (t += ms) };
  }

  it('allows a burst, then refuses until tokens refill', () => {
    const c = clock();
    const bucket = new KeyedTokenBucket({ burst: 3, refillPerSecond: 0.5, now: c.now });
    expect([1, 2, 3, 4].map(() => bucket.take('obj'))).toEqual([true, true, true, false]);
    c.advance(1999); // 0.9995 tokens
    expect(bucket.take('obj')).toBe(false);
    c.advance(1); // now >= 1 token (the failed take spent nothing)
    expect(bucket.take('obj')).toBe(true);
    expect(bucket.take('obj')).toBe(false);
  });

  it('never refills beyond the burst', () => {
    const c = clock();
    const bucket = new KeyedTokenBucket({ burst: 2, refillPerSecond: 10, now: c.now });
    c.advance(3_600_000);
    expect([1, 2, 3].map(() => bucket.take('obj'))).toEqual([true, true, false]);
  });

  it('keeps keys independent', () => {
    const c = clock();
    const bucket = new KeyedTokenBucket({ burst: 1, refillPerSecond: 0, now: c.now });
    expect(bucket.take('a')).toBe(true);
    expect(bucket.take('a')).toBe(false);
    expect(bucket.take('b')).toBe(true);
  });

  it('ignores a clock that goes backwards', () => {
    const c = clock();
    const bucket = new KeyedTokenBucket({ burst: 1, refillPerSecond: 1, now: c.now });
    expect(bucket.take('a')).toBe(true);
    c.advance(-10_000);
    expect(bucket.take('a')).toBe(false);
    c.advance(1000);
    expect(bucket.take('a')).toBe(true);
  });

  it('bounds memory by forgetting full buckets first', () => {
    const c = clock();
    const bucket = new KeyedTokenBucket({ burst: 2, refillPerSecond: 1, now: c.now, maxKeys: 3 });
    bucket.take('a');
    bucket.take('b');
    bucket.take('b');
    bucket.take('b'); // refused: b is empty
    c.advance(1000); // a full again, b has 1 token
    bucket.take('c');
    bucket.take('d'); // at the limit: a (full) is forgotten, b (still limited) is kept
    expect(bucket.size).toBeLessThanOrEqual(3);
    expect(bucket.available('b')).toBeCloseTo(1, 5);
    expect(bucket.take('b')).toBe(true);
    expect(bucket.take('b')).toBe(false);
  });
});
