/**
 * `@OnStartup` and `@OnCleanup`: operator-wide activities, not tied to an object.
 *
 * Startup handlers run in declaration order before the operator's watch starts; a failure is retried with the
 * handler's backoff (unlimited attempts by default) and blocks readiness meanwhile; a `PermanentError` or exhausted
 * attempts make the runtime fail to start. Cleanup handlers run once at shutdown; their errors are logged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffDelay, resolveBackoff } from '../core/backoff.js';
import { classifyFailure, describeError, TemporaryError } from '../core/errors.js';
import type { HandlerSpec } from '../core/handlers.js';
import type { KubeApi } from '../kube/types.js';
import type { ActivityContext, EventPublisher, NodeCache } from './context.js';
import { invokeHandler, type OperatorDefinition } from './definition.js';
import { runAttempt } from './executor.js';
import { handlerApi } from './handler-api.js';
import type { ResolvedSettings } from './settings.js';

/** What activities need. */
export interface ActivityDeps {
  definition: OperatorDefinition;
  settings: ResolvedSettings;
  api: KubeApi;
  /** The operator's logger (bound to the operator only); each activity logs through a child of it. */
  logger: Logger;
  /** The runtime's recorder, as activities see it. */
  events: EventPublisher;
  /** The runtime's Nodes view (node scope). */
  nodes: NodeCache | undefined;
  /** Aborted when the runtime stops: ends startup retries and bounds cleanup. */
  signal: AbortSignal;
}

/** Runs the startup handlers; resolves when all succeeded, rejects when one failed for good or on stop. */
export async function runStartupHandlers(deps: ActivityDeps): Promise<void> {
  for (const handler of deps.definition.handlers.filter((candidate) => candidate.kind === 'startup')) {
    const backoff = resolveBackoff(handler.backoff, deps.settings.backoff);
    const maxAttempts = handler.retries ?? Infinity;
    for (let retry = 0; ; retry++) {
      deps.signal.throwIfAborted();
      const outcome = await runActivity(deps, handler, retry);
      if (outcome.ok) break;
      const kind = classifyFailure(outcome.error);
      const message = describeError(outcome.error);
      if (kind === 'permanent' || retry + 1 >= maxAttempts) {
        throw new Error(`startup handler '${handler.id}' of ${deps.definition.name} failed: ${message}`, {
          cause: outcome.error,
        });
      }
      const delayMs =
        outcome.error instanceof TemporaryError && outcome.error.delayMs !== undefined
          ? outcome.error.delayMs
          : backoffDelay(backoff, retry + 1);
      deps.logger.warn({ handler: handler.id, err: outcome.error, retry, delayMs }, 'startup handler failed; retrying');
      await sleep(delayMs, undefined, { signal: deps.signal });
    }
  }
}

/** Runs the cleanup handlers once each; never throws. */
export async function runCleanupHandlers(deps: ActivityDeps): Promise<void> {
  for (const handler of deps.definition.handlers.filter((candidate) => candidate.kind === 'cleanup')) {
    const outcome = await runActivity(deps, handler, 0);
    if (!outcome.ok) deps.logger.warn({ handler: handler.id, err: outcome.error }, 'cleanup handler failed');
  }
}

function runActivity(deps: ActivityDeps, handler: HandlerSpec, retry: number): ReturnType<typeof runAttempt> {
  const logger = deps.logger.child({ handler: handler.id, activity: handler.kind });
  return runAttempt(
    (signal) => {
      const context: ActivityContext = {
        logger,
        operatorLogger: deps.logger,
        events: deps.events,
        nodes: deps.nodes,
        settings: deps.settings,
        api: handlerApi(deps.api),
        instanceId: deps.settings.instanceId,
        retry,
        signal,
      };
      return invokeHandler(deps.definition, handler, context);
    },
    { handlerId: handler.id, timeoutMs: handler.timeoutMs, shutdownSignal: deps.signal },
  );
}
