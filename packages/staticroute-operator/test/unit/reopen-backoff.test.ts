import { describe, expect, it } from 'vitest';
import { DEFAULT_REOPEN, reopenDelay, resolveReopenPolicy } from '../../src/adapters/backoff.js';

describe('reopen backoff', () => {
  const policy = resolveReopenPolicy({ jitter: 0 });

  it('starts quickly and doubles', () => {
    expect([1, 2, 3, 4].map((attempt) => reopenDelay(policy, attempt))).toEqual([100, 200, 400, 800]);
  });

  it('is capped, also after days of attempts', () => {
    expect(reopenDelay(policy, 20)).toBe(30_000);
    expect(reopenDelay(policy, 1_000_000)).toBe(30_000);
  });

  it('jitters downwards only, so the cap stays a ceiling', () => {
    const jittered = resolveReopenPolicy({});
    expect(reopenDelay(jittered, 30, () => 0)).toBe(30_000);
    expect(reopenDelay(jittered, 30, () => 0.999)).toBe(15_015);
    expect(reopenDelay(jittered, 1, () => 0.5)).toBe(75);
  });

  it('fills a partial policy from the defaults and refuses a busy loop or an invalid one', () => {
    expect(resolveReopenPolicy({ initialMs: 20, maxMs: undefined })).toEqual({ ...DEFAULT_REOPEN, initialMs: 20 });
    expect(() => resolveReopenPolicy({ initialMs: 0 })).toThrow(/invalid reopen policy/);
    expect(() => resolveReopenPolicy({ initialMs: 500, maxMs: 100 })).toThrow(/invalid reopen policy/);
    expect(() => resolveReopenPolicy({ factor: 0.5 })).toThrow(/invalid reopen policy/);
    expect(() => resolveReopenPolicy({ jitter: 2 })).toThrow(/invalid reopen policy/);
  });
});
