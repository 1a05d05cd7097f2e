/**
 * `runOperators`: the whole operator process, minus signal handling (the CLI's job).
 *
 * Start: resolve credentials (in a worker, see kube/credentials), create the API client, serve probes; with leader
 * election, wait until this process holds the Lease; start the Nodes watch (node scope: `ctx.nodes` and the
 * dead-instance janitor share it), run every class's `@OnStartup` handlers, start the runnables, then start the
 * watches of the operators' resources. Ready once every startup handler succeeded, every runnable is ready and every
 * object of the initial lists went through one handling cycle.
 *
 * Stop: stop intake (watches end, queued work is dropped, timers stop), let running cycles finish within
 * `gracePeriodMs`, then abort `ctx.signal` of whatever still runs and give it a short moment; stop the runnables;
 * run `@OnCleanup`; release the Lease; stop the Nodes watch; flush Events; close probes and connections.
 *
 * Losing leadership stops the runtime the same way, except that running handlers are aborted at once (another
 * replica may take over `leaseDuration - renewDeadline` later) and the Lease is not released; `done` then resolves
 * with `'leadership-lost'`, for the process to exit non-zero and come back as a standby.
 */
import { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { OperatorClass } from '../decorators/metadata.js';
import { createKubeApi, type KubeClient } from '../kube/client.js';
import { resolveCredentials } from '../kube/credentials.js';
import { EventRecorder } from '../kube/events.js';
import { LeaderElector, type LeadershipTransition } from '../kube/leader-election.js';
import type { KubeApi } from '../kube/types.js';
import type { WatcherOptions } from '../kube/watcher.js';
import { createLogger } from '../ops/logging.js';
import { createApiClientMetrics, createMetrics, observeApiResponse, type OperatorMetrics } from '../ops/metrics.js';
import { startProbeServer, type ProbeServer } from '../ops/probes.js';
import { runCleanupHandlers, runStartupHandlers, type ActivityDeps } from './activities.js';
import { OperatorController } from './controller.js';
import { defineOperatorFromClass, type OperatorDefinition } from './definition.js';
import { eventPublisher } from './handler-run.js';
import { InstanceJanitor } from './instance-janitor.js';
import { NodeWatch } from './node-watch.js';
import { RunnableGroup } from './runnables.js';
import { resolveSettings, type ResolvedSettings, type RuntimeSettings } from './settings.js';
import { getAdmissionHandlers } from '../decorators/admission.js';
import type { WebhookHandle, WebhookRuntimeSettings } from '../webhooks/index.js';

/** After the grace period, how long aborted handlers get to return before the stop goes on without them. */
const ABORT_GRACE_MS = 5_000;
/** Upper bound of `@OnCleanup` handlers, of each runnable's `stop()` and of the final Event flush. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Why a runtime stopped, as `done` resolves: `'stop-requested'` after `stop()` (a signal, a failed start), or
 * `'leadership-lost'` when leader election is on and this process lost the Lease (it should exit non-zero, see
 * `runUntilSignalled`).
 */
export type RuntimeStopReason = 'stop-requested' | 'leadership-lost';

/** The watcher options the runtime sets per operator: the watch tuning of the settings and the cache transform. */
type WatcherTuning = Pick<WatcherOptions, 'timeoutSeconds' | 'inactivityTimeoutMs' | 'transform'>;

/** A running set of operators. */
export interface OperatorRuntime {
  /** Resolves when ready (startup done, initial lists handled); rejects if the runtime cannot start. */
  readonly ready: Promise<void>;
  /** Resolves when the runtime has stopped, with why it stopped. */
  readonly done: Promise<RuntimeStopReason>;
  /** Stops gracefully (idempotent). */
  stop(): Promise<void>;
  /** Readiness, as `/readyz` answers it: false while a standby waits for the Lease. */
  isReady(): boolean;
  /** Liveness, as `/healthz` answers it: true while a standby waits for the Lease. */
  isHealthy(): boolean;
  readonly metrics: OperatorMetrics;
  readonly settings: ResolvedSettings;
  readonly logger: Logger;
  /** The probe server's port, once listening (undefined when probes are off). */
  readonly probePort: number | undefined;
  /** The API client (undefined until credentials are resolved). */
  readonly api: KubeApi | undefined;
  /** HTTP requests sent so far by the API client. */
  readonly requestCount: number;
  /** The admission webhook server, once listening (undefined without `settings.webhooks`). */
  readonly webhooks?: WebhookHandle | undefined;
}

/**
 * Runs the given operator classes until `stop()`.
 *
 * Throws synchronously for definition errors (undecorated class, duplicate handler ids, bad settings); everything
 * that needs the cluster happens asynchronously and is reported through `ready`.
 *
 * @example
 * ```ts
 * const runtime = runOperators([StaticRouteOperator], { scope: 'node', probes: { port: 8080 } });
 * await runtime.ready;
 * process.once('SIGTERM', () => void runtime.stop().then(() => process.exit(0)));
 * ```
 */
export function runOperators(
  classes: readonly OperatorClass[],
  settings: RuntimeSettings & WebhookRuntimeSettings = {},
): OperatorRuntime {
  if (classes.length === 0 && !settings.runnables?.length) {
    throw new Error('runOperators: no operator classes (nor runnables) given');
  }
  const resolved = resolveSettings(settings);
  const logger = settings.logger ?? createLogger({ level: settings.logLevel ?? 'info', name: resolved.component });
  const definitions = classes.map((cls) => defineOperatorFromClass(cls, resolved));
  const metrics = createMetrics(settings.metricsRegistry ?? new Registry());
  return new Runtime(definitions, settings, resolved, logger, metrics);
}

class Runtime implements OperatorRuntime {
  readonly ready: Promise<void>;
  readonly done: Promise<RuntimeStopReason>;
  private resolveDone!: (reason: RuntimeStopReason) => void;
  private stopReason: RuntimeStopReason = 'stop-requested';
  private elector: LeaderElector | undefined;
  private readonly runnables: RunnableGroup;
  private client: KubeApi | undefined;
  private ownClient: KubeClient | undefined;
  private probes: ProbeServer | undefined;
  private recorder: EventRecorder | undefined;
  private controllers: OperatorController[] = [];
  private nodeWatch: NodeWatch | undefined;
  private janitor: InstanceJanitor | undefined;
  private webhookServer: WebhookHandle | undefined;
  private startupDone = false;
  private stopping: Promise<void> | undefined;
  private readonly stopRequested = new AbortController();
  private readonly shutdown = new AbortController();

  constructor(
    private readonly definitions: OperatorDefinition[],
    private readonly input: RuntimeSettings & WebhookRuntimeSettings,
    readonly settings: ResolvedSettings,
    readonly logger: Logger,
    readonly metrics: OperatorMetrics,
  ) {
    this.runnables = new RunnableGroup(input.runnables ?? []);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.ready = this.start();
    // Unobserved rejections are reported by whoever awaits `ready`; do not crash the process here.
    this.ready.catch(() => undefined);
  }

  get probePort(): number | undefined {
    return this.probes?.port;
  }

  get api(): KubeApi | undefined {
    return this.client;
  }

  get requestCount(): number {
    return this.client?.requestCount ?? 0;
  }

  get webhooks(): WebhookHandle | undefined {
    return this.webhookServer;
  }

  isReady(): boolean {
    return this.startupDone && !this.stopping && this.operatorsReady();
  }

  isHealthy(): boolean {
    // Before the watches start (waiting for the Lease, startup handlers retrying), the process is alive: do not let
    // the kubelet kill it.
    if (!this.startupDone) return true;
    return (
      this.controllers.every((controller) => controller.healthy()) &&
      (this.nodeWatch?.healthy() ?? true) &&
      this.runnables.healthy()
    );
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdownGracefully().finally(() => this.resolveDone(this.stopReason));
    return this.stopping;
  }

  private operatorsReady(): boolean {
    return this.controllers.every((controller) => controller.ready) && this.runnables.ready();
  }

  private async start(): Promise<void> {
    const { input, settings, logger, metrics } = this;
    if (input.probes) {
      this.probes = await startProbeServer({
        host: input.probes.host,
        port: input.probes.port,
        health: () => this.isHealthy(),
        ready: () => this.isReady(),
        registry: metrics.registry,
      });
      logger.info({ port: this.probes.port }, 'probe server listening');
    }
    const api = input.api ?? this.createClient();
    this.client = api;
    const recorder = new EventRecorder(api, {
      component: settings.component,
      instance: settings.instanceId,
      logger,
      onOutcome: (outcome) => metrics.events.inc({ outcome }),
    });
    this.recorder = recorder;
    // Before leader election: every replica answers admission requests, leader or not.
    await this.startWebhooks(api);
    // A standby holds nothing else: no Nodes watch, no caches, until it leads.
    if (settings.leaderElection) await this.lead(api);
    const watch = input.watch;
    if (settings.scopeOverride === 'node' || this.definitions.some((definition) => definition.scope === 'node')) {
      // Before the startup handlers, so that they can wait for the first list of Nodes and subscribe to changes.
      this.nodeWatch = new NodeWatch({
        api,
        instanceId: settings.instanceId,
        logger: logger.child({ component: 'nodes' }),
        mode: settings.nodeWatch,
        ...(watch ? { watch } : {}),
        onRestart: (reason) => metrics.watchRestarts.inc({ resource: 'nodes', reason }),
      });
      this.nodeWatch.start();
    }
    const nodes = this.nodeWatch?.view;
    this.controllers = this.definitions.map((definition) => {
      // The controller spreads `watch` into its watchers' options: the operator's cache transform travels with the
      // watch tuning (without one, the watcher's default strips managedFields).
      const watchOptions: WatcherTuning | undefined = definition.cacheTransform
        ? { ...watch, transform: definition.cacheTransform }
        : watch;
      return new OperatorController({
        definition,
        settings,
        api,
        logger,
        metrics,
        recorder,
        ...(nodes ? { nodes } : {}),
        shutdownSignal: this.shutdown.signal,
        ...(watchOptions ? { watch: watchOptions } : {}),
      });
    });
    for (const controller of this.controllers) {
      await runStartupHandlers(this.activityDeps(controller, this.stopRequested.signal));
    }
    await this.runnables.start({ api, logger, metrics, recorder, nodes, settings }, this.stopRequested.signal);
    if (this.stopRequested.signal.aborted) throw this.stoppedEarly();
    this.startupDone = true;
    for (const controller of this.controllers) controller.start();
    const nodeScoped = this.controllers.filter((controller) => controller.definition.scope === 'node');
    // Off with `nodeWatch: 'own'` (settings), since the janitor needs every Node.
    if (this.nodeWatch && nodeScoped.length > 0 && settings.cleanupDeadInstances) {
      this.janitor = new InstanceJanitor({
        api,
        controllers: nodeScoped,
        nodes: this.nodeWatch,
        instanceId: settings.instanceId,
        logger: logger.child({ component: 'instance-janitor' }),
      });
      this.janitor.start();
    }
    logger.info(
      { operators: this.definitions.map((d) => `${d.name} (${d.scope})`), instanceId: settings.instanceId },
      'operators started',
    );
    await this.waitUntil(() => this.operatorsReady());
    // The Nodes watch may have swept before the operators' caches were filled; sweep once more now.
    this.janitor?.requestSweep();
    logger.info('ready');
  }

  /** Serves the classes' `@Validate`/`@Mutate` handlers when `settings.webhooks` asks for it. */
  private async startWebhooks(api: KubeApi): Promise<void> {
    const operators = this.definitions
      .map((definition) => ({
        name: definition.name,
        resource: { ...definition.ref, namespaced: definition.ref.namespaced ?? false },
        handlers: getAdmissionHandlers(definition.instance.constructor as OperatorClass),
        instance: definition.instance,
      }))
      .filter((operator) => operator.handlers.length > 0);
    if (!this.input.webhooks) {
      if (operators.length > 0)
        this.logger.warn('admission handlers are declared but not served: settings.webhooks is not set');
      return;
    }
    // Loaded only when asked for: the certificate and JSON patch libraries cost memory in every process that loads them.
    const { startWebhooks } = await import('../webhooks/webhooks.js');
    this.webhookServer = await startWebhooks({
      settings: this.input.webhooks,
      operators,
      api,
      logger: this.logger,
      registry: this.metrics.registry,
      fieldManager: this.settings.component,
    });
  }

  /**
   * Campaigns for the Lease until this process leads (rejects when stopped first), and arranges for the runtime to
   * stop when leadership is lost.
   */
  private async lead(api: KubeApi): Promise<void> {
    const { logger, metrics } = this;
    const election = this.settings.leaderElection as NonNullable<ResolvedSettings['leaderElection']>;
    const lease = `${election.namespace}/${election.name}`;
    metrics.leader.set({ lease }, 0);
    const elector = new LeaderElector(api, {
      ...election,
      logger: logger.child({ component: 'leader-election' }),
      onTransition: (transition: LeadershipTransition) => {
        if (transition.type === 'leading') metrics.leader.set({ lease }, 1);
        if (transition.type === 'lost') metrics.leader.set({ lease }, 0);
      },
    });
    this.elector = elector;
    logger.info({ lease, identity: elector.identity }, 'leader election: waiting for the lease');
    await elector.acquire(this.stopRequested.signal);
    void elector.lost.then((reason) => this.loseLeadership(reason));
  }

  private loseLeadership(reason: string): void {
    // A stop already under way keeps its reason; it only stops waiting for running handlers.
    if (!this.stopping) this.stopReason = 'leadership-lost';
    this.logger.error({ reason }, 'leadership lost: stopping now');
    this.shutdown.abort(new Error('leadership lost'));
    void this.stop();
  }

  private stoppedEarly(): Error {
    return new Error(
      this.stopReason === 'leadership-lost'
        ? 'leadership lost before start completed'
        : 'stopped before start completed',
    );
  }

  /** What `@OnStartup`/`@OnCleanup` handlers of one class get from the runtime. */
  private activityDeps(controller: OperatorController, signal: AbortSignal): ActivityDeps {
    const { definition } = controller;
    return {
      definition,
      settings: this.settings,
      api: this.client as KubeApi,
      logger: this.logger.child({ operator: definition.name }),
      events: eventPublisher(this.recorder as EventRecorder, definition),
      nodes: this.nodeWatch?.view,
      signal,
    };
  }

  private createClient(): KubeApi {
    const { input, logger, metrics } = this;
    const credentials =
      input.credentials ??
      (() =>
        resolveCredentials({
          ...(input.kubeconfigPath ? { kubeconfigPath: input.kubeconfigPath } : {}),
          ...(input.context ? { context: input.context } : {}),
        }));
    this.ownClient = createKubeApi({
      credentials,
      logger,
      userAgent: this.settings.component,
      fieldManager: this.settings.component,
      onRequest: (verb, ref) => {
        metrics.apiRequests.inc({ verb });
        input.onApiRequest?.(verb, ref);
      },
      // Latency and status codes per verb: what an operator's alerts watch (opkit_api_request_duration_seconds,
      // opkit_api_responses_total).
      onResponse: observeApiResponse(createApiClientMetrics(metrics.registry)),
    });
    return this.ownClient;
  }

  private waitUntil(condition: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.stopRequested.signal.aborted) return reject(this.stoppedEarly());
        if (condition()) return resolve();
        setTimeout(check, 50).unref();
      };
      check();
    });
  }

  private async shutdownGracefully(): Promise<void> {
    const { logger, settings } = this;
    logger.info({ gracePeriodMs: settings.gracePeriodMs }, 'stopping: intake closed, waiting for running handlers');
    this.stopRequested.abort(new Error('runtime stopping'));
    await this.ready.catch(() => undefined);
    await Promise.all([...this.controllers.map((c) => c.stopIntake()), this.janitor?.stop()]);
    const drained = Promise.all(this.controllers.map((controller) => controller.drain()));
    // After a lost Lease, `shutdown` is aborted already: handlers get no grace period.
    if (!(await within(drained, this.shutdown.signal.aborted ? 0 : settings.gracePeriodMs))) {
      if (!this.shutdown.signal.aborted) logger.warn('grace period over: aborting running handlers');
      this.shutdown.abort(new Error('shutdown grace period over'));
      if (!(await within(drained, ABORT_GRACE_MS))) logger.error('handlers did not return after abort; leaving them');
    }
    await this.runnables.stop(logger, CLEANUP_TIMEOUT_MS);
    const cleanupSignal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    // Cleanup undoes what startup did; if startup never completed there is nothing to undo. It runs after a lost
    // Lease too: it stops what `@OnStartup` started.
    for (const controller of this.startupDone ? this.controllers : []) {
      await runCleanupHandlers(this.activityDeps(controller, cleanupSignal));
    }
    // Only now that nothing runs any more may a standby take over (a lost Lease is not ours to release).
    await this.elector?.stop({ release: this.stopReason !== 'leadership-lost' });
    // Released or not, a stopped runtime leads nothing.
    if (this.settings.leaderElection) {
      const { namespace, name } = this.settings.leaderElection;
      this.metrics.leader.set({ lease: `${namespace}/${name}` }, 0);
    }
    // After cleanup: long-lived components may read Nodes and unsubscribe until they are stopped.
    await this.nodeWatch?.stop();
    await within(this.recorder?.flush() ?? Promise.resolve(), CLEANUP_TIMEOUT_MS);
    // Last: admission requests are answered while the operators drain.
    await this.webhookServer?.close();
    await this.probes?.close();
    this.ownClient?.close();
    logger.info('stopped');
  }
}

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
