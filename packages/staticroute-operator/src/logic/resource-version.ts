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
