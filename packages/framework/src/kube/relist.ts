/**
 * Reconciling the reflector store with a fresh list, after a 410 Gone or any relist.
 *
 * While the watch was away (API server restart, etcd compaction) objects may have been created, changed, or deleted
 * and recreated under the same name. The watch cannot replay that history, so the fresh list is compared with what the
 * store last saw, and the differences become events, as if the watch had delivered them.
 */
import { objectKey } from './paths.js';
import type { KubeObject } from './types.js';

/** What changed between the store and a fresh list. */
export interface RelistChanges<T extends KubeObject> {
  /** Objects gone from the list (or replaced by a new object with the same name), as last seen. Emit first. */
  deletes: T[];
  /** Objects new to the store or with a different resourceVersion, in list order. Emit after the deletes. */
  upserts: T[];
  /**
   * The new store content: the fresh list, keyed by {@link objectKey}. An unchanged object (same uid and
   * resourceVersion) keeps the copy the store already held, so a relist of a quiet collection lets the freshly
   * parsed duplicates die young instead of replacing every long-lived cached object.
   */
  store: Map<string, T>;
}

/**
 * Compares the store with a fresh list (pure).
 *
 * Guarantees: an unchanged object (same uid and resourceVersion) produces nothing; an object whose uid changed under
 * the same key produces a delete of the old one and an upsert of the new one, so handlers see the old object's deletion
 * before the new object's creation.
 */
export function compareRelist<T extends KubeObject>(
  previous: ReadonlyMap<string, T>,
  fresh: readonly T[],
): RelistChanges<T> {
  const store = new Map<string, T>();
  const upserts: T[] = [];
  const deletes: T[] = [];
  for (const object of fresh) {
    const key = objectKey(object);
    const before = previous.get(key);
    if (before === undefined) {
      upserts.push(object);
    } else if (before.metadata.uid !== object.metadata.uid) {
      deletes.push(before);
      upserts.push(object);
    } else if (before.metadata.resourceVersion !== object.metadata.resourceVersion) {
      upserts.push(object);
    } else {
      store.set(key, before);
      continue;
    }
    store.set(key, object);
  }
  for (const [key, before] of previous) {
    if (!store.has(key)) deletes.push(before);
  }
  return { deletes, upserts, store };
}
