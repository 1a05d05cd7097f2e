/**
 * The `@Index`es of one operator, maintained from its watch events (primary and secondary).
 *
 * The controller calls {@link OperatorIndexes.apply} for every upsert and delete before it queues anything, so an
 * index is never behind the change that triggers a handler. Relists need nothing special: the watcher delivers the
 * differences as upserts and deletes.
 */
import type { Logger } from 'pino';
import { matchesFilters } from '../core/filters.js';
import type { IndexSpec } from '../core/handler-extensions.js';
import { IndexStore, type ObjectIndex } from '../core/index-store.js';
import { objectKey } from '../kube/paths.js';
import type { KubeObject } from '../kube/types.js';
import { invokeHandler, type OperatorDefinition } from './definition.js';

/** Failures logged per index at warn level before they are only logged at debug level (a broken index repeats). */
const LOUD_FAILURES = 3;

/** The indexes of one operator. */
export class OperatorIndexes {
  /** Read-only views by id, as `ctx.indexes` hands them out. */
  readonly views: Readonly<Record<string, ObjectIndex>>;
  private readonly stores = new Map<string, IndexStore>();
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly definition: OperatorDefinition,
    private readonly logger: Logger,
  ) {
    const views: Record<string, ObjectIndex> = {};
    for (const spec of definition.indexes) {
      const store = new IndexStore();
      this.stores.set(spec.id, store);
      views[spec.id] = store;
    }
    this.views = Object.freeze(views);
  }

  /** One index by id; throws for an id no `@Index` declares (a typo must not read as an empty index). */
  index<V>(id: string): ObjectIndex<V> {
    const store = this.stores.get(id);
    if (!store)
      throw new Error(
        `${this.definition.name} has no index '${id}' (declared: ${[...this.stores.keys()].join(', ') || 'none'})`,
      );
    return store as unknown as ObjectIndex<V>;
  }

  /**
   * Updates every index of `source` (a watch id, or undefined for the operator's own resource) for one watch event.
   */
  apply(source: string | undefined, type: 'upsert' | 'delete', object: KubeObject): void {
    for (const spec of this.definition.indexes) {
      if (spec.resource !== source) continue;
      const store = this.stores.get(spec.id) as IndexStore;
      const key = objectKey(object);
      if (type === 'delete') {
        store.remove(key);
        continue;
      }
      try {
        if (!matchesFilters(spec.filters, object)) {
          store.remove(key);
          continue;
        }
        store.set(key, invokeHandler(this.definition, spec, object) as Parameters<IndexStore['set']>[1]);
      } catch (error) {
        this.reportFailure(spec, key, error);
      }
    }
  }

  private reportFailure(spec: IndexSpec, key: string, error: unknown): void {
    // Kopf's default: keep what the object contributed before (stale rather than lost).
    const failures = (this.failures.get(spec.id) ?? 0) + 1;
    this.failures.set(spec.id, failures);
    const level = failures <= LOUD_FAILURES ? 'warn' : 'debug';
    this.logger[level](
      { err: error, index: spec.id, object: key, failures },
      'index function failed; previous values kept',
    );
  }
}
