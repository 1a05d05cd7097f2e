/**
 * Per-object timers for `@OnTimer` handlers.
 *
 * A timer only marks itself due and asks the queue to run the object; the run itself happens in the object's queue
 * slot, so timers are serialized with the object's other handlers. The next tick is scheduled when the run ends
 * (interval measured end-to-start, so a slow timer never piles up).
 */
import type { HandlerSpec } from '../core/handlers.js';

interface ObjectTimers {
  handles: Map<string, ReturnType<typeof setTimeout>>;
  due: Set<string>;
}

/** The timers of one operator's objects. */
export class TimerScheduler {
  private readonly objects = new Map<string, ObjectTimers>();
  private stopped = false;

  constructor(
    private readonly timers: readonly HandlerSpec[],
    private readonly onDue: (key: string) => void,
  ) {}

  /** True when the operator declares any timer. */
  get enabled(): boolean {
    return this.timers.length > 0;
  }

  /** Starts the timers of `key` unless they run already. */
  ensure(key: string): void {
    if (this.stopped || !this.enabled || this.objects.has(key)) return;
    const entry: ObjectTimers = { handles: new Map(), due: new Set() };
    this.objects.set(key, entry);
    for (const timer of this.timers) this.arm(key, entry, timer, timer.initialDelayMs ?? (timer.intervalMs as number));
  }

  /** Takes the due timers of `key` (in declaration order); the caller runs them and then calls {@link rearm}. */
  takeDue(key: string): HandlerSpec[] {
    const entry = this.objects.get(key);
    if (!entry || entry.due.size === 0) return [];
    const due = this.timers.filter((timer) => entry.due.has(timer.id));
    entry.due.clear();
    return due;
  }

  /** Schedules the next tick of one timer after its run. */
  rearm(key: string, timer: HandlerSpec): void {
    const entry = this.objects.get(key);
    if (entry && !this.stopped) this.arm(key, entry, timer, timer.intervalMs as number);
  }

  /** Stops the timers of `key` (object deleted or being deleted). */
  stop(key: string): void {
    const entry = this.objects.get(key);
    if (!entry) return;
    for (const handle of entry.handles.values()) clearTimeout(handle);
    this.objects.delete(key);
  }

  /** Stops everything (shutdown). */
  stopAll(): void {
    this.stopped = true;
    for (const key of [...this.objects.keys()]) this.stop(key);
  }

  /** Objects with running timers (for tests and metrics). */
  get size(): number {
    return this.objects.size;
  }

  private arm(key: string, entry: ObjectTimers, timer: HandlerSpec, delayMs: number): void {
    clearTimeout(entry.handles.get(timer.id));
    const handle = setTimeout(() => {
      entry.handles.delete(timer.id);
      entry.due.add(timer.id);
      this.onDue(key);
    }, delayMs);
    handle.unref?.();
    entry.handles.set(timer.id, handle);
  }
}
