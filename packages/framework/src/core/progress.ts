/**
 * The per-object handling state and its transitions (pure).
 *
 * An object's state, per scope owner (the object in cluster scope, one instance in node scope), is:
 * - the diff-base: the essence last handled completely; `old` of the next update, absent before the first create;
 * - the progress of the cause being handled: per handler, succeeded / failed for good / retrying (with the count
 *   of failed attempts and the time of the next one).
 *
 * Progress is written after every handler that finishes or fails, so a restart resumes where it stopped: a handler
 * that succeeded for this cause is never run again, and retry counts and next-attempt times survive. Progress targets
 * one essence (by digest): when the object changes again before the cause completed, the old progress is discarded
 * and the new change starts afresh against the same diff-base (handlers see the latest state, as Kopf does).
 */
import type { BackoffPolicy } from './backoff.js';
import { backoffDelay } from './backoff.js';
import type { FailureKind } from './errors.js';
import type { Essence } from './essence.js';

/** Causes that run handlers and keep progress. */
export type ChangeCause = 'create' | 'update' | 'delete' | 'resume';

/** Progress of one handler within one cause. */
export interface HandlerProgress {
  /** `success` and `failure` are final for the cause; `retrying` waits for `delayedUntil`. */
  state: 'success' | 'failure' | 'retrying';
  /** Failed attempts so far (the next attempt's `ctx.retry`). */
  retries: number;
  /** When the next attempt is due (ISO 8601), for `retrying`. */
  delayedUntil?: string;
  /** Last failure message, for `retrying` and `failure`. */
  message?: string;
}

/** Progress of one cause. */
export interface CauseProgress {
  cause: ChangeCause;
  /** Digest of the essence this cause handles (`''` for delete, which targets the object, not a version of it). */
  target: string;
  /** When handling of this cause began (ISO 8601). */
  startedAt: string;
  handlers: Record<string, HandlerProgress>;
}

/** Everything the framework persists about one object (for one instance in node scope). */
export interface ObjectState {
  diffBase?: Essence;
  progress?: CauseProgress;
}

/** Returns the progress to continue: the stored one when it is for the same cause and target, else a fresh one. */
export function progressFor(
  state: ObjectState,
  cause: ChangeCause,
  target: string,
  nowMs: number,
): { progress: CauseProgress; resumed: boolean } {
  const stored = state.progress;
  if (stored && stored.cause === cause && stored.target === target) return { progress: stored, resumed: true };
  return { progress: { cause, target, startedAt: new Date(nowMs).toISOString(), handlers: {} }, resumed: false };
}

/** What to do next for a cause whose handlers run in declaration order. */
export type NextStep =
  | { kind: 'run'; handlerId: string; retry: number }
  | { kind: 'wait'; handlerId: string; untilMs: number }
  | { kind: 'done'; succeeded: string[]; failed: string[] };

/**
 * Picks the next step: the first handler (in `handlerIds` order) that is not final runs, or waits for its retry
 * time. Later handlers wait for earlier ones, so authors can split a change into ordered steps. A permanent failure
 * does not stop the later handlers (they are independent concerns, as in Kopf); the cause then ends as failed.
 */
export function nextStep(progress: CauseProgress, handlerIds: readonly string[], nowMs: number): NextStep {
  const succeeded: string[] = [];
  const failed: string[] = [];
  for (const handlerId of handlerIds) {
    const entry = progress.handlers[handlerId];
    if (!entry) return { kind: 'run', handlerId, retry: 0 };
    if (entry.state === 'success') {
      succeeded.push(handlerId);
      continue;
    }
    if (entry.state === 'failure') {
      failed.push(handlerId);
      continue;
    }
    const dueMs = entry.delayedUntil ? Date.parse(entry.delayedUntil) : Number.NaN;
    if (Number.isFinite(dueMs) && dueMs > nowMs) return { kind: 'wait', handlerId, untilMs: dueMs };
    return { kind: 'run', handlerId, retry: entry.retries };
  }
  return { kind: 'done', succeeded, failed };
}

/** The result of one attempt, as the executor saw it. */
export type AttemptResult =
  { kind: 'success' } | { kind: 'failure'; failure: FailureKind; message: string; requestedDelayMs?: number };

/** Retry limits of a handler. */
export interface RetryLimits {
  /** Maximum attempts (the first one included); `Infinity` retries forever. */
  maxAttempts: number;
  backoff: BackoffPolicy;
}

/** The decision after one attempt. */
export type AttemptDecision =
  | { kind: 'success' }
  | { kind: 'retry'; delayMs: number; retries: number; message: string }
  | { kind: 'failed'; retries: number; message: string };

/**
 * Records one attempt's result and decides what follows: success, a retry after a delay (the thrower's
 * `TemporaryError.delayMs` if any, else backoff), or a permanent failure (`PermanentError`, or attempts exhausted).
 */
export function recordAttempt(
  progress: CauseProgress,
  handlerId: string,
  result: AttemptResult,
  limits: RetryLimits,
  nowMs: number,
  random: () => number = Math.random,
): { progress: CauseProgress; decision: AttemptDecision } {
  const previous = progress.handlers[handlerId];
  if (result.kind === 'success') {
    const entry: HandlerProgress = { state: 'success', retries: previous?.retries ?? 0 };
    return { progress: withHandler(progress, handlerId, entry), decision: { kind: 'success' } };
  }
  const retries = (previous?.retries ?? 0) + 1;
  const message = result.message;
  if (result.failure === 'permanent' || retries >= limits.maxAttempts) {
    const entry: HandlerProgress = { state: 'failure', retries, message };
    return { progress: withHandler(progress, handlerId, entry), decision: { kind: 'failed', retries, message } };
  }
  const delayMs = Math.max(0, result.requestedDelayMs ?? backoffDelay(limits.backoff, retries, random));
  const entry: HandlerProgress = {
    state: 'retrying',
    retries,
    delayedUntil: new Date(nowMs + delayMs).toISOString(),
    message,
  };
  return {
    progress: withHandler(progress, handlerId, entry),
    decision: { kind: 'retry', delayMs, retries, message },
  };
}

/**
 * The decision after one attempt of a handler whose failed attempts so far (`retries`) are counted in memory rather
 * than in a progress record (timers, `@OnSecondary` handlers, daemons): the same rule as {@link recordAttempt}.
 */
export function decideAttempt(
  retries: number,
  result: AttemptResult,
  limits: RetryLimits,
  nowMs: number,
  random: () => number = Math.random,
): AttemptDecision {
  // A one-handler progress record carries the count into the shared rule.
  const progress: CauseProgress = {
    cause: 'update',
    target: '',
    startedAt: '',
    handlers: retries > 0 ? { handler: { state: 'retrying', retries } } : {},
  };
  return recordAttempt(progress, 'handler', result, limits, nowMs, random).decision;
}

function withHandler(progress: CauseProgress, handlerId: string, entry: HandlerProgress): CauseProgress {
  return { ...progress, handlers: { ...progress.handlers, [handlerId]: entry } };
}

/**
 * Why stored progress cannot belong to the object as it is now, or undefined when it can: a delete's progress on an
 * object that is not being deleted (a deletion cannot be undone, so that record is garbage, and honouring it could
 * keep a later delete waiting for a retry time that was never chosen by this framework).
 */
export function implausibleProgress(progress: CauseProgress | undefined, deleting: boolean): string | undefined {
  if (progress?.cause === 'delete' && !deleting) return 'progress of a delete, but the object is not being deleted';
  return undefined;
}
