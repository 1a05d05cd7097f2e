/**
 * `@OnSecondary` handlers: the changes of watched objects waiting for a primary object, and their runs in the
 * primary's queue slot.
 *
 * Per primary object, one pending change per watched object (`watch id` + object key): a newer change of that object
 * replaces the pending one (latest wins, `previous` kept from the first), and every handler runs for it again. Each
 * handler's attempts are counted per pending change; a failure is retried after backoff (a `TemporaryError`'s delay
 * when given), a `PermanentError` or exhausted `retries` drop it. All of this is in memory: after a restart,
 * `@OnResume` is the place to look at the watched objects again.
 *
 * The processor calls {@link SecondaryHandlers.run} when the primary is at rest and writes the handlers' patches
 * before it calls `commit()`: if that write fails, nothing is marked done and the handlers run again.
 */
import type { Logger } from 'pino';
import { resolveBackoff } from '../core/backoff.js';
import type { SecondaryHandlerSpec } from '../core/handler-extensions.js';
import { decideAttempt, type AttemptDecision } from '../core/progress.js';
import { objectKey } from '../kube/paths.js';
import type { KubeObject } from '../kube/types.js';
import type { HandlerPatch, SecondaryChange } from './context.js';
import { attemptResult, reportDecision, runHandler, type HandlerRunDeps } from './handler-run.js';
import type { AttemptOutcome } from './executor.js';

/** One handler's attempts for one pending change. */
interface Attempts {
  retries: number;
  /** Not before this time (ms since the epoch); 0 for at once. */
  dueAt: number;
}

/** A change of one watched object, waiting for the handlers that have not succeeded for it yet. */
interface PendingChange {
  change: SecondaryChange;
  /** Handler id -> attempts; handlers are removed once done (or given up). */
  handlers: Map<string, Attempts>;
}

/** What one run produced: the handlers' patches, to write before `commit()`. */
export interface SecondaryRun {
  patches: HandlerPatch[];
  /** Records the outcomes (done, retry times) once the patches are written. */
  commit(): void;
}

/** The `@OnSecondary` handlers of one operator and their pending changes. */
export class SecondaryHandlers {
  private readonly pending = new Map<string, Map<string, PendingChange>>();

  constructor(
    private readonly deps: HandlerRunDeps,
    private readonly handlers: readonly SecondaryHandlerSpec[],
    private readonly matches: (handler: SecondaryHandlerSpec, object: KubeObject) => boolean,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a change for the primary `key`; false when no handler takes changes of that watch. */
  add(key: string, change: SecondaryChange): boolean {
    const handlers = this.handlers.filter(
      (handler) => handler.resource === undefined || handler.resource === change.resource,
    );
    if (handlers.length === 0) return false;
    let changes = this.pending.get(key);
    if (!changes) this.pending.set(key, (changes = new Map()));
    const changeKey = `${change.resource}|${objectKey(change.object)}`;
    const earlier = changes.get(changeKey);
    // A new object, not the previous one's latest copy: `previous` stays the copy before the first pending change.
    const previous = earlier ? earlier.change.previous : change.previous;
    changes.set(changeKey, {
      change: { ...change, previous },
      handlers: new Map(handlers.map((handler) => [handler.id, { retries: 0, dueAt: 0 }])),
    });
    return true;
  }

  /** Whether the primary `key` has changes waiting. */
  has(key: string): boolean {
    return this.pending.has(key);
  }

  /** Drops the pending changes of a primary object (deleted, or gone). */
  forget(key: string): void {
    this.pending.delete(key);
  }

  /** Primary objects with changes waiting (tests, diagnostics). */
  get size(): number {
    return this.pending.size;
  }

  /** When the earliest waiting retry of `key` is due, in ms from now; undefined when nothing waits for a time. */
  nextDelay(key: string): number | undefined {
    let earliest = Infinity;
    for (const pending of this.pending.get(key)?.values() ?? []) {
      for (const attempts of pending.handlers.values()) earliest = Math.min(earliest, attempts.dueAt);
    }
    return Number.isFinite(earliest) ? Math.max(1, earliest - this.now()) : undefined;
  }

  /**
   * Runs every handler due for the pending changes of the primary `object` (in arrival order of the changes, then
   * declaration order of the handlers). Handlers whose filters do not match the primary are dropped for the change.
   */
  async run(key: string, object: KubeObject, essence: unknown, logger: Logger): Promise<SecondaryRun | undefined> {
    const changes = this.pending.get(key);
    if (!changes) return undefined;
    const patches: HandlerPatch[] = [];
    const outcomes: Array<() => void> = [];
    for (const [changeKey, pending] of [...changes]) {
      for (const handler of this.handlers) {
        const attempts = pending.handlers.get(handler.id);
        if (!attempts || attempts.dueAt > this.now()) continue;
        if (!this.matches(handler, object)) {
          outcomes.push(() => this.settle(key, changeKey, pending, handler.id, undefined));
          continue;
        }
        const run = await runHandler(this.deps, {
          handler,
          object,
          cause: 'secondary',
          retry: attempts.retries,
          old: essence,
          new: essence,
          diff: [],
          logger: logger.child({ watch: pending.change.resource, secondary: objectKey(pending.change.object) }),
          extra: { secondary: pending.change },
        });
        patches.push(run.patch);
        const decision = this.decide(handler, attempts, run.attempt);
        reportDecision(this.deps, object, handler, 'secondary', decision);
        outcomes.push(() => this.settle(key, changeKey, pending, handler.id, decision));
      }
    }
    return { patches, commit: () => outcomes.forEach((record) => record()) };
  }

  private decide(handler: SecondaryHandlerSpec, attempts: Attempts, attempt: AttemptOutcome): AttemptDecision {
    const limits = {
      maxAttempts: handler.retries ?? this.deps.settings.retries,
      backoff: resolveBackoff(handler.backoff, this.deps.settings.backoff),
    };
    return decideAttempt(attempts.retries, attemptResult(attempt), limits, this.now());
  }

  /** Applies one handler's outcome, unless a newer change of the object replaced the pending one meanwhile. */
  private settle(
    key: string,
    changeKey: string,
    pending: PendingChange,
    handlerId: string,
    decision: AttemptDecision | undefined,
  ): void {
    const changes = this.pending.get(key);
    if (changes?.get(changeKey) !== pending) return;
    if (decision?.kind === 'retry') {
      pending.handlers.set(handlerId, { retries: decision.retries, dueAt: this.now() + decision.delayMs });
      return;
    }
    pending.handlers.delete(handlerId);
    if (pending.handlers.size > 0) return;
    changes.delete(changeKey);
    if (changes.size === 0) this.pending.delete(key);
  }
}
