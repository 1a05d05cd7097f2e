import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { HandlerSpec } from '../../src/core/handlers.js';
import {
  deferredUntil,
  firstTickDelay,
  nextTickAt,
  tickAfterChange,
  validateTiming,
} from '../../src/core/timer-schedule.js';
import { TimerScheduler } from '../../src/engine/timers.js';

describe('timer schedule (pure)', () => {
  test('first tick: the initial delay, else the interval; idle timers wait for idle after first sight', () => {
    expect(firstTickDelay({ intervalMs: 100 })).toBe(100);
    expect(firstTickDelay({ intervalMs: 100, initialDelayMs: 5 })).toBe(5);
    expect(firstTickDelay({ intervalMs: 100, idleMs: 30 })).toBe(30);
    expect(firstTickDelay({ intervalMs: 100, idleMs: 30, initialDelayMs: 50 })).toBe(50);
  });

  test('plain timers: interval after the end of the run', () => {
    expect(nextTickAt({ intervalMs: 100 }, { startedAt: 1000, endedAt: 1030 }, undefined)).toBe(1130);
  });

  test('sharp timers: interval after the start; at once when the run took longer than the interval', () => {
    expect(nextTickAt({ intervalMs: 100, sharp: true }, { startedAt: 1000, endedAt: 1030 }, undefined)).toBe(1100);
    expect(nextTickAt({ intervalMs: 100, sharp: true }, { startedAt: 1000, endedAt: 1250 }, undefined)).toBe(1250);
  });

  test('idle timers: not before idle after the last change', () => {
    const timing = { intervalMs: 100, idleMs: 500 };
    expect(nextTickAt(timing, { startedAt: 1000, endedAt: 1010 }, 900)).toBe(1400);
    expect(nextTickAt(timing, { startedAt: 1000, endedAt: 1010 }, 100)).toBe(1110);
    expect(deferredUntil(timing, 900, 1000)).toBe(1400);
    expect(deferredUntil(timing, 400, 1000)).toBeUndefined();
    expect(deferredUntil({ intervalMs: 100 }, 990, 1000)).toBeUndefined();
    expect(tickAfterChange(timing, 2000)).toBe(2500);
    expect(tickAfterChange({ intervalMs: 100 }, 2000)).toBeUndefined();
  });

  test('bad schedules are refused', () => {
    expect(() => validateTiming('t', { intervalMs: 0 })).toThrow(/interval/);
    expect(() => validateTiming('t', { intervalMs: 1, idleMs: 0 })).toThrow(/idle/);
    expect(() => validateTiming('t', { intervalMs: 1, initialDelayMs: -1 })).toThrow(/initialDelayMs/);
  });
});

describe('TimerScheduler (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const timer = (extra: Record<string, unknown>): HandlerSpec =>
    ({ kind: 'timer', id: 't', method: 't', order: 0, intervalMs: 100, ...extra }) as HandlerSpec;

  /** Runs due timers the way the processor does: take, "run" for `runMs`, re-arm with the start time. */
  function harness(spec: HandlerSpec, runMs: number) {
    const runs: number[] = [];
    const scheduler: TimerScheduler = new TimerScheduler([spec], () => {
      for (const due of scheduler.takeDue('k')) {
        const startedAt = Date.now();
        runs.push(startedAt);
        vi.setSystemTime(startedAt + runMs);
        scheduler.rearm('k', due, startedAt);
      }
    });
    return { scheduler, runs };
  }

  test('sharp keeps a start-to-start schedule; plain measures from the end', () => {
    const sharp = harness(timer({ sharp: true }), 30);
    sharp.scheduler.ensure('k');
    vi.advanceTimersByTime(1000);
    const sharpGaps = sharp.runs.slice(1).map((at, i) => at - (sharp.runs[i] as number));
    expect(new Set(sharpGaps)).toEqual(new Set([100]));
    sharp.scheduler.stopAll();

    const plain = harness(timer({}), 30);
    plain.scheduler.ensure('k');
    vi.advanceTimersByTime(1000);
    const plainGaps = plain.runs.slice(1).map((at, i) => at - (plain.runs[i] as number));
    expect(new Set(plainGaps)).toEqual(new Set([130]));
    plain.scheduler.stopAll();
  });

  test('idle: changes keep postponing the tick; quiet, it ticks every interval', () => {
    const idle = harness(timer({ idleMs: 500 }), 0);
    const started = Date.now();
    idle.scheduler.observe('k', 'v0');
    idle.scheduler.ensure('k');
    for (let i = 1; i <= 5; i++) {
      vi.advanceTimersByTime(200);
      idle.scheduler.observe('k', `v${i}`);
    }
    // 1000 ms of changes every 200 ms: no run yet.
    expect(idle.runs).toEqual([]);
    vi.advanceTimersByTime(500);
    expect(idle.runs).toEqual([started + 1500]);
    vi.advanceTimersByTime(200);
    expect(idle.runs).toEqual([started + 1500, started + 1600, started + 1700]);
    // The same essence again is not a change.
    idle.scheduler.observe('k', 'v5');
    vi.advanceTimersByTime(100);
    expect(idle.runs).toHaveLength(4);
    idle.scheduler.stopAll();
  });
});
