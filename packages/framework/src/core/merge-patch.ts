/**
 * JSON merge patches (RFC 7386) that replace rather than merge.
 *
 * A merge patch merges objects recursively: sending `{ state: 'Applied' }` over a stored `{ state: 'Failed',
 * message: 'x' }` keeps `message`. Writers that own a value whole (one entry of a report, a handler outcome) must say
 * which keys went away, with explicit nulls. These helpers compute that from what was written before.
 */

/** A JSON value as a merge patch sees it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The merge patch that turns `previous` into exactly `next`: every key of `next`, and `null` for every key of
 * `previous` that `next` lacks, at every level of nested objects. Arrays and scalars are replaced whole (as RFC 7386
 * does). `next === undefined` removes the value (`null`).
 */
export function replacementPatch(previous: unknown, next: unknown): unknown {
  if (next === undefined) return null;
  if (!isPlainObject(next) || !isPlainObject(previous)) return next;
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(next)) {
    if (value === undefined) continue;
    patch[key] = replacementPatch(previous[key], value);
  }
  for (const key of Object.keys(previous)) {
    if (!(key in patch)) patch[key] = null;
  }
  return patch;
}

/** Deep equality of JSON-like values (key order ignored; `undefined` members count as absent). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => sameJson(item, b[index]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keysA = Object.keys(a).filter((key) => a[key] !== undefined);
  const keysB = Object.keys(b).filter((key) => b[key] !== undefined);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) => sameJson(a[key], b[key]));
}
