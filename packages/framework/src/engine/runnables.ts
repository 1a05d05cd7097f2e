/**
 * Runnables: long-running components that live inside the runtime beside the operators (controller-runtime's
 * `manager.Add`), so that an application gets the runtime's API client, logger, metrics, Event recorder, Nodes view,
 * leader election and probes instead of building a second runtime beside it.
 *
 * Life: started in the order given, after leadership (when leader election is on) and after every `@OnStartup`
 * handler; stopped in reverse order after the operators' running handlers finished and before the `@OnCleanup`
 * handlers, also when leadership is lost. Their readiness and health are part of `/readyz` and `/healthz`.
 */
import type { Logger } from 'pino';
import { describeError } from '../core/errors.js';
import { untilAborted } from '../kube/abort.js';
import type { EventRecorder } from '../kube/events.js';
import type { KubeApi } from '../kube/types.js';
import type { OperatorMetrics } from '../ops/metrics.js';
import type { EventPublisher, HandlerEvents, HandlerSettings, NodeCache } from './context.js';

/** What a {@link Runnable} gets from the runtime. Everything stays valid until the runnable's `stop()` returned. */
export interface RunnableContext {
  /** The runtime's API client. */
  readonly api: KubeApi;
  /** A pino child bound to the runnable (`runnable: <name>`). */
  readonly logger: Logger;
  /** The runtime's metrics; `metrics.registry` takes the runnable's own (served on `/metrics`). */
  readonly metrics: OperatorMetrics;
  /**
   * Events about any object, through the runtime's recorder (deduplicated, rate-limited, flushed at shutdown, never
   * throwing). Targets must carry `apiVersion` and `kind`: a runnable has no resource of its own to default to.
   */
  readonly events: EventPublisher;
  /** The Nodes view, when the runtime runs in node scope (see `nodeWatch` for what it holds); undefined otherwise. */
  readonly nodes: NodeCache | undefined;
  /** The runtime's settings. */
  readonly settings: HandlerSettings;
  /** Aborted when the runnable is being stopped, just before its `stop()` is called. */
  readonly signal: AbortSignal;
}

/**
 * A component the runtime starts and stops (`RuntimeSettings.runnables`).
 *
 * @example
 * ```ts
 * const agent: Runnable = {
 *   name: 'route-agent',
 *   async start(ctx) { await routeAgent.start({ api: ctx.api, logger: ctx.logger, nodes: ctx.nodes }); },
 *   stop: () => routeAgent.stop(),
 *   isReady: () => routeAgent.synced,
 * };
 * runOperators([], { scope: 'node', runnables: [agent], leaderElection: { namespace: 'ops', name: 'routes' } });
 * ```
 */
export interface Runnable {
  /** Names it in logs (`runnable`) and errors; unique among the runtime's runnables. */
  readonly name: string;
  /**
   * Starts the component and resolves once it runs (not when it ends: long-lived work goes on in the background until
   * `stop()`). A rejection makes the runtime fail to start (`ready` rejects). Left pending, it holds up readiness.
   */
  start(context: RunnableContext): Promise<void> | void;
  /** Stops the component; the runtime waits for it (bounded) before it runs the `@OnCleanup` handlers. */
  stop(): Promise<void>;
  /** Readiness, part of `/readyz`. Defaults to ready once started. */
  isReady?(): boolean;
  /** Liveness, part of `/healthz`. Defaults to healthy. */
  isHealthy?(): boolean;
}

/** What the runtime hands every runnable (each gets its own logger and signal on top). */
export interface RunnableDeps {
  api: KubeApi;
  logger: Logger;
  metrics: OperatorMetrics;
  recorder: EventRecorder;
  nodes: NodeCache | undefined;
  settings: HandlerSettings;
}

interface Entry {
  runnable: Runnable;
  controller: AbortController;
  /** `start()` returned: readiness counts from then on. */
  running: boolean;
}

/** The runtime's runnables: started in order, stopped in reverse order. */
export class RunnableGroup {
  private readonly entries: Entry[] = [];

  constructor(private readonly runnables: readonly Runnable[]) {
    const names = new Set<string>();
    for (const runnable of runnables) {
      if (!runnable.name) throw new Error('a runnable needs a name');
      if (names.has(runnable.name)) throw new Error(`two runnables are named '${runnable.name}'`);
      names.add(runnable.name);
    }
  }

  /** Every runnable started and reports ready. */
  ready(): boolean {
    return (
      this.entries.length === this.runnables.length &&
      this.entries.every((entry) => entry.running && (entry.runnable.isReady?.() ?? true))
    );
  }

  /** No started runnable reports unhealthy. */
  healthy(): boolean {
    return this.entries.every((entry) => !entry.running || (entry.runnable.isHealthy?.() ?? true));
  }

  /**
   * Starts every runnable in order; rejects when one fails (those started before it stay started: `stop()` stops
   * them) or when `signal` aborts (a runnable whose `start()` hangs is stopped too).
   */
  async start(deps: RunnableDeps, signal: AbortSignal): Promise<void> {
    const events = recorderPublisher(deps.recorder);
    for (const runnable of this.runnables) {
      signal.throwIfAborted();
      const entry: Entry = { runnable, controller: new AbortController(), running: false };
      this.entries.push(entry);
      const context: RunnableContext = {
        api: deps.api,
        logger: deps.logger.child({ runnable: runnable.name }),
        metrics: deps.metrics,
        events,
        nodes: deps.nodes,
        settings: deps.settings,
        signal: entry.controller.signal,
      };
      try {
        await untilAborted(
          Promise.resolve().then(() => runnable.start(context)),
          signal,
        );
      } catch (error) {
        if (signal.aborted) throw error;
        throw new Error(`runnable '${runnable.name}' failed to start: ${describeError(error)}`, { cause: error });
      }
      entry.running = true;
      deps.logger.info({ runnable: runnable.name }, 'runnable started');
    }
  }

  /** Stops the runnables that were started (or were starting), in reverse order, each within `timeoutMs`. */
  async stop(logger: Logger, timeoutMs: number): Promise<void> {
    for (const entry of this.entries.splice(0).reverse()) {
      const { runnable } = entry;
      entry.controller.abort(new Error('runnable stopping'));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      try {
        const outcome = await Promise.race([Promise.resolve().then(() => runnable.stop()), timeout]);
        if (outcome === 'timeout')
          logger.error({ runnable: runnable.name, timeoutMs }, 'runnable did not stop in time');
        else logger.info({ runnable: runnable.name }, 'runnable stopped');
      } catch (error) {
        logger.warn({ runnable: runnable.name, err: error }, 'runnable failed to stop');
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/** The runtime's recorder for code without a resource of its own: targets are passed on as they are. */
function recorderPublisher(recorder: EventRecorder): EventPublisher {
  const record: EventPublisher['record'] = (target, type, reason, message) =>
    recorder.record(target, type, reason, message);
  return {
    record,
    about: (target): HandlerEvents => ({
      normal: (reason, message) => record(target, 'Normal', reason, message),
      warning: (reason, message) => record(target, 'Warning', reason, message),
    }),
  };
}
