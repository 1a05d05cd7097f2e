/**
 * Remembers the object returned by the engine's own last write per key, until the watch has caught up with it, so
 * the processor never handles a copy older than its own write (see `core/versions.ts`).
 *
 * Bounded: an entry is kept only while the cache is behind it. It is not stored when the watch delivered the write
 * before the write's response arrived (the cache already holds that version or a newer one), and it is dropped as
 * soon as the watch delivers that version or a newer one, when the cache turns out to hold it at a pick, on relist,
 * and when the object is gone. Entries hold the write responses after the operator's cache transform
 * ({@link keepWritten}), so they are no larger than the cached copies they stand in for.
 */
import { compareResourceVersions, pickFreshest } from '../core/versions.js';
import { keepsIdentity, stripManagedFields, type CacheTransform } from '../kube/transform.js';
import type { KubeObject } from '../kube/types.js';

/** Per-key record of the engine's own writes. */
export class FreshnessTracker {
  private readonly written = new Map<string, KubeObject>();

  /**
   * Call with the API's answer to each write (after {@link keepWritten}) and the watch cache's current copy. Nothing
   * is remembered when the cache already holds that version of the same object or a newer one (the watch delivered
   * the write before its response arrived): no later watch event would remove the entry.
   */
  recordWrite(key: string, object: KubeObject, cached: KubeObject | undefined): void {
    if (cached && caughtUp(cached, object)) {
      this.written.delete(key);
      return;
    }
    this.written.set(key, object);
  }

  /** Call for every upsert the watch delivers. */
  observe(key: string, object: KubeObject): void {
    const written = this.written.get(key);
    // The watch delivered our write or a later version: from now on the cache is at least as new. A new object under
    // the same name also ends the record (our write was to its predecessor).
    if (written && (caughtUp(object, written) || object.metadata.uid !== written.metadata.uid)) {
      this.written.delete(key);
    }
  }

  /** Call after a relist: the list is newer than any write before it. */
  resynced(): void {
    this.written.clear();
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  /** How many writes are remembered (tests, diagnostics). */
  get size(): number {
    return this.written.size;
  }

  /** The copy to handle: the cached one, or our own write when that is newer. */
  pick(key: string, cached: KubeObject | undefined): KubeObject | undefined {
    const written = this.written.get(key);
    if (!written) return cached;
    if (cached && (cached.metadata.uid !== written.metadata.uid || caughtUp(cached, written))) {
      // The cache wins and always will (versions only grow): the entry is of no further use.
      this.written.delete(key);
      return cached;
    }
    // Entries are dropped once confirmed, so a remembered write is by definition not yet confirmed.
    return pickFreshest(cached, written, false);
  }
}

/**
 * Whether `cached` is the object `written` was written to, at that version or a newer one. Versions that are not
 * canonical integers are only known equal.
 */
function caughtUp(cached: KubeObject, written: KubeObject): boolean {
  if (cached.metadata.uid !== written.metadata.uid) return false;
  const a = cached.metadata.resourceVersion;
  const b = written.metadata.resourceVersion;
  const order = compareResourceVersions(a, b);
  return order === undefined ? a === b : order >= 0;
}

/**
 * What the engine keeps of a write response: the operator's cache transform applied to it (default: drop
 * `managedFields`), so the remembered copy and what handlers get from it have the cached copies' shape. Falls back
 * to the untransformed response when the transform throws or changes an identity field (the watcher logs those).
 */
export function keepWritten(object: KubeObject, transform: CacheTransform | undefined): KubeObject {
  try {
    const result = (transform ?? stripManagedFields)(object);
    return keepsIdentity(object, result) ? result : object;
  } catch {
    return object;
  }
}
