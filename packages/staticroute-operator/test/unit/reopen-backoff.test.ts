import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_REOPEN, Reopener, reopenDelay, resolveReopenPolicy } from '../../src/adapters/backoff.js';

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

describe('Reopener', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('retries with growing delays, one attempt at a time, and starts over after a success', () => {
    vi.useFakeTimers();
    const log: string[] = [];
    let failuresLeft = 2;
    const reopener = new Reopener(resolveReopenPolicy({ jitter: 0 }), {
      stopped: () => false,
      open: () => {
        log.push(`open@${Date.now()}`);
        if (failuresLeft-- > 0) throw new Error('ENOBUFS');
      },
      failed: () => log.push('failed'),
      opened: () => log.push('opened'),
    });
    const start = Date.now();
    reopener.schedule();
    reopener.schedule(); // already pending: no second timer
    vi.advanceTimersByTime(100 + 200 + 400);
    expect(log).toEqual([
      `open@${start + 100}`,
      'failed',
      `open@${start + 300}`,
      'failed',
      `open@${start + 700}`,
      'opened',
    ]);
    log.length = 0;
    reopener.schedule();
    vi.advanceTimersByTime(100);
    expect(log).toEqual([`open@${start + 800}`, 'opened']);
  });

  it('makes no attempt once its owner stopped, nor after cancel', () => {
    vi.useFakeTimers();
    let stopped = false;
    const open = vi.fn();
    const reopener = new Reopener(resolveReopenPolicy({ jitter: 0 }), {
      stopped: () => stopped,
      open,
      failed: () => undefined,
      opened: () => undefined,
    });
    reopener.schedule();
    reopener.cancel();
    vi.advanceTimersByTime(1_000);
    reopener.schedule();
    stopped = true;
    vi.advanceTimersByTime(1_000);
    reopener.schedule();
    vi.advanceTimersByTime(1_000);
    expect(open).not.toHaveBeenCalled();
  });
});
