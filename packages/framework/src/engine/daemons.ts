/**
 * `@Daemon`s: one long-lived task per object and daemon (Kopf's daemons), supervised.
 *
 * ```
 *   first cycle that sees the object (and it matches the filters)
 *     -> [initial delay] -> running --returned--> finished (not restarted for this object in this process)
 *                             |--threw--> backoff -> running (PermanentError / retries exhausted -> finished)
 *   deletion, object gone, filters no longer matching, shutdown
 *     -> signal aborted -> stopping --returned--> gone (re-spawned by a later cycle if it matches again)
 *                              \--cancellation timeout--> abandoned (still counted as running until it returns)
 * ```
 *
 * Guarantees: never two tasks for one object and daemon at once, even when one ignores its signal; a daemon's signal
 * is aborted as soon as its object is seen being deleted. Daemons run beside the object's handlers, not in its queue
 * slot. Caveat: JavaScript cannot kill a task; one that ignores `ctx.signal` keeps running after it was abandoned.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { resolveBackoff } from '../core/backoff.js';
import { classifyFailure } from '../core/errors.js';
import type { DaemonSpec } from '../core/handler-extensions.js';
import { decideAttempt } from '../core/progress.js';
import { sleep } from '../kube/abort.js';
import type { KubeObject } from '../kube/types.js';
import type { DaemonContext } from './context.js';
import { invokeHandler } from './definition.js';
import { runAttempt } from './executor.js';
import { handlerApi } from './handler-api.js';
import { attemptResult, eventPublisher, NO_VIEWS, reportDecision, type HandlerRunDeps } from './handler-run.js';

/** Default of `@Daemon({ cancellationTimeoutMs })`. */
export const DEFAULT_DAEMON_CANCELLATION_TIMEOUT_MS = 10_000;

/** What the supervisor needs besides what handlers need. */
export interface DaemonDeps extends HandlerRunDeps {
  /** The freshest copy of an object by key (undefined once it is gone). */
  lookup: (key: string) => KubeObject | undefined;
  /** Whether the object matches a daemon's filters (logs filters that throw). */
  matches: (daemon: DaemonSpec, object: KubeObject) => boolean;
  /** A daemon that was stopped for not matching any more has returned: the object wants a cycle to re-spawn it. */
  onStopped: (key: string) => void;
}

interface DaemonRun {
  spec: DaemonSpec;
  key: string;
  uid: string;
  controller: AbortController;
  /** The object as last seen (what the context falls back to once it is gone). */
  last: KubeObject;
  /** Resolves when the task returned (never rejects). */
  done: Promise<void>;
  /** Why it was asked to stop, once it was. */
  stopReason?: 'deleted' | 'filters' | 'shutdown';
}

/** The daemons of one operator's objects. */
export class DaemonSupervisor {
  /** object key -> daemon id -> run. */
  private readonly runs = new Map<string, Map<string, DaemonRun>>();
  /** uid -> ids of daemons that ended for good for that object (returned, PermanentError, retries exhausted). */
  private readonly finished = new Map<string, Set<string>>();
  private stopped = false;

  constructor(private readonly deps: DaemonDeps) {}

  /** Tasks alive (running, in backoff, or stopping). */
  get size(): number {
    let count = 0;
    for (const runs of this.runs.values()) count += runs.size;
    return count;
  }

  /** Whether a daemon of `key` is alive (tests, diagnostics). */
  isRunning(key: string, id: string): boolean {
    return this.runs.get(key)?.has(id) ?? false;
  }

  /**
   * Starts the daemons the object should have and stops those whose filters it no longer matches. Called by every
   * handling cycle of an object that exists and is not being deleted.
   */
  ensure(key: string, object: KubeObject): void {
    if (this.stopped || this.deps.definition.daemons.length === 0) return;
    const uid = object.metadata.uid;
    for (const spec of this.deps.definition.daemons) {
      const run = this.runs.get(key)?.get(spec.id);
      if (run && run.uid !== uid) {
        // Same name, new object: the old one's daemon ends; the new one gets its own once that returned.
        this.signal(run, 'deleted');
        continue;
      }
      const matching = this.deps.matches(spec, object);
      if (run) {
        if (!matching) this.signal(run, 'filters');
        continue;
      }
      if (matching && !this.finished.get(uid)?.has(spec.id)) this.start(key, object, spec);
    }
  }

  /** Aborts the signals of an object's daemons because it no longer matches the operator's `when`; does not wait. */
  release(key: string): void {
    for (const run of this.runs.get(key)?.values() ?? []) this.signal(run, 'filters');
  }

  /** Aborts the signals of an object's daemons (being deleted, or gone); does not wait. */
  stop(key: string): void {
    for (const run of this.runs.get(key)?.values() ?? []) this.signal(run, 'deleted');
  }

  /**
   * Aborts the signals of an object's daemons and waits until they returned, each at most its cancellation timeout
   * (then it is abandoned, with a warning). The finalizer release waits for this.
   */
  async stopAndWait(key: string): Promise<void> {
    const runs = [...(this.runs.get(key)?.values() ?? [])];
    for (const run of runs) this.signal(run, 'deleted');
    await Promise.all(runs.map((run) => this.awaitStop(run)));
  }

  /** Forgets what ended for good for an object that is gone (a new object of the same name starts afresh). */
  forget(uid: string): void {
    this.finished.delete(uid);
  }

  /** Shutdown: aborts every daemon's signal; no new one starts. */
  stopAll(): void {
    this.stopped = true;
    for (const runs of this.runs.values()) for (const run of runs.values()) this.signal(run, 'shutdown');
  }

  /** Resolves once every daemon returned or was abandoned after its cancellation timeout. */
  async drain(): Promise<void> {
    const runs = [...this.runs.values()].flatMap((byId) => [...byId.values()]);
    await Promise.all(runs.map((run) => this.awaitStop(run)));
  }

  private signal(run: DaemonRun, reason: NonNullable<DaemonRun['stopReason']>): void {
    if (run.stopReason) return;
    run.stopReason = reason;
    run.controller.abort(new Error(`daemon '${run.spec.id}' stopping: ${reason}`));
  }

  private async awaitStop(run: DaemonRun): Promise<void> {
    const timeoutMs = run.spec.cancellationTimeoutMs ?? DEFAULT_DAEMON_CANCELLATION_TIMEOUT_MS;
    const timer = new AbortController();
    const outcome = await Promise.race([
      run.done.then(() => 'returned' as const),
      delay(timeoutMs, 'timeout' as const, { signal: timer.signal }).catch(() => 'returned' as const),
    ]);
    timer.abort();
    if (outcome === 'timeout') {
      this.deps.logger.warn(
        { object: run.key, daemon: run.spec.id, timeoutMs },
        'daemon did not return within its cancellation timeout; abandoned (no new one starts until it returns)',
      );
    }
  }

  private start(key: string, object: KubeObject, spec: DaemonSpec): void {
    const run: DaemonRun = {
      spec,
      key,
      uid: object.metadata.uid,
      last: object,
      controller: new AbortController(),
      done: Promise.resolve(),
    };
    let runs = this.runs.get(key);
    if (!runs) this.runs.set(key, (runs = new Map()));
    runs.set(spec.id, run);
    run.done = this.supervise(run)
      .catch((error: unknown) =>
        this.deps.logger.error({ err: error, daemon: spec.id, object: key }, 'daemon supervisor failed'),
      )
      .finally(() => this.ended(run));
  }

  private ended(run: DaemonRun): void {
    const runs = this.runs.get(run.key);
    if (runs?.get(run.spec.id) !== run) return;
    runs.delete(run.spec.id);
    if (runs.size === 0) this.runs.delete(run.key);
    // Stopped for its filters (or replaced by a new object of the same name): a cycle decides whether to re-spawn.
    if (!this.stopped && run.stopReason !== undefined && run.stopReason !== 'shutdown') this.deps.onStopped(run.key);
  }

  private markFinished(run: DaemonRun): void {
    let ids = this.finished.get(run.uid);
    if (!ids) this.finished.set(run.uid, (ids = new Set()));
    ids.add(run.spec.id);
  }

  private async supervise(run: DaemonRun): Promise<void> {
    const { deps } = this;
    const { spec } = run;
    const signal = run.controller.signal;
    const logger = deps.logger.child({ object: run.key, uid: run.uid, daemon: spec.id });
    if (spec.initialDelayMs) await sleep(spec.initialDelayMs, signal);
    const backoff = resolveBackoff(spec.backoff, deps.settings.backoff);
    const maxAttempts = spec.retries ?? deps.settings.retries;
    for (let retry = 0; !signal.aborted; retry++) {
      logger.info({ retry }, 'daemon started');
      const attempt = await runAttempt(
        (attemptSignal) => invokeHandler(deps.definition, spec, this.context(run, retry, attemptSignal, logger)),
        { handlerId: spec.id, shutdownSignal: signal },
      );
      const labels = { operator: deps.definition.name, handler: spec.id, cause: 'daemon' };
      deps.metrics.handlerRuns.inc({ ...labels, outcome: attempt.ok ? 'success' : classifyFailure(attempt.error) });
      if (signal.aborted) {
        logger.info({ reason: run.stopReason }, 'daemon stopped');
        return;
      }
      if (attempt.ok) {
        logger.info('daemon returned; not restarted for this object');
        this.markFinished(run);
        return;
      }
      const decision = decideAttempt(retry, attemptResult(attempt), { maxAttempts, backoff }, Date.now());
      logger.warn(
        { err: attempt.error, retry },
        decision.kind === 'retry' ? 'daemon failed; restarting' : 'daemon failed',
      );
      const object = deps.lookup(run.key);
      if (object) reportDecision(deps, object, spec, 'daemon', decision);
      if (decision.kind !== 'retry') {
        this.markFinished(run);
        return;
      }
      await sleep(decision.delayMs, signal);
    }
  }

  private context(run: DaemonRun, retry: number, signal: AbortSignal, logger: Logger): DaemonContext {
    const { deps } = this;
    // Live: every read takes the freshest copy of the same object (the last one seen once it is gone).
    const body = (): KubeObject => {
      const current = deps.lookup(run.key);
      if (current && current.metadata.uid === run.uid) run.last = current;
      return run.last;
    };
    const last = body();
    const views = deps.views ?? NO_VIEWS;
    return {
      get body() {
        return body();
      },
      get spec() {
        return body().spec;
      },
      get status() {
        return body().status;
      },
      name: last.metadata.name,
      namespace: last.metadata.namespace,
      uid: run.uid,
      daemonId: run.spec.id,
      retry,
      instanceId: deps.settings.instanceId,
      logger,
      operatorLogger: deps.logger,
      events: eventPublisher(deps.recorder, deps.definition).about(last),
      cache: deps.cache,
      caches: views.caches,
      indexes: views.indexes,
      index: views.index,
      nodes: deps.nodes,
      signal,
      settings: deps.settings,
      api: handlerApi(deps.api),
      sleep: async (ms: number) => {
        await sleep(ms, signal);
        return !signal.aborted;
      },
    };
  }
}
