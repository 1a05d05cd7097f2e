/**
 * Timer retries, pure: what follows a timer's attempt (the change handlers' rule) and when the timer is due again
 * (a retry after its delay within the series; the regular schedule once the series ends, counted from the series).
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { DEFAULT_BACKOFF } from '../../src/core/backoff.js';
import { TemporaryError } from '../../src/core/errors.js';
import type { HandlerSpec } from '../../src/core/handlers.js';
import type { AttemptResult, RetryLimits } from '../../src/core/progress.js';
import { afterTimerRun, decideTimerAttempt, type TimerTiming } from '../../src/core/timer-schedule.js';
import { TimerScheduler } from '../../src/engine/timers.js';

const limits = (maxAttempts: number): RetryLimits => ({
  maxAttempts,
  backoff: { ...DEFAULT_BACKOFF, initialMs: 100, jitter: 0 },
});
const temporary = (requestedDelayMs?: number): AttemptResult => ({
  kind: 'failure',
  failure: 'temporary',
  message: 'not yet',
  ...(requestedDelayMs === undefined ? {} : { requestedDelayMs }),
});
const permanent: AttemptResult = { kind: 'failure', failure: 'permanent', message: 'never' };
const timeout: AttemptResult = { kind: 'failure', failure: 'timeout', message: 'too slow' };

describe('decideTimerAttempt', () => {
  test("a TemporaryError's delay is the retry delay; the count grows with each failure", () => {
    expect(decideTimerAttempt(0, temporary(50), limits(Infinity), 0)).toEqual({
      kind: 'retry',
      delayMs: 50,
      retries: 1,
      message: 'not yet',
    });
    expect(decideTimerAttempt(1, temporary(50), limits(Infinity), 0)).toMatchObject({ kind: 'retry', retries: 2 });
  });

  test('other failures and timeouts back off as handlers do (100, 200, 400 ms here)', () => {
    expect([0, 1, 2].map((retries) => decideTimerAttempt(retries, temporary(), limits(Infinity), 0))).toEqual([
      { kind: 'retry', delayMs: 100, retries: 1, message: 'not yet' },
      { kind: 'retry', delayMs: 200, retries: 2, message: 'not yet' },
      { kind: 'retry', delayMs: 400, retries: 3, message: 'not yet' },
    ]);
    expect(decideTimerAttempt(0, timeout, limits(Infinity), 0)).toMatchObject({ kind: 'retry', delayMs: 100 });
  });

  test('a PermanentError is final at once; `retries` attempts end the series', () => {
    expect(decideTimerAttempt(0, permanent, limits(Infinity), 0)).toEqual({
      kind: 'failed',
      retries: 1,
      message: 'never',
    });
    expect(decideTimerAttempt(1, temporary(50), limits(2), 0)).toEqual({
      kind: 'failed',
      retries: 2,
      message: 'not yet',
    });
    expect(decideTimerAttempt(0, temporary(50), limits(1), 0)).toMatchObject({ kind: 'failed', retries: 1 });
  });

  test('success ends the series', () => {
    expect(decideTimerAttempt(3, { kind: 'success' }, limits(Infinity), 0)).toEqual({ kind: 'success' });
  });
});

describe('afterTimerRun', () => {
  const plain: TimerTiming = { intervalMs: 1_000 };
  const sharp: TimerTiming = { intervalMs: 1_000, sharp: true };
  const retry = (retries: number, delayMs: number) => ({ kind: 'retry', retries, delayMs, message: 'x' }) as const;

  test('a retry is due its delay after the attempt ended, and starts or continues the series', () => {
    expect(afterTimerRun(plain, undefined, { startedAt: 0, endedAt: 10 }, retry(1, 50), undefined)).toEqual({
      dueAt: 60,
      series: { retries: 1, startedAt: 0 },
    });
    expect(
      afterTimerRun(plain, { retries: 1, startedAt: 0 }, { startedAt: 60, endedAt: 70 }, retry(2, 50), undefined),
    ).toEqual({ dueAt: 120, series: { retries: 2, startedAt: 0 } });
  });

  test('plain timers: the regular tick comes the interval after the end of the last attempt', () => {
    const series = { retries: 2, startedAt: 0 };
    expect(afterTimerRun(plain, series, { startedAt: 120, endedAt: 130 }, { kind: 'success' }, undefined)).toEqual({
      dueAt: 1_130,
    });
    const failed = { kind: 'failed', retries: 3, message: 'x' } as const;
    expect(afterTimerRun(plain, series, { startedAt: 120, endedAt: 130 }, failed, undefined)).toEqual({
      dueAt: 1_130,
    });
  });

  test('sharp timers: retries do not shift the schedule (it counts from the first attempt of the series)', () => {
    const series = { retries: 2, startedAt: 0 };
    expect(afterTimerRun(sharp, series, { startedAt: 120, endedAt: 130 }, { kind: 'success' }, undefined)).toEqual({
      dueAt: 1_000,
    });
    // A series longer than the interval: the next tick at once, not a burst of missed ones.
    expect(afterTimerRun(sharp, series, { startedAt: 1_500, endedAt: 1_600 }, { kind: 'success' }, undefined)).toEqual({
      dueAt: 1_600,
    });
  });

  test('a skipped run (filters not matching) ends a retrying series', () => {
    expect(
      afterTimerRun(plain, { retries: 1, startedAt: 0 }, { startedAt: 60, endedAt: 60 }, undefined, undefined),
    ).toEqual({ dueAt: 1_060 });
  });

  test('idle timers: after the series, not before idle after the last change', () => {
    const idle: TimerTiming = { intervalMs: 100, idleMs: 5_000 };
    expect(
      afterTimerRun(idle, { retries: 1, startedAt: 0 }, { startedAt: 60, endedAt: 70 }, { kind: 'success' }, 0),
    ).toEqual({ dueAt: 5_000 });
  });
});

describe('TimerScheduler retries (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const defaults = { retries: Infinity, backoff: DEFAULT_BACKOFF };
  const fail = { ok: false, error: new TemporaryError('not yet', { delayMs: 50 }), durationMs: 0 } as const;
  const succeed = { ok: true, value: undefined, durationMs: 0 } as const;

  /** Runs due timers as the processor does; the first `failures` runs fail. Records (time, ctx.retry) per run. */
  function harness(spec: Partial<HandlerSpec>, failures: number) {
    const timer = { kind: 'timer', id: 't', method: 't', order: 0, intervalMs: 1_000, ...spec } as HandlerSpec;
    const runs: Array<[number, number]> = [];
    const scheduler: TimerScheduler = new TimerScheduler([timer], () => {
      for (const due of scheduler.takeDue('k')) {
        const startedAt = Date.now();
        runs.push([startedAt, scheduler.retryOf('k', due)]);
        vi.setSystemTime(startedAt + 10);
        scheduler.finish('k', due, startedAt, { attempt: runs.length <= failures ? fail : succeed, defaults });
      }
    });
    scheduler.ensure('k');
    return { scheduler, runs };
  }

  test('a failed tick is retried after its delay, no tick in between; the interval counts from the last attempt', () => {
    const { scheduler, runs } = harness({}, 2);
    vi.advanceTimersByTime(3_000);
    expect(runs.slice(0, 4)).toEqual([
      [1_000, 0],
      [1_060, 1],
      [1_120, 2],
      [2_130, 0],
    ]);
    scheduler.stopAll();
  });

  test('sharp: the retries do not move the schedule', () => {
    const { scheduler, runs } = harness({ sharp: true } as Partial<HandlerSpec>, 2);
    vi.advanceTimersByTime(2_500);
    expect(runs.slice(0, 4)).toEqual([
      [1_000, 0],
      [1_060, 1],
      [1_120, 2],
      [2_000, 0],
    ]);
    scheduler.stopAll();
  });

  test('`retries` used up: the next regular tick still comes, as a new series', () => {
    const { scheduler, runs } = harness({ retries: 2 }, 10);
    vi.advanceTimersByTime(2_500);
    expect(runs).toEqual([
      [1_000, 0],
      [1_060, 1],
      [2_070, 0],
      [2_130, 1],
    ]);
    scheduler.stopAll();
  });
});
