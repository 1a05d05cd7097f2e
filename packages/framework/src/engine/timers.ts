/**
 * Per-object timers for `@OnTimer` handlers.
 *
 * A timer only marks itself due and asks the queue to run the object; the run itself happens in the object's queue
 * slot, so timers are serialized with the object's other handlers. The next tick is scheduled when the run ends:
 * `interval` after its end, or after its start for `sharp` timers, so a slow timer never piles up ticks. `idle` timers
 * also wait until the object's essence has not changed for `idle` (see `core/timer-schedule.ts`); the controller
 * reports every essence it receives through {@link TimerScheduler.observe}.
 *
 * Timers start with the first cycle that sees the object and run whatever its create handlers do (still retrying,
 * or failed for good), as Kopf's do.
 *
 * A failed run is retried like a change handler (see {@link TimerScheduler.finish} and `core/timer-schedule.ts`):
 * the timer is armed for the retry instead of its next tick. Retry counts live in memory only: a restarted operator
 * starts every timer afresh (first tick after `initialDelayMs`, `ctx.retry` 0), as it does its schedule.
 */
import { resolveBackoff, type BackoffPolicy } from '../core/backoff.js';
import { extrasOf } from '../core/handler-extensions.js';
import type { HandlerSpec } from '../core/handlers.js';
import type { AttemptDecision } from '../core/progress.js';
import {
  afterTimerRun,
  decideTimerAttempt,
  deferredUntil,
  firstTickDelay,
  tickAfterChange,
  type TimerSeries,
  type TimerTiming,
} from '../core/timer-schedule.js';
import type { AttemptOutcome } from './executor.js';
import { attemptResult } from './handler-run.js';

interface ObjectTimers {
  handles: Map<string, ReturnType<typeof setTimeout>>;
  due: Set<string>;
  /** Timers whose next run retries a failed one. */
  series: Map<string, TimerSeries>;
}

/** The runtime's retry defaults, which a timer's own `retries` and `backoff` override. */
export interface TimerRetryDefaults {
  /** Maximum attempts of a series (`Infinity`: until it succeeds). */
  retries: number;
  backoff: Readonly<BackoffPolicy>;
}

/** The timers of one operator's objects. */
export class TimerScheduler {
  private readonly objects = new Map<string, ObjectTimers>();
  /** Per object: the essence digest last observed and when it changed (idle timers only). */
  private readonly changes = new Map<string, { digest: string; at: number }>();
  private readonly timings = new Map<string, TimerTiming>();
  private stopped = false;

  constructor(
    private readonly timers: readonly HandlerSpec[],
    private readonly onDue: (key: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    for (const timer of timers) {
      const extras = extrasOf(timer);
      this.timings.set(timer.id, {
        intervalMs: timer.intervalMs as number,
        ...(timer.initialDelayMs === undefined ? {} : { initialDelayMs: timer.initialDelayMs }),
        ...(extras.idleMs === undefined ? {} : { idleMs: extras.idleMs }),
        ...(extras.sharp ? { sharp: true } : {}),
      });
    }
  }

  /** True when the operator declares any timer. */
  get enabled(): boolean {
    return this.timers.length > 0;
  }

  /** True when some timer waits for the object to be quiet (`idle`): then every essence must be observed. */
  get tracksChanges(): boolean {
    return [...this.timings.values()].some((timing) => timing.idleMs !== undefined);
  }

  /**
   * Reports the object's essence digest as received. The first report counts as a change (creation is a change for
   * `idle`); later ones only when the digest differs. A change makes every `idle` timer of the object wait `idle`
   * again.
   */
  observe(key: string, digest: string): void {
    if (this.stopped || !this.tracksChanges) return;
    const previous = this.changes.get(key);
    if (previous?.digest === digest) return;
    const at = this.now();
    this.changes.set(key, { digest, at });
    const entry = this.objects.get(key);
    if (!previous || !entry) return;
    for (const timer of this.timers) {
      const dueAt = tickAfterChange(this.timing(timer), at);
      if (dueAt !== undefined && !entry.due.has(timer.id)) this.arm(key, entry, timer, dueAt - at);
    }
  }

  /** Starts the timers of `key` unless they run already. */
  ensure(key: string): void {
    if (this.stopped || !this.enabled || this.objects.has(key)) return;
    const entry: ObjectTimers = { handles: new Map(), due: new Set(), series: new Map() };
    this.objects.set(key, entry);
    if (this.tracksChanges && !this.changes.has(key)) this.changes.set(key, { digest: '', at: this.now() });
    for (const timer of this.timers) this.arm(key, entry, timer, firstTickDelay(this.timing(timer)));
  }

  /**
   * Takes the due timers of `key` (in declaration order); the caller runs them and then calls {@link rearm}. An
   * `idle` timer whose object changed too recently is not taken: it is re-armed for when the object will have been
   * quiet long enough.
   */
  takeDue(key: string): HandlerSpec[] {
    const entry = this.objects.get(key);
    if (!entry || entry.due.size === 0) return [];
    const now = this.now();
    const due: HandlerSpec[] = [];
    for (const timer of this.timers) {
      if (!entry.due.has(timer.id)) continue;
      entry.due.delete(timer.id);
      const until = deferredUntil(this.timing(timer), this.changes.get(key)?.at, now);
      if (until === undefined) due.push(timer);
      else this.arm(key, entry, timer, until - now);
    }
    return due;
  }

  /** The `ctx.retry` of the timer's next run on `key`: failed attempts of the series it retries, else 0. */
  retryOf(key: string, timer: HandlerSpec): number {
    return this.objects.get(key)?.series.get(timer.id)?.retries ?? 0;
  }

  /**
   * Schedules the next regular tick of one timer after a run that asks for no retry (`startedAt`: when the run began,
   * on the same clock): a skipped run (filters not matching), which also ends a retrying series.
   */
  rearm(key: string, timer: HandlerSpec, startedAt: number): void {
    this.finish(key, timer, startedAt);
  }

  /**
   * Records the end of a timer's run on `key` and arms what follows: a retry when the attempt failed and may be
   * retried (limits: the timer's `retries` and `backoff` over the runtime's `defaults`), else the next regular tick.
   * Returns the decision, for metrics and Events; undefined without an attempt.
   */
  finish(
    key: string,
    timer: HandlerSpec,
    startedAt: number,
    run?: { attempt: AttemptOutcome; defaults: TimerRetryDefaults },
  ): AttemptDecision | undefined {
    const endedAt = this.now();
    const entry = this.objects.get(key);
    const series = entry?.series.get(timer.id);
    const decision =
      run &&
      decideTimerAttempt(
        series?.retries ?? 0,
        attemptResult(run.attempt),
        {
          maxAttempts: timer.retries ?? run.defaults.retries,
          backoff: resolveBackoff(timer.backoff, run.defaults.backoff),
        },
        endedAt,
      );
    if (!entry || this.stopped) return decision;
    const next = afterTimerRun(this.timing(timer), series, { startedAt, endedAt }, decision, this.changes.get(key)?.at);
    if (next.series) entry.series.set(timer.id, next.series);
    else entry.series.delete(timer.id);
    this.arm(key, entry, timer, next.dueAt - endedAt);
    return decision;
  }

  /** Stops the timers of `key` (object deleted or being deleted). */
  stop(key: string): void {
    this.changes.delete(key);
    const entry = this.objects.get(key);
    if (!entry) return;
    for (const handle of entry.handles.values()) clearTimeout(handle);
    this.objects.delete(key);
  }

  /** Stops everything (shutdown). */
  stopAll(): void {
    this.stopped = true;
    for (const key of [...this.objects.keys()]) this.stop(key);
    this.changes.clear();
  }

  /** Objects with running timers (for tests and metrics). */
  get size(): number {
    return this.objects.size;
  }

  private timing(timer: HandlerSpec): TimerTiming {
    return this.timings.get(timer.id) as TimerTiming;
  }

  private arm(key: string, entry: ObjectTimers, timer: HandlerSpec, delayMs: number): void {
    clearTimeout(entry.handles.get(timer.id));
    const handle = setTimeout(
      () => {
        entry.handles.delete(timer.id);
        entry.due.add(timer.id);
        this.onDue(key);
      },
      Math.max(0, delayMs),
    );
    handle.unref?.();
    entry.handles.set(timer.id, handle);
  }
}
