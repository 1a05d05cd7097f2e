/**
 * Node scope: the runtime's one watch of core/v1 Nodes, shared by the dead-instance janitor and by handlers
 * (`ctx.nodes`), so that no operator runs a second list/watch of Nodes.
 *
 * It starts before the `@OnStartup` handlers (so they can wait for the first list and subscribe) and stops after the
 * `@OnCleanup` handlers (so long-lived components can unsubscribe while it still runs).
 *
 * Guarantees:
 * - Listeners see every change the watch delivers, in order, synchronously from the watch loop: an `upsert` (with
 *   the node's previous copy, if any), a `delete`, and `synced` after every complete (re)list. A relist delivers the
 *   differences with what was cached before it (Nodes deleted while the watch was down arrive as `delete`).
 * - `list()`/`get()` always agree with the changes delivered so far.
 * - A listener that throws is logged and does not stop the watch or the other listeners.
 * Caveat: listeners run inside the watch loop; they must return quickly (schedule work, do not await it).
 *
 * Mode `'own'` (`RuntimeSettings.nodeWatch`) lists and watches only the Node named like the instance id (a field
 * selector on `metadata.name`): each instance of a DaemonSet then receives its own Node's changes, not every Node's
 * heartbeats, and the cache holds that one Node.
 */
import type { Logger } from 'pino';
import type { KubeApi, KubeObject, ResourceRef } from '../kube/types.js';
import { Watcher, type WatcherEvent } from '../kube/watcher.js';
import type { NodeCache, NodeChange, NodeChangeListener, NodeChangeOptions } from './context.js';

/** The core/v1 Nodes resource. */
export const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };

/** Options of {@link NodeWatch}. */
export interface NodeWatchOptions {
  api: KubeApi;
  /** This instance's id, which in node scope is its Node's name (for `own()` and `own` in changes). */
  instanceId: string;
  logger: Logger;
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
  /** Called on every reconnect or relist of the watch (metrics). */
  onRestart?: (reason: string) => void;
  /** Every Node (default), or only the Node named like `instanceId`. */
  mode?: 'all' | 'own';
}

interface Subscription {
  listener: NodeChangeListener;
  ownOnly: boolean;
}

/** Watches Nodes and serves them as a {@link NodeCache}. */
export class NodeWatch {
  private readonly watcher: Watcher;
  private readonly nodes = new Map<string, KubeObject>();
  private readonly subscriptions = new Set<Subscription>();
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (error: unknown) => void }>();
  private started = false;
  private stopped = false;
  /** The read-only view handed to handlers. */
  readonly view: NodeCache;

  constructor(private readonly options: NodeWatchOptions) {
    this.watcher = new Watcher(options.api, {
      ref: NODES,
      logger: options.logger,
      ...(options.mode === 'own' ? { fieldSelector: `metadata.name=${options.instanceId}` } : {}),
      ...options.watch,
      ...(options.onRestart ? { onRestart: options.onRestart } : {}),
    });
    this.view = new NodeCacheView(this, options.instanceId);
  }

  /** Nodes listed at least once. */
  get synced(): boolean {
    return this.watcher.synced;
  }

  /** The watch stream is open: the cache follows the Nodes as they change (see {@link NodeCache.streaming}). */
  get streaming(): boolean {
    return this.watcher.state === 'watching';
  }

  /** The watch loop is alive (see `Watcher.healthy`); true once stopped. */
  healthy(): boolean {
    return this.stopped || this.watcher.healthy();
  }

  /** A snapshot of the cached Nodes. */
  list(): KubeObject[] {
    return [...this.nodes.values()];
  }

  /** Starts the watch (idempotent). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.watcher.start((event) => this.onWatchEvent(event));
  }

  /** Stops the watch; pending `whenSynced` calls reject. Listeners receive nothing more. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const stopping = new Error('the Nodes watch stopped');
    for (const waiter of this.syncWaiters) waiter.reject(stopping);
    this.syncWaiters.clear();
    if (this.started) await this.watcher.stop();
    this.subscriptions.clear();
  }

  /**
   * Subscribes an internal or handler listener.
   *
   * @returns the unsubscribe function (idempotent).
   */
  subscribe(listener: NodeChangeListener, options: NodeChangeOptions = {}): () => void {
    const subscription: Subscription = { listener, ownOnly: options.ownOnly ?? false };
    if (!this.stopped) this.subscriptions.add(subscription);
    return () => void this.subscriptions.delete(subscription);
  }

  private onWatchEvent(event: WatcherEvent<KubeObject>): void {
    if (this.stopped) return;
    let change: NodeChange;
    if (event.type === 'synced') {
      change = { type: 'synced' };
      for (const waiter of this.syncWaiters) waiter.resolve();
      this.syncWaiters.clear();
    } else {
      const name = event.object.metadata.name;
      const own = name === this.options.instanceId;
      if (event.type === 'upsert') {
        const previous = this.nodes.get(name);
        this.nodes.set(name, event.object);
        change = { type: 'upsert', node: event.object, previous, own };
      } else {
        this.nodes.delete(name);
        change = { type: 'delete', node: event.object, own };
      }
    }
    for (const subscription of [...this.subscriptions]) {
      if (subscription.ownOnly && !(change.type !== 'synced' && change.own)) continue;
      try {
        subscription.listener(change);
      } catch (error) {
        this.options.logger.error({ err: error, change: change.type }, 'a Nodes change listener threw');
      }
    }
  }

  /** One cached Node by name. */
  get(name: string): KubeObject | undefined {
    return this.nodes.get(name);
  }

  /** Resolves once the first list arrived; rejects when `signal` aborts or the watch stops first. */
  whenSynced(signal?: AbortSignal): Promise<void> {
    if (this.watcher.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('the Nodes watch stopped'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.syncWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The handlers' view: reads and subscriptions only (a private field keeps `stop()` out of their reach). */
class NodeCacheView implements NodeCache {
  readonly #watch: NodeWatch;

  constructor(
    watch: NodeWatch,
    private readonly instanceId: string,
  ) {
    this.#watch = watch;
  }

  get synced(): boolean {
    return this.#watch.synced;
  }

  get streaming(): boolean {
    return this.#watch.streaming;
  }

  list(): KubeObject[] {
    return this.#watch.list();
  }

  get(name: string): KubeObject | undefined {
    return this.#watch.get(name);
  }

  own(): KubeObject | undefined {
    return this.#watch.get(this.instanceId);
  }

  whenSynced(signal?: AbortSignal): Promise<void> {
    return this.#watch.whenSynced(signal);
  }

  onChange(listener: NodeChangeListener, options?: NodeChangeOptions): () => void {
    return this.#watch.subscribe(listener, options);
  }
}
