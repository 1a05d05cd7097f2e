/**
 * Remembers the object returned by the engine's own last write per key, until the watch has caught up with it, so
 * the processor never handles a copy older than its own write (see `core/versions.ts`).
 */
import { pickFreshest } from '../core/versions.js';
import type { KubeObject } from '../kube/types.js';

/** Per-key record of the engine's own writes. */
export class FreshnessTracker {
  private readonly written = new Map<string, KubeObject>();

  /** Call with the API's answer to each write. */
  recordWrite(key: string, object: KubeObject): void {
    this.written.set(key, object);
  }

  /** Call for every upsert the watch delivers. */
  observe(key: string, object: KubeObject): void {
    const written = this.written.get(key);
    if (written && written.metadata.resourceVersion === object.metadata.resourceVersion) {
      // The watch delivered our write: from now on the cache is at least as new.
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

  /** The copy to handle: the cached one, or our own write when that is newer. */
  pick(key: string, cached: KubeObject | undefined): KubeObject | undefined {
    // Entries are dropped once confirmed, so a remembered write is by definition not yet confirmed.
    return pickFreshest(cached, this.written.get(key), false);
  }
}
