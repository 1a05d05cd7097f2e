/**
 * The secondary resources of one operator (`@Operator({ watches })`): their caches, and the mapping of their changes
 * to primary objects (`owns`, `map`).
 *
 * ```
 *   shared watch of a resource --event--> indexes of that resource (updated first)
 *                                     \--> owns / map --primary keys--> onChange(key, change) (controller: pending
 *                                                                        change + queue the primary)
 * ```
 *
 * Namespaced resources are watched in the runtime's `namespaces` (all by default), like the primary resource. Only
 * changes observed after a watch's first complete list are mapped (the primary objects get a cycle after the initial
 * lists anyway, with complete caches), and only to primary objects that exist in the primary cache.
 */
import type { Logger } from 'pino';
import { controllerOwnerKeys, primaryKeys, unitedKeys, type OwnerKind } from '../core/secondary-keys.js';
import { resourceLabel } from '../kube/paths.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import type { OperatorMetrics } from '../ops/metrics.js';
import type { ObjectCache, SecondaryChange } from './context.js';
import type { OperatorDefinition, WatchDefinition } from './definition.js';
import type { OperatorIndexes } from './indexes.js';
import type { ResolvedSettings } from './settings.js';
import { SharedWatches, type SourceEvent, type WatchSubscription } from './shared-watches.js';

/** What {@link SecondarySources} needs from its controller. */
export interface SecondarySourcesDeps {
  definition: OperatorDefinition;
  settings: ResolvedSettings;
  api: KubeApi;
  /** The operator's logger. */
  logger: Logger;
  metrics: OperatorMetrics;
  indexes: OperatorIndexes;
  /** The operator's own cache (for `map` and to drop changes of primaries that do not exist). */
  primary: ObjectCache;
  /** Looks a primary object up by key. */
  lookupPrimary: (key: string) => KubeObject | undefined;
  watch?: { timeoutSeconds?: number; inactivityTimeoutMs?: number };
  /** A change concerns the primary object `key`. */
  onChange: (key: string, change: SecondaryChange) => void;
  /** A watch completed a (re)list. */
  onSynced: () => void;
}

/** The secondary watches of one operator. */
export class SecondarySources {
  /** Read-only caches by watch id, as `ctx.caches` hands them out. */
  readonly caches: Readonly<Record<string, ObjectCache>>;
  private readonly subscriptions = new Map<string, WatchSubscription[]>();
  private readonly owner: OwnerKind;

  constructor(private readonly deps: SecondarySourcesDeps) {
    const { definition } = deps;
    this.owner = { group: definition.ref.group, kind: definition.kind, namespaced: definition.ref.namespaced ?? false };
    const caches: Record<string, ObjectCache> = {};
    for (const watch of definition.watches) caches[watch.id] = this.cacheOf(watch.id);
    this.caches = Object.freeze(caches);
  }

  /** Every watch listed at least once (true when there are none). */
  get synced(): boolean {
    return [...this.subscriptions.values()].every((list) => list.every((subscription) => subscription.synced));
  }

  /** Every watch loop alive. */
  healthy(): boolean {
    return [...this.subscriptions.values()].every((list) => list.every((subscription) => subscription.healthy()));
  }

  /** Subscribes to the shared watch of every secondary resource (one per namespace when namespaces are set). */
  start(): void {
    const { definition, settings, api, logger, metrics } = this.deps;
    const registry = SharedWatches.of(api);
    for (const watch of definition.watches) {
      const namespaces = watch.ref.namespaced && settings.namespaces.length > 0 ? settings.namespaces : [undefined];
      const resource = resourceLabel(watch.ref);
      const list: WatchSubscription[] = [];
      this.subscriptions.set(watch.id, list);
      for (const namespace of namespaces) {
        // The listener may run before `subscribe` returns (a shared watch that listed already): it finds its
        // subscription through the list, to know whether its first list is done.
        const position = list.length;
        const subscription = registry.subscribe(
          {
            ref: watch.ref,
            ...(namespace ? { namespace } : {}),
            ...(watch.labelSelector ? { labelSelector: watch.labelSelector } : {}),
            ...(watch.fieldSelector ? { fieldSelector: watch.fieldSelector } : {}),
            ...(watch.transform ? { transform: watch.transform } : {}),
          },
          {
            logger: logger.child({ watch: watch.id, resource }),
            ...this.deps.watch,
            onRestart: (reason) => metrics.watchRestarts.inc({ resource, reason }),
          },
          (event) => this.onEvent(watch, () => list[position]?.synced ?? false, event),
        );
        list.push(subscription);
      }
    }
  }

  /** Leaves every shared watch (the last subscriber stops it). */
  async stop(): Promise<void> {
    const all = [...this.subscriptions.values()].flat();
    await Promise.all(all.map((subscription) => subscription.unsubscribe()));
  }

  private cacheOf(id: string): ObjectCache {
    const stores = (): ReadonlyArray<ReadonlyMap<string, KubeObject>> =>
      (this.subscriptions.get(id) ?? []).map((subscription) => subscription.store);
    return {
      list: () => stores().flatMap((store) => [...store.values()]),
      get: (name, namespace) => {
        const key = namespace ? `${namespace}/${name}` : name;
        for (const store of stores()) {
          const object = store.get(key);
          if (object) return object;
        }
        return undefined;
      },
    };
  }

  private onEvent(watch: WatchDefinition, listed: () => boolean, event: SourceEvent): void {
    if (event.type === 'synced') {
      this.deps.onSynced();
      return;
    }
    this.deps.indexes.apply(watch.id, event.type, event.object);
    // The initial list is not a change: primaries are handled after it with complete caches.
    if (!listed() || (!watch.owns && !watch.map)) return;
    const keys = unitedKeys(this.keysOf(watch, event.previous), this.keysOf(watch, event.object));
    if (keys.length === 0) return;
    const change: SecondaryChange = {
      resource: watch.id,
      type: event.type,
      object: event.object,
      previous: event.previous,
    };
    for (const key of keys) {
      if (this.deps.lookupPrimary(key)) this.deps.onChange(key, change);
    }
  }

  private keysOf(watch: WatchDefinition, object: KubeObject | undefined): string[] {
    if (!object) return [];
    const keys = watch.owns ? controllerOwnerKeys(object, this.owner) : [];
    if (!watch.map) return keys;
    try {
      const mapped = watch.map(object, { primary: this.deps.primary, indexes: this.deps.indexes.views });
      return unitedKeys(keys, primaryKeys(mapped, this.owner.namespaced, object.metadata.namespace));
    } catch (error) {
      this.deps.logger.warn(
        { err: error, watch: watch.id, object: object.metadata.name },
        'watch map function threw; change not mapped',
      );
      return keys;
    }
  }
}
