/**
 * Reconciling the reflector store with a fresh list, after a 410 Gone or any relist.
 *
 * While the watch was away (API server restart, etcd compaction) objects may have been created, changed, or deleted
 * and recreated under the same name. The watch cannot replay that history, so the fresh list is compared with what the
 * store last saw, and the differences become events, as if the watch had delivered them.
 *
 * Lists come from the API server's watch cache (`resourceVersion=0`): cheap for etcd, so that hundreds of nodes
 * relisting after an API server restart do not all read etcd at once. Such a list can be older than what the watch
 * already delivered (another API server behind the load balancer lagging behind, for instance), so resourceVersions
 * are compared, as etcd revisions: a list older than what was seen is not applied at all ({@link isListBehind}), and
 * {@link compareRelist} never replaces an object by an older copy nor takes an object newer than the list as deleted.
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
 * before the new object's creation. Nothing goes back in time: an object the store holds at a newer resourceVersion
 * than the list's copy keeps the store's copy, and one the store holds at a newer resourceVersion than the list itself
 * (`listVersion`) is not taken as deleted, since the list was taken before it was written.
 *
 * @param listVersion - The list's `metadata.resourceVersion`; without it, objects missing from the list are deleted.
 */
export function compareRelist<T extends KubeObject>(
  previous: ReadonlyMap<string, T>,
  fresh: readonly T[],
  listVersion?: string,
): RelistChanges<T> {
  const store = new Map<string, T>();
  const upserts: T[] = [];
  const deletes: T[] = [];
  for (const object of fresh) {
    const key = objectKey(object);
    const before = previous.get(key);
    if (before === undefined) {
      upserts.push(object);
    } else if (isNewer(before.metadata.resourceVersion, object.metadata.resourceVersion)) {
      // The list is behind the store here (a namesake recreated since included): keep what was seen.
      store.set(key, before);
      continue;
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
    if (store.has(key)) continue;
    if (listVersion !== undefined && isNewer(before.metadata.resourceVersion, listVersion)) store.set(key, before);
    else deletes.push(before);
  }
  return { deletes, upserts, store };
}

/**
 * Orders two resourceVersions (pure): negative when `a` is older, positive when newer, 0 when equal, undefined when
 * they cannot be compared. resourceVersions are etcd revisions in practice; anything else is not compared.
 */
export function compareResourceVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  const x = BigInt(a);
  const y = BigInt(b);
  return x === y ? 0 : x < y ? -1 : 1;
}

/** Whether a list at `listVersion` is older than what the watch already saw, `seenVersion` (pure). */
export function isListBehind(listVersion: string | undefined, seenVersion: string | undefined): boolean {
  return (compareResourceVersions(listVersion, seenVersion) ?? 0) < 0;
}

function isNewer(a: string | undefined, b: string | undefined): boolean {
  return (compareResourceVersions(a, b) ?? 0) > 0;
}
