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
 */
import { extrasOf } from '../core/handler-extensions.js';
import type { HandlerSpec } from '../core/handlers.js';
import {
  deferredUntil,
  firstTickDelay,
  nextTickAt,
  tickAfterChange,
  type TimerTiming,
} from '../core/timer-schedule.js';

interface ObjectTimers {
  handles: Map<string, ReturnType<typeof setTimeout>>;
  due: Set<string>;
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
    const entry: ObjectTimers = { handles: new Map(), due: new Set() };
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

  /** Schedules the next tick of one timer after its run (`startedAt`: when the run began, on the same clock). */
  rearm(key: string, timer: HandlerSpec, startedAt: number): void {
    const entry = this.objects.get(key);
    if (!entry || this.stopped) return;
    const endedAt = this.now();
    const dueAt = nextTickAt(this.timing(timer), { startedAt, endedAt }, this.changes.get(key)?.at);
    this.arm(key, entry, timer, dueAt - endedAt);
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
