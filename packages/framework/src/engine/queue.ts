/**
 * The per-object work queue: the scheduler and runner of the pipeline (kube-rs' `scheduler` + `runner`).
 *
 * Guarantees:
 * - Never two runs for one key at once. A key added while it runs is marked dirty and runs once more afterwards, however
 *   many times it was added meanwhile: events are coalesced, and since the worker reads the freshest copy of the
 *   object when it starts, the latest state wins.
 * - Different keys run in parallel, at most `concurrency` at a time, in FIFO order of readiness (a key re-added
 *   after its run goes to the back, so one busy object cannot starve the others).
 * - Delayed requeues (retries, timers): `addAfter` keeps the earliest requested time; an immediate `add` overrides a
 *   pending delay.
 * - After `close()`, nothing new starts; `drain()` waits for the runs in progress.
 * Caveat: the queue holds keys only, never objects; the worker looks the object up.
 */

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Keys run in parallel at most. */
  concurrency: number;
  /** Does the work for one key. A rejection is passed to `onError`; the key is not retried by the queue. */
  worker: (key: string) => Promise<void>;
  /** Called with the number of keys waiting (ready or delayed, not running) whenever it changes. */
  onDepthChange?: (depth: number) => void;
  onError?: (key: string, error: unknown) => void;
}

interface Entry {
  state: 'ready' | 'running' | 'delayed';
  /** Running: added again meanwhile. */
  dirty: boolean;
  /** Running or delayed: when the delayed run is due (ms since epoch). */
  dueAt?: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** A keyed work queue with per-key serialization and coalescing. */
export class WorkQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private active = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private lastDepth = -1;

  constructor(private readonly options: WorkQueueOptions) {
    if (!(options.concurrency >= 1)) throw new Error(`concurrency must be >= 1, not ${options.concurrency}`);
  }

  /** Keys waiting to run (ready or delayed). */
  get depth(): number {
    // Every key has one entry, and exactly the running ones are counted by `active`.
    return this.entries.size - this.active;
  }

  /** Keys running now. */
  get running(): number {
    return this.active;
  }

  /** Whether `key` is running now. */
  isRunning(key: string): boolean {
    return this.entries.get(key)?.state === 'running';
  }

  /** Runs `key` as soon as a slot is free (or once more after its current run). */
  add(key: string): void {
    if (this.closed) return;
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { state: 'ready', dirty: false });
      this.ready.push(key);
    } else if (entry.state === 'running') {
      entry.dirty = true;
    } else if (entry.state === 'delayed') {
      clearTimeout(entry.timer);
      entry.state = 'ready';
      entry.timer = undefined;
      entry.dueAt = undefined;
      this.ready.push(key);
    }
    this.dispatch();
  }

  /** Runs `key` after `delayMs`, unless it is due earlier anyway. */
  addAfter(key: string, delayMs: number): void {
    if (this.closed) return;
    if (delayMs <= 0) return this.add(key);
    const dueAt = Date.now() + delayMs;
    const entry = this.entries.get(key);
    if (!entry) {
      const created: Entry = { state: 'delayed', dirty: false };
      this.entries.set(key, created);
      this.schedule(key, created, dueAt);
    } else if (entry.state === 'running') {
      entry.dueAt = Math.min(entry.dueAt ?? Infinity, dueAt);
    } else if (entry.state === 'delayed' && (entry.dueAt ?? Infinity) > dueAt) {
      this.schedule(key, entry, dueAt);
    }
    this.reportDepth();
  }

  /** Drops a waiting key (the object is gone). A running key finishes, without the requeue. */
  forget(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    if (entry.state === 'running') {
      entry.dirty = false;
      entry.dueAt = undefined;
      return;
    }
    clearTimeout(entry.timer);
    this.entries.delete(key);
    const index = this.ready.indexOf(key);
    if (index >= 0) this.ready.splice(index, 1);
    this.reportDepth();
  }

  /** Stops intake: nothing new starts; waiting and delayed keys are dropped. */
  close(): void {
    this.closed = true;
    for (const [key, entry] of this.entries) {
      if (entry.state === 'running') {
        entry.dirty = false;
        entry.dueAt = undefined;
      } else {
        clearTimeout(entry.timer);
        this.entries.delete(key);
      }
    }
    this.ready.length = 0;
    this.reportDepth();
  }

  /** Resolves when no run is in progress (and, if still open, none is ready). */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.active === 0 && this.ready.length === 0;
  }

  private schedule(key: string, entry: Entry, dueAt: number): void {
    clearTimeout(entry.timer);
    entry.state = 'delayed';
    entry.dueAt = dueAt;
    entry.timer = setTimeout(
      () => {
        if (this.entries.get(key) !== entry || entry.state !== 'delayed') return;
        entry.state = 'ready';
        entry.timer = undefined;
        entry.dueAt = undefined;
        this.ready.push(key);
        this.dispatch();
      },
      Math.max(0, dueAt - Date.now()),
    );
    // Queue timers alone must not keep a process alive; the watches do that while the operator runs.
    entry.timer.unref?.();
  }

  private dispatch(): void {
    while (!this.closed && this.active < this.options.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() as string;
      const entry = this.entries.get(key);
      if (!entry || entry.state !== 'ready') continue;
      entry.state = 'running';
      this.active += 1;
      void this.run(key, entry);
    }
    this.reportDepth();
    if (this.isIdle() || (this.closed && this.active === 0)) this.wakeIdle();
  }

  private async run(key: string, entry: Entry): Promise<void> {
    try {
      await this.options.worker(key);
    } catch (error) {
      this.options.onError?.(key, error);
    } finally {
      this.active -= 1;
      if (entry.dirty && !this.closed) {
        entry.dirty = false;
        entry.state = 'ready';
        entry.dueAt = undefined;
        this.ready.push(key);
      } else if (entry.dueAt !== undefined && !this.closed) {
        this.schedule(key, entry, entry.dueAt);
      } else {
        this.entries.delete(key);
      }
      this.dispatch();
    }
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private reportDepth(): void {
    const depth = this.depth;
    if (depth === this.lastDepth) return;
    this.lastDepth = depth;
    this.options.onDepthChange?.(depth);
  }
}
