/**
 * One operator class at run time: the pipeline watcher -> cache -> queue -> processor, plus `@OnEvent` handlers.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import type { EventRecorder } from '../kube/events.js';
import { objectKey, resourceLabel } from '../kube/paths.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import { Watcher, type WatcherEvent } from '../kube/watcher.js';
import type { OperatorMetrics } from '../ops/metrics.js';
import type { EventContext, NodeCache, ObjectCache } from './context.js';
import { invokeHandler, type OperatorDefinition } from './definition.js';
import { FreshnessTracker } from './freshness.js';
import { Processor } from './processor.js';
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
  private stopping = false;
  readonly cache: ObjectCache;

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
      definition,
      settings,
      api: deps.api,
      logger: this.logger,
      metrics: deps.metrics,
      recorder: deps.recorder,
      cache: this.cache,
      nodes: deps.nodes,
      shutdownSignal: deps.shutdownSignal,
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

  /** Every watcher listed at least once. */
  get synced(): boolean {
    return this.watchers.length > 0 && this.watchers.every((watcher) => watcher.synced);
  }

  /** Watch loops alive (see `Watcher.healthy`). */
  healthy(): boolean {
    return this.stopping || this.watchers.every((watcher) => watcher.healthy());
  }

  /** A snapshot of the cached objects. */
  objects(): KubeObject[] {
    return this.watchers.flatMap((watcher) => [...watcher.store.values()]);
  }

  /** Starts watching (one watcher per configured namespace, or one for all). */
  start(): void {
    const { definition, settings } = this.deps;
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

  /** Stops intake: watchers end, queued work is dropped, timers stop. Running cycles continue (see `drain`). */
  async stopIntake(): Promise<void> {
    this.stopping = true;
    this.queue.close();
    this.timers.stopAll();
    await Promise.all(this.watchers.map((watcher) => watcher.stop()));
  }

  /** Resolves when no cycle runs any more. */
  drain(): Promise<void> {
    return this.queue.drain();
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
    if (event.type === 'upsert') {
      this.freshness.observe(key, event.object);
    } else {
      this.processor.noteDeleted(key, event.object.metadata.uid);
      this.timers.stop(key);
    }
    this.fireEventHandlers(event.type, event.object);
    this.queue.add(key);
  }

  private onInitialSync(): void {
    this.initialKeys = new Set(this.objects().map((object) => objectKey(object)));
    this.logger.info({ objects: this.initialKeys.size }, 'initial list received');
    // Some of these may have been handled already (events arrive before `synced`); one more cycle each, usually a
    // no-op, is the simplest way to know that every one of them went through a cycle after being counted.
    for (const key of this.initialKeys) this.queue.add(key);
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
      nodes: this.deps.nodes,
      settings,
      api,
    };
    for (const handler of handlers) {
      // Raw event handlers are fire-and-forget by contract: no state, no retries; errors are only logged.
      void Promise.resolve()
        .then(() => invokeHandler(this.definition, handler, context))
        .catch((error: unknown) => logger.warn({ err: error, handler: handler.id }, 'event handler failed'));
    }
  }
}
