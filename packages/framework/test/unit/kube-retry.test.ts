import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF_INITIAL_MS,
  DEFAULT_BACKOFF_MAX_MS,
  MAX_RETRY_AFTER_MS,
  backoffCap,
  fullJitterDelay,
  nextRetryDelay,
  parseRetryAfter,
} from '../../src/kube/retry.js';

/** A deterministic uniform sequence (LCG), so the sample test never depends on luck. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('backoffCap', () => {
  it('doubles from initialMs per attempt up to maxMs', () => {
    const settings = { initialMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffCap(a, settings))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('uses the documented defaults', () => {
    expect(backoffCap(0)).toBe(DEFAULT_BACKOFF_INITIAL_MS);
    expect(backoffCap(1000)).toBe(DEFAULT_BACKOFF_MAX_MS);
  });

  it('never overflows on huge attempt numbers and treats negatives as 0', () => {
    expect(backoffCap(1e9, { initialMs: 1, maxMs: 5000 })).toBe(5000);
    expect(backoffCap(-3, { initialMs: 7, maxMs: 100 })).toBe(7);
  });

  it('lifts maxMs to initialMs when configured below it', () => {
    expect(backoffCap(0, { initialMs: 500, maxMs: 10 })).toBe(500);
  });
});

describe('fullJitterDelay', () => {
  it('spans the whole range [0, cap]', () => {
    const settings = { initialMs: 100, maxMs: 10_000 };
    expect(fullJitterDelay(3, settings, () => 0)).toBe(0);
    expect(fullJitterDelay(3, settings, () => 0.999_999_9)).toBe(800);
  });

  it('stays within [0, cap] for every attempt and sample, and is not constant', () => {
    const random = seeded(42);
    const settings = { initialMs: 50, maxMs: 3000 };
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const cap = backoffCap(attempt, settings);
      const samples = Array.from({ length: 200 }, () => fullJitterDelay(attempt, settings, random));
      for (const delay of samples) {
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(cap);
        expect(Number.isInteger(delay)).toBe(true);
      }
      expect(new Set(samples).size).toBeGreaterThan(10);
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-27T10:00:00Z');

  it('parses delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7);
  });

  it('parses an HTTP date relative to now, rounding up, never negative', () => {
    expect(parseRetryAfter('Fri, 27 Nov 2026 10:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Fri, 27 Nov 2026 09:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(new Date(now + 1500).toUTCString(), now)).toBe(1);
  });

  it('returns undefined when absent or malformed', () => {
    for (const value of [undefined, '', '   ', '-5', '1.5', 'soon', []]) {
      expect(parseRetryAfter(value as string | string[] | undefined, now)).toBeUndefined();
    }
  });
});

describe('nextRetryDelay', () => {
  it('honours Retry-After over backoff', () => {
    expect(nextRetryDelay(0, 3, { initialMs: 100 }, () => 0.5)).toBe(3000);
    expect(nextRetryDelay(10, 0, {}, () => 0.5)).toBe(0);
  });

  it('caps an absurd Retry-After', () => {
    expect(nextRetryDelay(0, 86_400)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('falls back to full jitter without Retry-After', () => {
    expect(nextRetryDelay(2, undefined, { initialMs: 100, maxMs: 1000 }, () => 0.5)).toBe(200);
  });
});
