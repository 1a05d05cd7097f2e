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
 */

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
