/**
 * One operator class at run time: the pipeline watcher -> cache (+ indexes) -> queue -> processor, plus `@OnEvent`
 * handlers, the secondary watches (their caches and the changes they map to primary objects) and the daemons.
 *
 * ```
 *   primary watch ---event--> indexes, timers' change clock --> queue(key) --> processor: daemons, change handlers,
 *   secondary watches --event--> indexes --map/owns--> pending change + queue(primary key)   timers, @OnSecondary
 * ```
 *
 * Handling starts once every watch (primary and secondary) listed once, so handlers always see complete caches and
 * indexes, as controller-runtime waits for its caches to sync.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import { computeEssence, digest } from '../core/essence.js';
import type { EventRecorder } from '../kube/events.js';
import { objectKey, resourceLabel } from '../kube/paths.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import { Watcher, type WatcherEvent } from '../kube/watcher.js';
import type { OperatorMetrics } from '../ops/metrics.js';
import type { EventContext, NodeCache, ObjectCache, OperatorViews } from './context.js';
import { DaemonSupervisor } from './daemons.js';
import { invokeHandler, type OperatorDefinition } from './definition.js';
import { passesFilters } from './filtering.js';
import { FreshnessTracker } from './freshness.js';
import { handlerApi } from './handler-api.js';
import type { HandlerRunDeps } from './handler-run.js';
import { OperatorIndexes } from './indexes.js';
import { Processor } from './processor.js';
import { SecondarySources } from './secondary.js';
import { SecondaryHandlers } from './secondary-handlers.js';
import type { ResolvedSettings } from './settings.js';
import { AnnotationStateStore, FileStateStore, type StateStore } from './state-store.js';
import { TimerScheduler } from './timers.js';
import { WorkQueue } from './queue.js';
import { ObjectWriter } from './writer.js';

/** What a controller needs from the runtime. */
export interface ControllerDeps {
  definition: OperatorDefinition;
  settings: ResolvedSettings;
  api: KubeApi;
  logger: Logger;
  metrics: OperatorMetrics;
  recorder: EventRecorder;
  /** The runtime's Nodes view (node scope). */
  nodes?: NodeCache;
  /** Aborted when the grace period of a stop ends. */
  shutdownSignal: AbortSignal;
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
}

/** Runs one operator class. */
export class OperatorController {
  readonly definition: OperatorDefinition;
  readonly writer: ObjectWriter;
  private readonly watchers: Watcher[] = [];
  private readonly queue: WorkQueue;
  private readonly processor: Processor;
  private readonly timers: TimerScheduler;
  private readonly freshness = new FreshnessTracker();
  private readonly store: StateStore;
  private readonly logger: Logger;
  private readonly failures = new Map<string, number>();
  /** Keys of the initial list not yet through their first cycle; undefined until every watcher listed once. */
  private initialKeys: Set<string> | undefined;
  /** Keys of events that arrived before every watch listed (queued at the initial sync). */
  private readonly deferred = new Set<string>();
  private stopping = false;
  readonly cache: ObjectCache;
  readonly indexes: OperatorIndexes;
  private readonly sources: SecondarySources | undefined;
  private readonly secondary: SecondaryHandlers | undefined;
  private readonly daemons: DaemonSupervisor | undefined;
  private readonly views: Omit<OperatorViews, 'cache'>;

  constructor(private readonly deps: ControllerDeps) {
    const { definition, settings } = deps;
    this.definition = definition;
    this.logger = deps.logger.child({ operator: definition.name });
    this.writer = new ObjectWriter(deps.api, definition.ref, this.logger);
    this.store =
      definition.scope === 'node'
        ? new FileStateStore(join(settings.stateDir, resourceLabel(definition.ref)))
        : new AnnotationStateStore(definition.prefix);
    this.cache = {
      list: () => this.objects(),
      get: (name, namespace) => this.lookup(namespace ? `${namespace}/${name}` : name),
    };
    this.indexes = new OperatorIndexes(definition, this.logger);
    this.sources =
      definition.watches.length > 0
        ? new SecondarySources({
            definition,
            settings,
            api: deps.api,
            logger: this.logger,
            metrics: deps.metrics,
            indexes: this.indexes,
            primary: this.cache,
            lookupPrimary: (key) => this.lookup(key),
            ...(deps.watch
              ? {
                  watch: {
                    timeoutSeconds: deps.watch.timeoutSeconds,
                    inactivityTimeoutMs: deps.watch.inactivityTimeoutMs,
                  },
                }
              : {}),
            onChange: (key, change) => {
              // Before the initial sync the change waits: every primary gets a cycle then anyway.
              if (this.secondary?.add(key, change) && this.initialKeys !== undefined) this.queue.add(key);
            },
            onSynced: () => {
              if (this.initialKeys === undefined && this.synced) this.onInitialSync();
            },
          })
        : undefined;
    const indexes = this.indexes;
    this.views = {
      caches: this.sources?.caches ?? {},
      indexes: indexes.views,
      index: <V>(id: string) => indexes.index<V>(id),
    };
    const runDeps: HandlerRunDeps = {
      definition,
      settings,
      api: deps.api,
      logger: this.logger,
      metrics: deps.metrics,
      recorder: deps.recorder,
      cache: this.cache,
      views: this.views,
      nodes: deps.nodes,
      shutdownSignal: deps.shutdownSignal,
    };
    this.secondary =
      definition.secondaryHandlers.length > 0
        ? new SecondaryHandlers(runDeps, definition.secondaryHandlers, (handler, object) =>
            passesFilters(handler.filters, object, this.logger, handler.id),
          )
        : undefined;
    this.daemons =
      definition.daemons.length > 0
        ? new DaemonSupervisor({
            ...runDeps,
            lookup: (key) => this.freshness.pick(key, this.lookup(key)),
            matches: (daemon, object) => passesFilters(daemon.filters, object, this.logger, daemon.id),
            onStopped: (key) => this.queue.add(key),
          })
        : undefined;
    this.timers = new TimerScheduler(
      definition.handlers.filter((handler) => handler.kind === 'timer'),
      (key) => this.queue.add(key),
    );
    this.queue = new WorkQueue({
      concurrency: settings.concurrency,
      worker: (key) => this.work(key),
      onDepthChange: (depth) => deps.metrics.queueDepth.set({ operator: definition.name }, depth),
    });
    this.processor = new Processor({
      ...runDeps,
      ...(this.daemons ? { daemons: this.daemons } : {}),
      ...(this.secondary ? { secondary: this.secondary } : {}),
      store: this.store,
      writer: this.writer,
      freshness: this.freshness,
      timers: this.timers,
      lookup: (key) => this.lookup(key),
      stopping: () => this.stopping,
    });
  }

  /** Every watcher listed once and every object of those lists went through one cycle. */
  get ready(): boolean {
    return this.initialKeys !== undefined && this.initialKeys.size === 0;
  }

  /** Every watcher listed at least once (the secondary watches included). */
  get synced(): boolean {
    return (
      this.watchers.length > 0 && this.watchers.every((watcher) => watcher.synced) && (this.sources?.synced ?? true)
    );
  }

  /** Watch loops alive (see `Watcher.healthy`), the secondary watches included. */
  healthy(): boolean {
    return this.stopping || (this.watchers.every((watcher) => watcher.healthy()) && (this.sources?.healthy() ?? true));
  }

  /** A snapshot of the cached objects. */
  objects(): KubeObject[] {
    return this.watchers.flatMap((watcher) => [...watcher.store.values()]);
  }

  /** Starts watching (one watcher per configured namespace, or one for all), secondary resources first. */
  start(): void {
    const { definition, settings } = this.deps;
    this.sources?.start();
    const namespaces = definition.ref.namespaced && settings.namespaces.length > 0 ? settings.namespaces : [undefined];
    for (const namespace of namespaces) {
      const watcher = new Watcher(this.deps.api, {
        ref: definition.ref,
        ...(namespace ? { namespace } : {}),
        ...(definition.labelSelector ? { labelSelector: definition.labelSelector } : {}),
        ...(definition.fieldSelector ? { fieldSelector: definition.fieldSelector } : {}),
        ...this.deps.watch,
        logger: this.logger,
        onRestart: (reason) => this.deps.metrics.watchRestarts.inc({ resource: resourceLabel(definition.ref), reason }),
      });
      this.watchers.push(watcher);
    }
    for (const watcher of this.watchers) watcher.start((event) => this.onWatchEvent(event));
  }

  /**
   * Stops intake: watchers end, queued work is dropped, timers stop, daemons are told to stop. Running cycles
   * continue (see `drain`).
   */
  async stopIntake(): Promise<void> {
    this.stopping = true;
    this.queue.close();
    this.timers.stopAll();
    this.daemons?.stopAll();
    await Promise.all([...this.watchers.map((watcher) => watcher.stop()), this.sources?.stop()]);
  }

  /** Resolves when no cycle runs any more and every daemon returned (or was abandoned after its timeout). */
  async drain(): Promise<void> {
    await Promise.all([this.queue.drain(), this.daemons?.drain()]);
  }

  private lookup(key: string): KubeObject | undefined {
    for (const watcher of this.watchers) {
      const object = watcher.store.get(key);
      if (object) return object;
    }
    return undefined;
  }

  private onWatchEvent(event: WatcherEvent<KubeObject>): void {
    if (this.stopping) return;
    if (event.type === 'synced') {
      this.freshness.resynced();
      if (this.initialKeys === undefined && this.synced) this.onInitialSync();
      return;
    }
    const key = objectKey(event.object);
    // Indexes first: whatever this event triggers reads them up to date.
    this.indexes.apply(undefined, event.type, event.object);
    if (event.type === 'upsert') {
      this.freshness.observe(key, event.object);
      if (this.timers.tracksChanges) {
        this.timers.observe(key, digest(computeEssence(event.object, this.definition.prefix)));
      }
    } else {
      this.processor.noteDeleted(key, event.object.metadata.uid);
      this.timers.stop(key);
      this.daemons?.stop(key);
      this.secondary?.forget(key);
    }
    this.fireEventHandlers(event.type, event.object);
    // With secondary watches, handling waits until they listed too (complete caches); the initial sync queues these.
    if (this.sources && this.initialKeys === undefined) this.deferred.add(key);
    else this.queue.add(key);
  }

  private onInitialSync(): void {
    this.initialKeys = new Set(this.objects().map((object) => objectKey(object)));
    this.logger.info({ objects: this.initialKeys.size }, 'initial list received');
    // Some of these may have been handled already (events arrive before `synced`); one more cycle each, usually a
    // no-op, is the simplest way to know that every one of them went through a cycle after being counted.
    for (const key of this.initialKeys) this.queue.add(key);
    // Deleted before the initial sync: their cycle drops what this instance kept about them.
    for (const key of this.deferred) this.queue.add(key);
    this.deferred.clear();
    // Node-local state of objects deleted while this instance was down.
    void this.store
      .sweep((uid) => this.objects().some((object) => object.metadata.uid === uid))
      .then((removed) => removed > 0 && this.logger.info({ removed }, 'removed state of objects deleted meanwhile'))
      .catch((error: unknown) => this.logger.warn({ err: error }, 'state sweep failed'));
  }

  private async work(key: string): Promise<void> {
    try {
      const delay = await this.processor.process(key);
      this.failures.delete(key);
      if (delay !== undefined) this.queue.addAfter(key, delay);
    } catch (error) {
      // Infrastructure failures (API errors on our own writes, disk errors): retry the object with backoff.
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = backoffDelay(this.deps.settings.backoff, failures);
      this.logger.warn({ err: error, object: key, delayMs: delay }, 'handling cycle failed; retrying');
      this.queue.addAfter(key, delay);
    } finally {
      this.initialKeys?.delete(key);
    }
  }

  private fireEventHandlers(type: 'upsert' | 'delete', object: KubeObject): void {
    const handlers = this.definition.handlers.filter((handler) => handler.kind === 'event');
    if (handlers.length === 0) return;
    const { settings, api } = this.deps;
    const logger = this.logger.child({ object: objectKey(object), event: type });
    const context: EventContext = {
      type,
      body: object,
      name: object.metadata.name,
      namespace: object.metadata.namespace,
      uid: object.metadata.uid,
      spec: object.spec,
      status: object.status,
      instanceId: settings.instanceId,
      logger,
      operatorLogger: this.logger,
      cache: this.cache,
      caches: this.views.caches,
      indexes: this.views.indexes,
      index: this.views.index,
      nodes: this.deps.nodes,
      settings,
      api: handlerApi(api),
    };
    for (const handler of handlers) {
      // Raw event handlers are fire-and-forget by contract: no state, no retries; errors are only logged.
      void Promise.resolve()
        .then(() => invokeHandler(this.definition, handler, context))
        .catch((error: unknown) => logger.warn({ err: error, handler: handler.id }, 'event handler failed'));
    }
  }
}
