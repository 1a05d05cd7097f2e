/**
 * When a timer's next tick is due (pure; times are milliseconds on one clock, passed in).
 *
 * - Plain timers tick `interval` after the end of their previous run (a slow run never piles up ticks).
 * - `sharp` timers keep a fixed schedule: `interval` after the *start* of their previous run, so a run that takes
 *   0.3 s of a 1 s interval is followed by the next one 0.7 s after it ended (Kopf's `sharp=True`). A run longer
 *   than the interval is followed by the next at once, never by a burst of missed ticks.
 * - `idle` timers run only once the object has not changed for `idle` (Kopf's `idle=`): the first sight of an object
 *   counts as a change, a later change makes the timer wait `idle` again from that change, and ticks continue every
 *   `interval` after that as long as the object does not change. A "change" is a new essence (spec, labels,
 *   annotations), as for update handlers; status changes do not count.
 *
 * Retries (Kopf's timers have them too): a failed run is retried by the change handlers' rule ({@link
 * decideTimerAttempt}, which is `recordAttempt`): after the `TemporaryError`'s delay or the handler's backoff, until
 * it succeeds, throws a `PermanentError` or used up its `retries`. A tick and its retries form one series
 * ({@link TimerSeries}); no regular tick comes while a series is retrying. When the series ends, whatever its
 * outcome, the regular schedule resumes from the series: `interval` after the end of its last attempt, or for `sharp`
 * timers after the start of its first attempt (so retries do not shift a sharp schedule; a series longer than the
 * interval is followed by the next tick at once).
 */
import type { AttemptDecision, AttemptResult, RetryLimits } from './progress.js';
import { decideAttempt } from './progress.js';

/** A timer's schedule, as the decorator declared it. */
export interface TimerTiming {
  /** Interval between runs (see `sharp`). */
  intervalMs: number;
  /** Delay of the first run after the object is first seen. Defaults to `intervalMs`, or to 0 for `idle` timers. */
  initialDelayMs?: number;
  /** Run only when the object did not change for this long. Defaults to none. */
  idleMs?: number;
  /** Measure the interval start-to-start instead of end-to-start. Defaults to false. */
  sharp?: boolean;
}

/** Delay of the first tick after the object was first seen (which counts as a change for `idle`). */
export function firstTickDelay(timing: TimerTiming): number {
  if (timing.idleMs !== undefined) return Math.max(timing.initialDelayMs ?? 0, timing.idleMs);
  return timing.initialDelayMs ?? timing.intervalMs;
}

/**
 * When the tick after a run is due: `interval` after the run's end (or its start when `sharp`), and for an `idle`
 * timer not before `idle` after the last change. Never before `endedAt`.
 */
export function nextTickAt(
  timing: TimerTiming,
  run: { startedAt: number; endedAt: number },
  lastChangeAt: number | undefined,
): number {
  const scheduled = (timing.sharp ? run.startedAt : run.endedAt) + timing.intervalMs;
  return Math.max(scheduled, run.endedAt, idleSince(timing, lastChangeAt));
}

/**
 * For a tick that fell due at `now`: undefined when it may run, else the time to wait for (an `idle` timer whose
 * object changed less than `idle` ago).
 */
export function deferredUntil(timing: TimerTiming, lastChangeAt: number | undefined, now: number): number | undefined {
  const until = idleSince(timing, lastChangeAt);
  return until > now ? until : undefined;
}

/**
 * When an `idle` timer's next tick is due after the object changed at `changedAt` (it waits for quiet again);
 * undefined for other timers, whose schedule a change does not move.
 */
export function tickAfterChange(timing: TimerTiming, changedAt: number): number | undefined {
  return timing.idleMs === undefined ? undefined : changedAt + timing.idleMs;
}

function idleSince(timing: TimerTiming, lastChangeAt: number | undefined): number {
  if (timing.idleMs === undefined || lastChangeAt === undefined) return -Infinity;
  return lastChangeAt + timing.idleMs;
}

/** A tick and its retries, while it is retrying. */
export interface TimerSeries {
  /** Failed attempts so far (the next attempt's `ctx.retry`). */
  retries: number;
  /** When the series' first attempt began (a `sharp` timer's schedule counts from there). */
  startedAt: number;
}

/** What follows one timer run: when the timer is due again, and the series if it retries. */
export interface TimerRunOutcome {
  dueAt: number;
  /** Present when the next run is a retry of this series. */
  series?: TimerSeries;
}

/**
 * Decides what follows a timer's attempt with exactly the rule the change handlers use (`recordAttempt`): success;
 * a retry after the `TemporaryError`'s delay or the backoff delay; or a final failure (`PermanentError`, or
 * `retries` attempts used up). `retries` counts the series' failed attempts before this one.
 */
export function decideTimerAttempt(
  retries: number,
  result: AttemptResult,
  limits: RetryLimits,
  nowMs: number,
  random: () => number = Math.random,
): AttemptDecision {
  // Timers persist nothing of a series: its count lives in memory.
  return decideAttempt(retries, result, limits, nowMs, random);
}

/**
 * When a timer is due after a run (`decision` undefined: it was skipped, its filters not matching), given the series
 * the run belonged to. A retry is due `delayMs` after the run's end and continues the series; anything else ends the
 * series and the regular schedule resumes ({@link nextTickAt}, counted from the series' first start for `sharp`).
 */
export function afterTimerRun(
  timing: TimerTiming,
  series: TimerSeries | undefined,
  run: { startedAt: number; endedAt: number },
  decision: AttemptDecision | undefined,
  lastChangeAt: number | undefined,
): TimerRunOutcome {
  const seriesStartedAt = series?.startedAt ?? run.startedAt;
  if (decision?.kind === 'retry') {
    return {
      dueAt: run.endedAt + decision.delayMs,
      series: { retries: decision.retries, startedAt: seriesStartedAt },
    };
  }
  return { dueAt: nextTickAt(timing, { startedAt: seriesStartedAt, endedAt: run.endedAt }, lastChangeAt) };
}

/** Rejects schedules that cannot work. */
export function validateTiming(owner: string, timing: TimerTiming): void {
  if (!(timing.intervalMs > 0)) throw new Error(`${owner}: interval must be positive, not ${timing.intervalMs}`);
  if (timing.initialDelayMs !== undefined && !(timing.initialDelayMs >= 0)) {
    throw new Error(`${owner}: initialDelayMs must be >= 0, not ${timing.initialDelayMs}`);
  }
  if (timing.idleMs !== undefined && !(timing.idleMs > 0)) {
    throw new Error(`${owner}: idle must be positive, not ${timing.idleMs}`);
  }
}
