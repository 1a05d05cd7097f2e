/**
 * Secondary watches shared by the operator classes of one runtime: one list+watch per resource and selection
 * (namespace, selectors, cache transform), however many classes declare it, fanned out to each of them.
 *
 * The registry is keyed by the runtime's API client (each runtime has its own), so it needs no wiring through the
 * runtime. A watch starts with its first subscriber and stops when the last one leaves.
 *
 * Guarantees: subscribers get the watcher's events in order, each with the copy the cache held before it
 * (`previous`); an event that changes nothing but the resourceVersion (or what the cache transform drops) is not
 * passed on; a subscriber that joins after the first list gets `synced` at once.
 * Caveat: listeners run inside the watch loop and must return quickly.
 */
import type { Logger } from 'pino';
import { sameJson } from '../core/merge-patch.js';
import { objectKey, resourceLabel } from '../kube/paths.js';
import type { CacheTransform } from '../kube/transform.js';
import type { KubeApi, KubeObject, ResourceRef } from '../kube/types.js';
import { Watcher, type WatcherEvent, type WatchRestartReason } from '../kube/watcher.js';

/** What a subscriber of a shared watch receives. */
export type SourceEvent =
  { type: 'upsert' | 'delete'; object: KubeObject; previous: KubeObject | undefined } | { type: 'synced' };

/** Which objects a watch follows and what its cache keeps; watches are shared when all of it is the same. */
export interface WatchSelection {
  ref: ResourceRef;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Undefined: the watcher's default (drop `managedFields`). Compared by identity. */
  transform?: CacheTransform;
}

/** How the first subscriber sets the watch up (later subscribers share it as it is). */
export interface SharedWatchOptions {
  logger: Logger;
  timeoutSeconds?: number;
  inactivityTimeoutMs?: number;
  onRestart?: (reason: WatchRestartReason) => void;
}

/** One subscriber's handle on a shared watch. */
export interface WatchSubscription {
  /** The watch cache by key (`namespace/name` or `name`). */
  readonly store: ReadonlyMap<string, KubeObject>;
  /** The first complete list arrived. */
  readonly synced: boolean;
  /** The watch loop is alive (see `Watcher.healthy`). */
  healthy(): boolean;
  /** Stops delivering to this subscriber; the last one to leave stops the watch. Idempotent. */
  unsubscribe(): Promise<void>;
}

const registries = new WeakMap<KubeApi, SharedWatches>();

/** The shared watches of one API client (one runtime). */
export class SharedWatches {
  private readonly watches = new Map<string, SharedWatch[]>();

  private constructor(private readonly api: KubeApi) {}

  /** The registry of `api`'s runtime. */
  static of(api: KubeApi): SharedWatches {
    let registry = registries.get(api);
    if (!registry) registries.set(api, (registry = new SharedWatches(api)));
    return registry;
  }

  /** Watches currently running (tests, diagnostics). */
  get size(): number {
    return [...this.watches.values()].reduce((sum, list) => sum + list.length, 0);
  }

  /** Subscribes to the watch of `selection`, starting it if nobody watches it yet. */
  subscribe(
    selection: WatchSelection,
    options: SharedWatchOptions,
    listener: (event: SourceEvent) => void,
  ): WatchSubscription {
    const key = selectionKey(selection);
    const list = this.watches.get(key) ?? [];
    let watch = list.find((candidate) => candidate.transform === selection.transform);
    if (!watch) {
      watch = new SharedWatch(this.api, selection, options, () => this.forget(key, watch as SharedWatch));
      this.watches.set(key, [...list, watch]);
    }
    return watch.subscribe(listener);
  }

  private forget(key: string, watch: SharedWatch): void {
    const rest = (this.watches.get(key) ?? []).filter((candidate) => candidate !== watch);
    if (rest.length > 0) this.watches.set(key, rest);
    else this.watches.delete(key);
  }
}

function selectionKey(selection: WatchSelection): string {
  const { ref } = selection;
  return JSON.stringify([
    resourceLabel(ref),
    ref.version,
    selection.namespace ?? '',
    selection.labelSelector ?? '',
    selection.fieldSelector ?? '',
  ]);
}

/** One watcher and its subscribers. */
class SharedWatch {
  readonly transform: CacheTransform | undefined;
  private readonly watcher: Watcher;
  private readonly listeners = new Set<(event: SourceEvent) => void>();
  /** The copies before the current event (the watcher's store is updated before it delivers). */
  private readonly copies = new Map<string, KubeObject>();
  private readonly logger: Logger;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(
    api: KubeApi,
    selection: WatchSelection,
    options: SharedWatchOptions,
    private readonly onStopped: () => void,
  ) {
    this.transform = selection.transform;
    this.logger = options.logger;
    this.watcher = new Watcher(api, {
      ref: selection.ref,
      ...(selection.namespace ? { namespace: selection.namespace } : {}),
      ...(selection.labelSelector ? { labelSelector: selection.labelSelector } : {}),
      ...(selection.fieldSelector ? { fieldSelector: selection.fieldSelector } : {}),
      ...(selection.transform ? { transform: selection.transform } : {}),
      ...(options.timeoutSeconds !== undefined ? { timeoutSeconds: options.timeoutSeconds } : {}),
      ...(options.inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs: options.inactivityTimeoutMs } : {}),
      ...(options.onRestart ? { onRestart: options.onRestart } : {}),
      logger: options.logger,
    });
  }

  subscribe(listener: (event: SourceEvent) => void): WatchSubscription {
    this.listeners.add(listener);
    if (!this.started) {
      this.started = true;
      this.watcher.start((event) => this.deliver(event));
    } else if (this.watcher.synced) {
      listener({ type: 'synced' });
    }
    let subscribed = true;
    const watcher = this.watcher;
    return {
      get store() {
        return watcher.store;
      },
      get synced() {
        return watcher.synced;
      },
      healthy: () => watcher.healthy(),
      unsubscribe: async () => {
        if (!subscribed) return;
        subscribed = false;
        this.listeners.delete(listener);
        if (this.listeners.size === 0) await this.stop();
      },
    };
  }

  private stop(): Promise<void> {
    this.stopping ??= this.watcher.stop().finally(() => this.onStopped());
    return this.stopping;
  }

  private deliver(event: WatcherEvent<KubeObject>): void {
    if (event.type === 'synced') {
      for (const listener of this.listeners) listener(event);
      return;
    }
    const key = objectKey(event.object);
    const previous = this.copies.get(key);
    if (event.type === 'delete') {
      this.copies.delete(key);
    } else {
      this.copies.set(key, event.object);
      if (previous && sameJson(withoutVersion(previous), withoutVersion(event.object))) return;
    }
    const change: SourceEvent = { type: event.type, object: event.object, previous };
    // One throwing subscriber must not starve the others (the watcher would log it once, for all of them).
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.error({ err: error, object: key }, 'watch subscriber threw');
      }
    }
  }
}

/** An object without the fields that change on every write whatever changed. */
function withoutVersion(object: KubeObject): unknown {
  const { resourceVersion: _version, managedFields: _fields, ...metadata } = object.metadata;
  return { ...object, metadata };
}
