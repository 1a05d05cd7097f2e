/**
 * Whether `a` is a later version than `b` of the same object. resourceVersions are etcd revisions in practice;
 * anything else is taken as "different, so newer" (the API's copy wins).
 */
export function isNewerVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === b || a === undefined) return false;
  if (b === undefined) return true;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
  return true;
}

/**
 * Which known objects a completed LIST shows to be gone: those absent from it, not reported by the watch while it
 * ran, and not known at a version newer than the list's. A list served from the API server's cache
 * (`resourceVersion=0`) can be behind the watch: an object the watch delivered after that version is simply not in
 * it yet, and forgetting it would remove its routes until the next event.
 *
 * @param known - name → resourceVersion of every object the agent knows.
 * @param listed - names in the list.
 * @param listVersion - the list's `metadata.resourceVersion` (undefined: nothing is taken as gone).
 * @param seenDuringList - names the watch reported (upserted) while the list ran.
 */
export function goneAfterList(
  known: ReadonlyMap<string, string | undefined>,
  listed: ReadonlySet<string>,
  listVersion: string | undefined,
  seenDuringList: ReadonlySet<string>,
): string[] {
  if (listVersion === undefined) return [];
  const gone: string[] = [];
  for (const [name, version] of known) {
    if (listed.has(name) || seenDuringList.has(name)) continue;
    if (version !== undefined && isNewerVersion(version, listVersion)) continue;
    gone.push(name);
  }
  return gone;
}
