/**
 * Choosing the freshest known copy of an object.
 *
 * After the framework patches an object, the watch may still deliver older versions (queued before the patch). If
 * the engine handled such a stale copy it would, for example, miss the diff-base it just wrote and run create
 * handlers twice. So the engine remembers the object returned by its own last write and uses whichever copy is newer.
 *
 * resourceVersion is documented as opaque, but etcd-backed servers issue increasing integers and Kubernetes 1.35
 * made comparing them official (KEP-5504). When both versions are canonical integers they are compared; otherwise the
 * engine falls back to "own write until the watch has delivered that version".
 */

/** Compares two resourceVersions: negative, zero, positive; undefined when either is not a canonical integer. */
export function compareResourceVersions(a: string, b: string): number | undefined {
  if (!CANONICAL.test(a) || !CANONICAL.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const CANONICAL = /^(0|[1-9][0-9]*)$/;

/**
 * Picks the copy to handle: the watch cache's, or the one our own last write returned.
 *
 * @param confirmed - the watch has delivered our write's version (or a relist happened since), so the cache is at
 *   least as new as our write.
 */
export function pickFreshest<T extends { metadata: { resourceVersion: string; uid: string } }>(
  cached: T | undefined,
  written: T | undefined,
  confirmed: boolean,
): T | undefined {
  if (!written) return cached;
  // Gone, or recreated under the same name: both happened after our write succeeded, so the cache wins.
  if (!cached || cached.metadata.uid !== written.metadata.uid) return cached;
  const order = compareResourceVersions(cached.metadata.resourceVersion, written.metadata.resourceVersion);
  if (order !== undefined) return order >= 0 ? cached : written;
  return confirmed ? cached : written;
}
