import { describe, expect, test } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, resolveBackoff } from '../../src/core/backoff.js';

describe('backoffDelay', () => {
  const policy = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.2 };

  test('grows exponentially without jitter at random = 0', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(policy, n, () => 0))).toEqual([1000, 2000, 4000, 8000]);
  });

  test('stays within [base * (1 - jitter), base] for any random', () => {
    for (let failures = 1; failures <= 12; failures++) {
      const base = Math.min(60_000, 1000 * 2 ** (failures - 1));
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const delay = backoffDelay(policy, failures, () => r);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delay).toBeLessThanOrEqual(base);
      }
    }
  });

  test('never exceeds maxMs, even for huge failure counts', () => {
    expect(backoffDelay(policy, 10_000, () => 0)).toBe(60_000);
    expect(backoffDelay({ ...policy, factor: 10 }, 5_000, () => 0)).toBe(60_000);
  });

  test('jitter spreads values', () => {
    const values = new Set([0.1, 0.5, 0.9].map((r) => backoffDelay(policy, 3, () => r)));
    expect(values.size).toBe(3);
  });
});

describe('resolveBackoff', () => {
  test('layers handler over global over defaults', () => {
    const global = resolveBackoff({ maxMs: 10_000 });
    expect(global).toEqual({ ...DEFAULT_BACKOFF, maxMs: 10_000 });
    expect(resolveBackoff({ initialMs: 5, maxMs: undefined }, global)).toEqual({ ...global, initialMs: 5 });
  });

  test('rejects nonsense', () => {
    expect(() => resolveBackoff({ factor: 0.5 })).toThrow(/factor/);
    expect(() => resolveBackoff({ jitter: 2 })).toThrow(/jitter/);
    expect(() => resolveBackoff({ initialMs: -1 })).toThrow();
  });
});
