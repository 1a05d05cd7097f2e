/**
 * One attempt of one handler: its context, its run, and how the result is reported (log, metrics, events).
 */
import type { Logger } from 'pino';
import type { DiffOp } from '../core/diff.js';
import { classifyFailure, describeError, HandlerTimeoutError, PermanentError, TemporaryError } from '../core/errors.js';
import type { HandlerSpec } from '../core/handlers.js';
import type { AttemptDecision, AttemptResult } from '../core/progress.js';
import type { HandlerOutcome } from '../core/status.js';
import { truncateMessage } from '../core/status.js';
import type { EventRecorder } from '../kube/events.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import type { OperatorMetrics } from '../ops/metrics.js';
import {
  emptyHandlerPatch,
  type EventPublisher,
  type HandlerCause,
  type HandlerContext,
  type HandlerEvents,
  type HandlerPatch,
  type NodeCache,
  type ObjectCache,
  type OperatorViews,
} from './context.js';
import { invokeHandler, type OperatorDefinition } from './definition.js';
import { runAttempt, type AttemptOutcome } from './executor.js';
import { handlerApi } from './handler-api.js';
import type { ResolvedSettings } from './settings.js';

/** What a handler run needs from its surroundings. */
export interface HandlerRunDeps {
  definition: OperatorDefinition;
  settings: ResolvedSettings;
  api: KubeApi;
  /** The operator's logger (bound to the operator only). */
  logger: Logger;
  metrics: OperatorMetrics;
  recorder: EventRecorder;
  cache: ObjectCache;
  /** The watch caches of the operator's secondary resources and its indexes. Defaults to none. */
  views?: Omit<OperatorViews, 'cache'>;
  /** The Nodes view (node scope). */
  nodes: NodeCache | undefined;
  shutdownSignal: AbortSignal;
}

/** What running a handler needs of its descriptor (change, timer and `@OnSecondary` handlers alike). */
export type RunnableHandler = Pick<HandlerSpec, 'id' | 'method' | 'timeoutMs'>;

/** No secondary resources, no indexes. */
export const NO_VIEWS: Omit<OperatorViews, 'cache'> = Object.freeze({
  caches: Object.freeze({}),
  indexes: Object.freeze({}),
  index: (id: string): never => {
    throw new Error(`no index '${id}' (the operator declares none)`);
  },
});

/** The inputs of one attempt. */
export interface HandlerRunInput {
  handler: RunnableHandler;
  object: KubeObject;
  cause: HandlerCause;
  retry: number;
  old: unknown;
  new: unknown;
  diff: DiffOp[];
  /**
   * The cycle's logger, bound to the object (`object`, `uid`); `ctx.logger` and the handler's outcome lines derive
   * from it. Defaults to the operator's logger.
   */
  logger?: Logger;
  /** Further context fields for this kind of handler (`secondary` for `@OnSecondary`). */
  extra?: Record<string, unknown>;
}

/** The attempt's outcome and whatever the handler asked to patch. */
export interface HandlerRunResult {
  attempt: AttemptOutcome;
  patch: HandlerPatch;
}

/** Runs one attempt; never throws (handler errors are in `attempt`). */
export async function runHandler(deps: HandlerRunDeps, input: HandlerRunInput): Promise<HandlerRunResult> {
  const { definition, settings } = deps;
  const { object, handler } = input;
  const patch = emptyHandlerPatch();
  const logger = (input.logger ?? deps.logger).child({ handler: handler.id, cause: input.cause, retry: input.retry });
  const events = eventPublisher(deps.recorder, definition).about(object);
  const views = deps.views ?? NO_VIEWS;
  const attempt = await runAttempt(
    (signal) => {
      const context: HandlerContext = {
        ...input.extra,
        body: object,
        name: object.metadata.name,
        namespace: object.metadata.namespace,
        uid: object.metadata.uid,
        spec: object.spec,
        status: object.status,
        old: input.old as HandlerContext['old'],
        new: input.new as HandlerContext['new'],
        diff: input.diff,
        cause: input.cause,
        handlerId: handler.id,
        retry: input.retry,
        instanceId: settings.instanceId,
        logger,
        operatorLogger: deps.logger,
        patch,
        events,
        cache: deps.cache,
        caches: views.caches,
        indexes: views.indexes,
        index: views.index,
        nodes: deps.nodes,
        signal,
        settings,
        api: handlerApi(deps.api),
      };
      return invokeHandler(definition, handler, context);
    },
    { handlerId: handler.id, timeoutMs: handler.timeoutMs, shutdownSignal: deps.shutdownSignal },
  );
  const outcomeLabel = attempt.ok ? 'success' : classifyFailure(attempt.error);
  const labels = { operator: definition.name, handler: handler.id, cause: input.cause };
  deps.metrics.handlerRuns.inc({ ...labels, outcome: outcomeLabel });
  deps.metrics.handlerDuration.observe(labels, attempt.durationMs / 1000);
  const durationMs = Math.round(attempt.durationMs);
  if (attempt.ok) logger.info({ durationMs }, 'handler succeeded');
  else if (isExpected(attempt.error))
    logger.warn({ error: describeError(attempt.error), durationMs }, 'handler failed');
  else logger.warn({ err: attempt.error, durationMs }, 'handler failed');
  return { attempt, patch };
}

/** Errors thrown on purpose to steer retries: their message says it all, a stack trace would be noise. */
function isExpected(error: unknown): boolean {
  return error instanceof TemporaryError || error instanceof PermanentError || error instanceof HandlerTimeoutError;
}

/** Converts an attempt into the pure state machine's input. */
export function attemptResult(attempt: AttemptOutcome): AttemptResult {
  if (attempt.ok) return { kind: 'success' };
  const requestedDelayMs = attempt.error instanceof TemporaryError ? attempt.error.delayMs : undefined;
  return {
    kind: 'failure',
    failure: classifyFailure(attempt.error),
    message: truncateMessage(describeError(attempt.error)),
    ...(requestedDelayMs === undefined ? {} : { requestedDelayMs }),
  };
}

/** The status entry for a decision. */
export function outcomeEntry(
  decision: AttemptDecision,
  cause: HandlerOutcome['cause'],
  retries: number,
  nowMs: number,
): HandlerOutcome {
  const time = new Date(nowMs).toISOString();
  switch (decision.kind) {
    case 'success':
      return { outcome: 'success', cause, retries, time };
    case 'retry':
      return {
        outcome: 'retrying',
        cause,
        retries: decision.retries,
        message: decision.message,
        nextAttemptAt: new Date(nowMs + decision.delayMs).toISOString(),
        time,
      };
    case 'failed':
      return { outcome: 'failed', cause, retries: decision.retries, message: decision.message, time };
  }
}

/**
 * Reports a decision as metrics and an Event (successes only for create, update and delete, and only when the
 * operator posts success Events).
 */
export function reportDecision(
  deps: HandlerRunDeps,
  object: KubeObject,
  handler: Pick<HandlerSpec, 'id'>,
  cause: HandlerCause,
  decision: AttemptDecision,
): void {
  const { definition } = deps;
  const who = definition.scope === 'node' ? `${deps.settings.instanceId}: ` : '';
  const target = eventTarget(definition, object);
  const labels = { operator: definition.name, handler: handler.id };
  if (decision.kind === 'success') {
    if (definition.successEvents && (cause === 'create' || cause === 'update' || cause === 'delete')) {
      deps.recorder.record(target, 'Normal', 'HandlerSucceeded', `${who}Handler '${handler.id}' succeeded (${cause})`);
    }
  } else if (decision.kind === 'retry') {
    deps.metrics.handlerRetries.inc(labels);
    // The message carries no retry count or time, so repeats deduplicate into one Event with a growing count.
    deps.recorder.record(
      target,
      'Warning',
      'HandlerRetrying',
      `${who}Handler '${handler.id}' failed (${cause}), will retry: ${decision.message}`,
    );
  } else {
    deps.metrics.handlerFailures.inc(labels);
    deps.recorder.record(
      target,
      'Warning',
      'HandlerFailed',
      `${who}Handler '${handler.id}' failed permanently (${cause}) after ${decision.retries} attempt(s): ${decision.message}`,
    );
  }
}

/** Watch events carry apiVersion/kind; objects from patches do too, but set them anyway for Events. */
export function eventTarget(definition: OperatorDefinition, object: KubeObject): KubeObject {
  if (object.apiVersion && object.kind) return object;
  return { ...object, apiVersion: definition.apiVersion, kind: definition.kind };
}

/** The runtime's recorder as handlers and activities see it; targets default to the operator's resource type. */
export function eventPublisher(recorder: EventRecorder, definition: OperatorDefinition): EventPublisher {
  const record: EventPublisher['record'] = (target, type, reason, message) =>
    recorder.record(eventTarget(definition, target), type, reason, message);
  return {
    record,
    about: (target): HandlerEvents => ({
      normal: (reason, message) => record(target, 'Normal', reason, message),
      warning: (reason, message) => record(target, 'Warning', reason, message),
    }),
  };
}
