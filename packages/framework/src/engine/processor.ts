/**
 * One handling cycle of one object: the reconciler stage of the pipeline.
 *
 * Called by the queue (never concurrently for one object) with the object's key. It takes the freshest copy of
 * the object, detects the cause, makes sure the finalizer is in place before any handler runs, runs the cause's
 * handlers in order, and persists after each one (progress, handler patches, outcomes), so that at most the handler
 * that was running when the process died runs again. Due timers and `@OnSecondary` handlers run afterwards, in the
 * same slot (see `slot-extras.ts`); daemons are started before the change handlers (see `daemons.ts`).
 *
 * Writes per step, in this order: (1) one guarded JSON patch of the object's metadata when anything there changes
 * (finalizer, cluster-scope state annotations, handler labels/annotations); (2) node scope: the state file; (3) one
 * merge patch of the status, skipped when it would only record plain successes (see `statusWriteNeeded`). A
 * single-handler change in the steady state therefore costs one request in cluster scope (the state annotations) and
 * none in node scope (the state is local) when the handler only succeeds, plus one status write when it returns a
 * value, patches status or fails, plus rate-limited Events.
 *
 * Writes that fail (API server unavailable) never make a handler that succeeded run again within this process: the
 * cycle's progress and the writes it still owes are kept in memory per uid (see {@link Unfinished}) and the next
 * cycle continues from them, retrying the writes. Across a crash, the persisted progress decides: at most the
 * handler whose result was not yet persisted runs again (at-least-once across crashes, exactly-once within a
 * process).
 */
import type { Logger } from 'pino';
import { detectCause, selectHandlers } from '../core/causes.js';
import { diffValues } from '../core/diff.js';
import { computeEssence, digest, type Essence } from '../core/essence.js';
import { keepsChangeState, needsFinalizer, type HandlerSpec } from '../core/handlers.js';
import type { MetadataChanges } from '../core/metadata-patch.js';
import { getField, hasPathPrefix } from '../core/paths.js';
import {
  implausibleProgress,
  nextStep,
  progressFor,
  recordAttempt,
  type CauseProgress,
  type ChangeCause,
  type ObjectState,
} from '../core/progress.js';
import {
  buildStatusPatch,
  emptyStatusWrites,
  mergePatches,
  recordedOutcomes,
  statusWriteNeeded,
  type StatusLayout,
  type StatusWrites,
} from '../core/status.js';
import { resolveBackoff } from '../core/backoff.js';
import { extrasOf } from '../core/handler-extensions.js';
import type { KubeObject } from '../kube/types.js';
import type { HandlerPatch } from './context.js';
import type { DaemonSupervisor } from './daemons.js';
import { passesFilters } from './filtering.js';
import { keepWritten, type FreshnessTracker } from './freshness.js';
import {
  attemptResult,
  eventTarget,
  outcomeEntry,
  reportDecision,
  runHandler,
  type HandlerRunDeps,
} from './handler-run.js';
import type { SecondaryHandlers } from './secondary-handlers.js';
import { runDueTimers, runSecondaryChanges, type PatchWriter } from './slot-extras.js';
import type { StateStore } from './state-store.js';
import type { TimerScheduler } from './timers.js';
import type { ObjectWriter } from './writer.js';

/** Everything a cycle needs. */
export interface ProcessorDeps extends HandlerRunDeps {
  store: StateStore;
  writer: ObjectWriter;
  freshness: FreshnessTracker;
  timers: TimerScheduler;
  /** The operator's `@Daemon`s (none when undefined). */
  daemons?: DaemonSupervisor;
  /** The operator's `@OnSecondary` handlers and their pending changes (none when undefined). */
  secondary?: SecondaryHandlers;
  /** The watch cache by key. */
  lookup: (key: string) => KubeObject | undefined;
  /** True once shutdown began: no further handler starts. */
  stopping: () => boolean;
  now?: () => number;
}

/** Writes accumulated since the last persist. */
interface PendingWrites {
  status: StatusWrites;
  labels: Record<string, string | null>;
  annotations: Record<string, string | null>;
}

function emptyPending(): PendingWrites {
  return { status: emptyStatusWrites(), labels: {}, annotations: {} };
}

/** A copy that later changes to `pending` do not reach (values are replaced, never mutated, so one level suffices). */
function copyPending(pending: PendingWrites): PendingWrites {
  const { status } = pending;
  return {
    status: {
      outcomes: { ...status.outcomes },
      results: { ...status.results },
      status: { ...status.status },
      instanceStatus: { ...status.instanceStatus },
    },
    labels: { ...pending.labels },
    annotations: { ...pending.annotations },
  };
}

/**
 * A cycle whose writes did not all go through (typically: the API server was unavailable). Kept in memory from the
 * moment a handler ran until everything it produced is written, so the next cycle neither runs a handler that
 * already succeeded nor loses its outcome, return value or patches.
 */
interface Unfinished {
  cause: ChangeCause;
  /** The essence digest the cause handles (`''` for delete), as in {@link CauseProgress.target}. */
  target: string;
  /** The progress as of the last handler run, possibly ahead of the persisted one. */
  progress: CauseProgress;
  /** Writes not yet confirmed: status, handler labels/annotations (and, for a delete, the finalizer release). */
  pending: PendingWrites;
}

/** Runs handling cycles for one operator. */
export class Processor {
  /** Object uids this process brought to rest at least once (for resume). */
  private readonly seen = new Set<string>();
  /** Keys of deleted objects whose local state is still to be dropped, with their uid. */
  private readonly gone = new Map<string, string>();
  /**
   * Uids whose delete this process completed (finalizer released). When releasing the last finalizer deletes the
   * object, the API answers with the object at its previous resourceVersion, so a cached copy from before looks as
   * fresh as our write; without this record the delete handlers would run a second time.
   */
  private readonly released = new Set<string>();
  /** Cycles with writes still owed, by uid (see {@link Unfinished}). */
  private readonly unfinished = new Map<string, Unfinished>();
  /** The last discarded-state reason reported per uid, so a cycle retried many times reports it once. */
  private readonly reportedDiscards = new Map<string, string>();
  private readonly keepsState: boolean;
  private readonly needsFinalizer: boolean;
  private readonly hasResumeHandlers: boolean;
  private readonly now: () => number;

  constructor(private readonly deps: ProcessorDeps) {
    const handlers = deps.definition.handlers;
    this.keepsState = keepsChangeState(handlers);
    this.needsFinalizer = needsFinalizer(handlers);
    this.hasResumeHandlers = handlers.some((handler) => handler.kind === 'resume');
    this.now = deps.now ?? Date.now;
  }

  /** Tells the processor an object was deleted (its local state is dropped in its next cycle). */
  noteDeleted(key: string, uid: string): void {
    this.gone.set(key, uid);
  }

  /** One cycle; resolves with the delay after which the object wants another cycle, if any. */
  async process(key: string): Promise<number | undefined> {
    const { deps } = this;
    const object = deps.freshness.pick(key, deps.lookup(key));
    if (!object) {
      await this.objectGone(key);
      return undefined;
    }
    const deleting = Boolean(object.metadata.deletionTimestamp);
    const hasFinalizer = object.metadata.finalizers?.includes(deps.definition.finalizer) ?? false;
    if (deleting) {
      deps.timers.stop(key);
      // Daemons learn of the deletion at once; the finalizer release waits for them (see `complete`).
      deps.daemons?.stop(key);
      deps.secondary?.forget(key);
    }
    if (!this.matches(object) && !(deleting && hasFinalizer)) {
      deps.daemons?.release(key);
      return undefined;
    }
    const logger = deps.logger.child({ object: key, uid: object.metadata.uid });
    // Daemons start with the first sight of the object, before and whatever its change handlers do (as in Kopf).
    if (!deleting && !deps.stopping()) deps.daemons?.ensure(key, object);
    let requeue: number | undefined;
    if (this.keepsState) requeue = await this.handleChange(key, object, logger);
    if (!deleting && !deps.stopping()) {
      await runDueTimers(deps, key, logger, this.writePatches);
      // Changes of watched objects wait until the object is at rest: no cause in progress (none retrying).
      if (requeue === undefined) requeue = await runSecondaryChanges(deps, key, logger, this.writePatches);
    }
    return requeue;
  }

  private matches(object: KubeObject): boolean {
    const when = this.deps.definition.when;
    if (!when) return true;
    try {
      return when(object);
    } catch (error) {
      this.deps.logger.warn({ err: error, object: object.metadata.name }, 'when() threw; object skipped');
      return false;
    }
  }

  private async objectGone(key: string): Promise<void> {
    this.deps.timers.stop(key);
    this.deps.daemons?.stop(key);
    this.deps.secondary?.forget(key);
    this.deps.freshness.forget(key);
    const uid = this.gone.get(key);
    if (uid === undefined) return;
    this.deps.daemons?.forget(uid);
    this.gone.delete(key);
    this.seen.delete(uid);
    this.released.delete(uid);
    this.unfinished.delete(uid);
    this.reportedDiscards.delete(uid);
    await this.deps.store.forget(uid);
  }

  private async handleChange(key: string, object: KubeObject, logger: Logger): Promise<number | undefined> {
    const { deps } = this;
    const { definition } = deps;
    const uid = object.metadata.uid;
    const deleting = Boolean(object.metadata.deletionTimestamp);
    if (deleting && this.released.has(uid)) return undefined;
    const hasFinalizer = object.metadata.finalizers?.includes(definition.finalizer) ?? false;
    const state = await this.readState(object, deleting, logger);
    const essence = computeEssence(object, definition.prefix);
    const cause = detectCause({
      deleting,
      hasOwnFinalizer: hasFinalizer,
      essence,
      state: state.state,
      seenInThisRun: this.seen.has(uid),
      hasResumeHandlers: this.hasResumeHandlers,
    });
    const unfinished = this.unfinished.get(uid);
    if (cause === 'noop') {
      if (!deleting) {
        // Writes still owed by a cycle whose state write went through but whose status write did not; re-add a
        // finalizer that someone removed (or that a dead-instance sweep took from a returning node); drop progress of
        // a change that was reverted before it completed; replace stored state that was discarded as garbage.
        const next = diffBaseOf(state.state);
        const addFinalizers = this.needsFinalizer && !hasFinalizer ? [definition.finalizer] : [];
        if (addFinalizers.length > 0 || state.state.progress || unfinished || state.discarded) {
          const owed = unfinished?.pending ?? emptyPending();
          const written = await this.persist(key, object, owed, next, { addFinalizers });
          if (written !== 'gone' && unfinished) logger.debug({ cause: unfinished.cause }, 'owed writes done');
        }
        this.seen.add(uid);
      }
      this.unfinished.delete(uid);
      return undefined;
    }
    logger.debug({ cause }, 'cause detected');
    let current = object;
    if (cause !== 'delete' && this.needsFinalizer && !hasFinalizer) {
      // Before the first handler: an object deleted while being created must still get its delete handlers.
      const written = await this.persist(key, current, emptyPending(), undefined, {
        addFinalizers: [definition.finalizer],
      });
      if (written === 'gone') return this.dropUnfinished(uid);
      current = written;
    }
    const oldEssence = cause === 'create' ? undefined : state.state.diffBase;
    const handlers = this.selectHandlers(cause, object, oldEssence, essence);
    const ids = handlers.map((handler) => handler.id);
    const target = cause === 'delete' ? '' : digest(essence);
    // Continue an unfinished cycle of the same cause and target: its handlers that succeeded are done. When the
    // essence moved on, its progress is moot, but the writes it owes (outcomes, handler patches) are still owed.
    const continued = unfinished && unfinished.cause === cause && unfinished.target === target;
    let progress = continued ? unfinished.progress : progressFor(state.state, cause, target, this.now()).progress;
    const pending = unfinished ? copyPending(unfinished.pending) : emptyPending();
    if (unfinished) {
      logger.debug({ cause, continued, from: unfinished.cause }, 'retrying the writes of an unfinished cycle');
    }
    const remember = (): void => {
      this.unfinished.set(uid, { cause, target, progress, pending: copyPending(pending) });
    };
    if (unfinished) remember();
    for (;;) {
      const step = nextStep(progress, ids, this.now());
      if (step.kind === 'wait') {
        if (this.unfinished.has(uid)) {
          // Owed writes go out now rather than after the wait.
          const written = await this.persist(key, current, pending, { ...diffBaseOf(state.state), progress });
          this.unfinished.delete(uid);
          if (written === 'gone') return undefined;
        }
        return Math.max(1, step.untilMs - this.now());
      }
      if (step.kind === 'done') {
        await this.complete(key, current, cause, target, essence, state.state, progress, pending, step.failed, logger);
        return undefined;
      }
      if (deps.stopping()) return undefined;
      const handler = handlers.find((candidate) => candidate.id === step.handlerId) as HandlerSpec;
      const { old: oldValue, new: newValue, diff } = handlerView(handler, cause, oldEssence, essence);
      const run = await runHandler(deps, {
        handler,
        object: current,
        cause,
        retry: step.retry,
        old: oldValue,
        new: newValue,
        diff,
        logger,
      });
      absorbPatch(pending, run.patch);
      const limits = {
        maxAttempts: handler.retries ?? deps.settings.retries,
        backoff: resolveBackoff(handler.backoff, deps.settings.backoff),
      };
      const recorded = recordAttempt(progress, handler.id, attemptResult(run.attempt), limits, this.now());
      progress = recorded.progress;
      const decision = recorded.decision;
      const retries = progress.handlers[handler.id]?.retries ?? 0;
      pending.status.outcomes[handler.id] = outcomeEntry(decision, cause, retries, this.now());
      if (run.attempt.ok && run.attempt.value !== undefined) pending.status.results[handler.id] = run.attempt.value;
      reportDecision(deps, current, handler, cause, decision);
      // From here until written, this attempt's result lives only in memory.
      remember();
      if (nextStep(progress, ids, this.now()).kind === 'done') continue;
      // More to do for this cause: persist now, so a crash from here on never re-runs this handler.
      const written = await this.persist(key, current, pending, { ...diffBaseOf(state.state), progress });
      this.unfinished.delete(uid);
      if (written === 'gone') return undefined;
      current = written;
      Object.assign(pending, emptyPending());
      if (decision.kind === 'retry') return Math.max(1, decision.delayMs);
    }
  }

  /**
   * The handlers of a cause for this object: the cause's own and the field handlers whose field changed (see
   * `selectHandlers`), less field handlers that opted out of create (`onCreate: false`) and handlers whose filters
   * (labels, annotations, `when`) the object does not match now.
   */
  private selectHandlers(
    cause: ChangeCause,
    object: KubeObject,
    oldEssence: Essence | undefined,
    essence: Essence,
  ): HandlerSpec[] {
    return selectHandlers(cause, this.deps.definition.handlers, oldEssence, essence).filter((handler) => {
      const extras = extrasOf(handler);
      if (cause === 'create' && handler.kind === 'field' && extras.onCreate === false) return false;
      return passesFilters(extras.filters, object, this.deps.logger, handler.id);
    });
  }

  /**
   * Reads the stored state. State that cannot be trusted (unreadable, undecodable, implausible) counts as lost and is
   * reported once per reason (a warning naming the object and a `StateDiscarded` Warning Event); the next state write
   * replaces it.
   */
  private async readState(
    object: KubeObject,
    deleting: boolean,
    logger: Logger,
  ): Promise<{ state: ObjectState; discarded?: string }> {
    const read = await this.deps.store.read(object);
    let { state } = read;
    const reasons = read.discarded === undefined ? [] : [read.discarded];
    const implausible = implausibleProgress(state.progress, deleting);
    if (implausible !== undefined) {
      state = diffBaseOf(state);
      reasons.push(implausible);
    }
    if (reasons.length === 0) return { state };
    const discarded = reasons.join('; ');
    const uid = object.metadata.uid;
    if (this.reportedDiscards.get(uid) !== discarded) {
      this.reportedDiscards.set(uid, discarded);
      const { definition, settings } = this.deps;
      const lost = state.diffBase === undefined ? 'handled as new' : 'progress dropped';
      logger.warn({ reason: discarded }, `stored state discarded (${lost})`);
      const who = definition.scope === 'node' ? `${settings.instanceId}: ` : '';
      this.deps.recorder.record(
        eventTarget(definition, object),
        'Warning',
        'StateDiscarded',
        `${who}Stored handling state discarded (${lost}): ${discarded}`,
      );
    }
    return { state, discarded };
  }

  private dropUnfinished(uid: string): undefined {
    this.unfinished.delete(uid);
    return undefined;
  }

  private async complete(
    key: string,
    object: KubeObject,
    cause: ChangeCause,
    target: string,
    essence: Essence,
    state: ObjectState,
    progress: CauseProgress,
    pending: PendingWrites,
    failed: string[],
    logger: Logger,
  ): Promise<void> {
    const { deps } = this;
    const uid = object.metadata.uid;
    if (cause !== 'delete') {
      // The handlers are done whether or not the writes below go through: no resume for this object in this run.
      this.seen.add(uid);
      // Done, successfully or not: the essence becomes the diff-base; failures stay visible in status.
      await this.persist(key, object, pending, { diffBase: essence });
      this.unfinished.delete(uid);
      logger.debug({ cause, failed }, 'cause handled');
      return;
    }
    if (failed.length > 0) {
      // Never release an object whose cleanup failed: keep the finalizer, record that it failed for good.
      await this.persist(key, object, pending, { ...diffBaseOf(state), progress });
      this.unfinished.delete(uid);
      logger.warn({ failed }, 'delete handlers failed permanently; finalizer kept');
      return;
    }
    // Status first (the object may vanish as soon as the last finalizer goes), then release the finalizer.
    const written = await this.persist(key, object, { ...pending, labels: {}, annotations: {} }, undefined);
    if (written === 'gone') return void this.dropUnfinished(uid);
    // Status written; what is still owed is the handlers' metadata writes and the release.
    const owed = { ...emptyPending(), labels: pending.labels, annotations: pending.annotations };
    this.unfinished.set(uid, { cause, target, progress, pending: copyPending(owed) });
    // As Kopf does: the object is released only once its daemons returned (or their cancellation timeout passed).
    await deps.daemons?.stopAndWait(key);
    await this.persist(key, written, owed, undefined, { removeFinalizers: [deps.definition.finalizer] });
    this.unfinished.delete(uid);
    deps.timers.stop(key);
    this.released.add(uid);
    this.seen.delete(uid);
    await deps.store.forget(uid);
    logger.info('delete handled; finalizer released');
  }

  /**
   * Writes the pending changes: metadata patch (finalizers, state annotations, handler labels/annotations), then the
   * node-local state, then the status. `state` undefined leaves the stored state untouched.
   */
  private async persist(
    key: string,
    object: KubeObject,
    pending: PendingWrites,
    state: ObjectState | undefined,
    finalizers: Pick<MetadataChanges, 'addFinalizers' | 'removeFinalizers'> = {},
  ): Promise<KubeObject | 'gone'> {
    const { deps } = this;
    const stateWrite = state ? deps.store.prepare(object, state) : undefined;
    const changes: MetadataChanges = {
      ...finalizers,
      labels: pending.labels,
      annotations: { ...pending.annotations, ...(stateWrite?.annotations ?? {}) },
    };
    let current = object;
    const patched = await deps.writer.patchMetadata(current, changes);
    if (patched === 'gone') return 'gone';
    if (patched !== current) {
      current = keepWritten(patched, deps.definition.cacheTransform);
      deps.freshness.recordWrite(key, current, deps.lookup(key));
    }
    if (stateWrite) {
      await stateWrite.commit();
      // Whatever was discarded is replaced now; should garbage appear again, it is reported again.
      this.reportedDiscards.delete(object.metadata.uid);
    }
    const layout = this.statusLayout();
    const needed = statusWriteNeeded(pending.status, recordedOutcomes(layout, current.status));
    const body = needed ? buildStatusPatch(layout, pending.status) : undefined;
    if (body) {
      const written = await deps.writer.patchStatus(current, body);
      if (written === 'gone') return 'gone';
      current = keepWritten(written, deps.definition.cacheTransform);
      deps.freshness.recordWrite(key, current, deps.lookup(key));
    }
    return current;
  }

  private statusLayout(): StatusLayout {
    const { definition, settings } = this.deps;
    return {
      scope: definition.scope,
      handlerStatusField: definition.handlerStatusField,
      instanceStatusField: definition.instanceStatusField,
      instanceId: settings.instanceId,
    };
  }

  /** Writes the patches of handlers that keep no state (timers, `@OnSecondary`): status and metadata only. */
  private readonly writePatches: PatchWriter = async (key, object, patches) => {
    const pending = emptyPending();
    for (const patch of patches) absorbPatch(pending, patch);
    await this.persist(key, object, pending, undefined);
  };
}

function diffBaseOf(state: ObjectState): ObjectState {
  return state.diffBase === undefined ? {} : { diffBase: state.diffBase };
}

function absorbPatch(pending: PendingWrites, patch: HandlerPatch): void {
  pending.status.status = mergePatches(pending.status.status, patch.status);
  pending.status.instanceStatus = mergePatches(pending.status.instanceStatus, patch.instanceStatus);
  Object.assign(pending.labels, patch.metadata.labels);
  Object.assign(pending.annotations, patch.metadata.annotations);
}

/** What a handler sees as old/new/diff: the essence, or for field handlers the field. */
function handlerView(
  handler: HandlerSpec,
  cause: ChangeCause,
  oldEssence: Essence | undefined,
  newEssence: Essence,
): { old: unknown; new: unknown; diff: ReturnType<typeof diffValues> } {
  const diff = cause === 'create' || cause === 'update' ? diffValues(oldEssence, newEssence) : [];
  if (handler.kind !== 'field' || !handler.field) return { old: oldEssence, new: newEssence, diff };
  const field = handler.field;
  return {
    old: getField(oldEssence, field),
    new: getField(newEssence, field),
    diff: diffValues(getField(oldEssence, field), getField(newEssence, field), field).filter((op) =>
      hasPathPrefix(op.path, field),
    ),
  };
}
