/**
 * A level-based reconciler with secondary watches: controller-runtime's `Reconcile(key)` with `Watches(...)`, and
 * kube-rs' controller with its triggers, on opkit's watcher and work queue.
 *
 * ```
 *   primary watcher ----> key of the object --------\
 *   secondary watcher --> map(change) -> keys ------> work queue (one run per key at a time, coalesced)
 *                                                      -> reconcile(key, ctx) -> requeue after / backoff on error
 * ```
 *
 * Guarantees:
 * - `reconcile` never runs before every source listed once, so it always sees complete caches; then every primary
 *   key is reconciled once.
 * - One place decides "did it change": a watch event whose object, as the cache transform keeps it, equals the cached
 *   copy (resourceVersion aside) triggers nothing; so a transform that keeps only what matters (a Node's labels)
 *   filters out the noise (a Node's heartbeats).
 * - Never two runs for one key at once; changes arriving meanwhile make one more run (the latest state wins).
 * - A failed run is retried with capped, jittered exponential backoff; a success resets the count. A run may ask to
 *   run again after a delay (`requeueAfterMs`), e.g. to wait for a grace period.
 * - `resyncMs` requeues every primary key periodically: a level-based safety net.
 * Caveats: `map` runs inside the watch loop and must be quick. Keys are `name` (cluster scope) or `namespace/name`.
 */
import type { Logger } from 'pino';
import { backoffDelay, resolveBackoff, type BackoffPolicy } from '../core/backoff.js';
import { sameJson } from '../core/merge-patch.js';
import { WorkQueue } from '../engine/queue.js';
import { objectKey } from '../kube/paths.js';
import type { CacheTransform } from '../kube/transform.js';
import type { KubeApi, KubeObject, ResourceRef } from '../kube/types.js';
import { Watcher, type WatcherEvent, type WatchRestartReason } from '../kube/watcher.js';
import { permission, type PermissionDeclaration } from '../manifests/permissions.js';

/** A change of a watched object, as `map` functions receive it. */
export interface SourceChange<T extends KubeObject = KubeObject> {
  type: 'upsert' | 'delete';
  object: T;
  /** The cached copy before this change (undefined for a new object). */
  previous: T | undefined;
}

/** One watched resource. */
export interface WatchSource<T extends KubeObject = KubeObject> {
  resource: ResourceRef;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** What the cache keeps of each object (see the `Watcher`'s transform). Defaults to dropping managedFields. */
  transform?: CacheTransform;
  /**
   * Secondary sources: the primary keys to reconcile after a change of this object. Primary source: defaults to the
   * object's own key.
   */
  map?: (change: SourceChange<T>, reconciler: ReconcilerView) => Iterable<string>;
}

/** What `map` functions and `reconcile` read. */
export interface ReconcilerView {
  /** The primary objects, by key. */
  readonly primary: ReadonlyMap<string, KubeObject>;
  /** The objects of a secondary source, by key. */
  cache(source: string): ReadonlyMap<string, KubeObject>;
}

/** What one run of `reconcile` gets. */
export interface ReconcileContext extends ReconcilerView {
  api: KubeApi;
  logger: Logger;
  /** The primary object of the key, if it exists. */
  object: KubeObject | undefined;
  /** Aborted when the reconciler stops. */
  signal: AbortSignal;
  /** Failures of this key in a row before this run (0 after a success). */
  retries: number;
}

/** What a run asks for. */
export interface ReconcileResult {
  /** Run this key again after this delay, even if nothing changes. */
  requeueAfterMs?: number;
}

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  /** Name in logs and metrics. */
  name: string;
  primary: WatchSource;
  /** Secondary sources by name (readable through `cache(name)`). */
  secondary?: Record<string, WatchSource>;
  reconcile: (key: string, context: ReconcileContext) => Promise<ReconcileResult | void>;
  /** Keys reconciled in parallel. Defaults to 4. */
  concurrency?: number;
  /** Backoff of failed runs. Defaults to 500 ms doubling to 60 s, 20 % jitter. */
  backoff?: Partial<BackoffPolicy>;
  /** Requeue every primary key this often; 0 for never. Defaults to 0. */
  resyncMs?: number;
  /** Watch tuning passed to every watcher. */
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
  /** Called on every watch restart (metrics). */
  onWatchRestart?: (source: string, reason: WatchRestartReason) => void;
  /** Called after every run (metrics). */
  onRun?: (outcome: 'ok' | 'error', durationMs: number) => void;
}

/** What {@link Reconciler.start} needs from the runtime. */
export interface ReconcilerStartContext {
  api: KubeApi;
  logger: Logger;
}

const DEFAULT_RECONCILE_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 60_000, factor: 2, jitter: 0.2 };
const PRIMARY = '';

/** Volatile metadata that changes without the object changing for a reconciler. */
function essenceOf(object: KubeObject): unknown {
  const { resourceVersion: _rv, managedFields: _mf, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** A level-based reconciler (see the module comment); usable as a runtime runnable. */
export class Reconciler implements ReconcilerView {
  readonly name: string;
  private readonly watchers = new Map<string, Watcher>();
  private queue: WorkQueue | undefined;
  private readonly failures = new Map<string, number>();
  private readonly backoff: BackoffPolicy;
  private readonly stopController = new AbortController();
  private resyncTimer: ReturnType<typeof setInterval> | undefined;
  private context: ReconcilerStartContext | undefined;
  private allSynced = false;
  private initialKeys: Set<string> | undefined;
  private stopped = false;

  /**
   * The requests a reconciler's watches send, as RBAC permissions: `list` and `watch` on every source (in its
   * namespace when it has one). What `reconcile` itself sends through `ctx.api` is for its author to declare.
   */
  static permissions(sources: Pick<ReconcilerOptions, 'primary' | 'secondary'>): PermissionDeclaration[] {
    return [sources.primary, ...Object.values(sources.secondary ?? {})].map((source) =>
      permission(
        source.resource,
        ['list', 'watch'],
        source.namespace === undefined ? {} : { namespace: source.namespace },
      ),
    );
  }

  constructor(private readonly options: ReconcilerOptions) {
    this.name = options.name;
    this.backoff = resolveBackoff(options.backoff, DEFAULT_RECONCILE_BACKOFF);
  }

  get primary(): ReadonlyMap<string, KubeObject> {
    return this.watcher(PRIMARY).store;
  }

  cache(source: string): ReadonlyMap<string, KubeObject> {
    return this.watcher(source).store;
  }

  /** Every source listed once and every primary key reconciled once. */
  isReady(): boolean {
    return this.allSynced && this.initialKeys !== undefined && this.initialKeys.size === 0;
  }

  /** Every watch loop alive. */
  isHealthy(): boolean {
    return this.stopped || [...this.watchers.values()].every((watcher) => watcher.healthy());
  }

  /** Requeues one primary key now. */
  enqueue(key: string): void {
    if (this.allSynced) this.queue?.add(key);
  }

  /** Requeues every primary key now. */
  enqueueAll(): void {
    for (const key of this.primary.keys()) this.enqueue(key);
  }

  /** Starts the watches; reconciling begins once all of them listed. */
  start(context: ReconcilerStartContext): void {
    if (this.context) return;
    this.context = context;
    const { options } = this;
    this.queue = new WorkQueue({
      concurrency: options.concurrency ?? 4,
      worker: (key) => this.run(key),
      onError: (key, error) => context.logger.error({ err: error, key }, 'reconcile worker failed'),
    });
    const sources: Array<[string, WatchSource]> = [
      [PRIMARY, options.primary],
      ...Object.entries(options.secondary ?? {}),
    ];
    for (const [name, source] of sources) {
      const watcher = new Watcher(context.api, {
        ref: source.resource,
        logger: context.logger.child({ source: name || 'primary' }),
        ...options.watch,
        ...(source.namespace ? { namespace: source.namespace } : {}),
        ...(source.labelSelector ? { labelSelector: source.labelSelector } : {}),
        ...(source.fieldSelector ? { fieldSelector: source.fieldSelector } : {}),
        ...(source.transform ? { transform: source.transform } : {}),
        ...(options.onWatchRestart
          ? { onRestart: (reason: WatchRestartReason) => options.onWatchRestart?.(name || 'primary', reason) }
          : {}),
      });
      this.watchers.set(name, watcher);
    }
    for (const [name, source] of sources) {
      const watcher = this.watchers.get(name) as Watcher;
      // The store is updated before the event is delivered: keep the previous copies to tell no-op events apart.
      const previous = new Map<string, KubeObject>();
      watcher.start((event) => this.onEvent(name, source, previous, event));
    }
    if (options.resyncMs && options.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), options.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** Stops the watches and waits for the runs in progress. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.stopController.abort(new Error('reconciler stopping'));
    this.queue?.close();
    await Promise.all([...this.watchers.values()].map((watcher) => watcher.stop()));
    await this.queue?.drain();
  }

  private watcher(source: string): Watcher {
    const watcher = this.watchers.get(source);
    if (!watcher) throw new Error(`reconciler ${this.name}: no source named ${JSON.stringify(source)}`);
    return watcher;
  }

  private onEvent(
    name: string,
    source: WatchSource,
    copies: Map<string, KubeObject>,
    event: WatcherEvent<KubeObject>,
  ): void {
    if (event.type === 'synced') {
      if (!this.allSynced && [...this.watchers.values()].every((watcher) => watcher.synced)) {
        this.allSynced = true;
        this.initialKeys = new Set(this.primary.keys());
        for (const key of this.primary.keys()) this.queue?.add(key);
      }
      return;
    }
    const key = objectKey(event.object);
    const previous = copies.get(key);
    if (event.type === 'delete') copies.delete(key);
    else {
      copies.set(key, event.object);
      if (previous && sameJson(essenceOf(previous), essenceOf(event.object))) return;
    }
    if (!this.allSynced) return;
    const change: SourceChange = { type: event.type, object: event.object, previous };
    const keys = name === PRIMARY ? (source.map?.(change, this) ?? [key]) : (source.map?.(change, this) ?? []);
    for (const target of keys) this.queue?.add(target);
  }

  private async run(key: string): Promise<void> {
    const context = this.context as ReconcilerStartContext;
    const retries = this.failures.get(key) ?? 0;
    const started = performance.now();
    try {
      const result = await this.options.reconcile(key, {
        api: context.api,
        logger: context.logger.child({ key }),
        object: this.primary.get(key),
        primary: this.primary,
        cache: (source) => this.cache(source),
        signal: this.stopController.signal,
        retries,
      });
      this.failures.delete(key);
      this.options.onRun?.('ok', performance.now() - started);
      if (result?.requeueAfterMs !== undefined) this.queue?.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      this.options.onRun?.('error', performance.now() - started);
      const failures = retries + 1;
      this.failures.set(key, failures);
      const delayMs = backoffDelay(this.backoff, failures);
      context.logger.warn(
        { key, err: error instanceof Error ? error.message : String(error), retries: failures, delayMs },
        'reconcile failed: retrying',
      );
      this.queue?.addAfter(key, delayMs);
    } finally {
      this.initialKeys?.delete(key);
    }
  }
}
