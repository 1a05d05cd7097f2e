/**
 * Field paths: how handlers name a field (`'spec.gateway'` or `['metadata', 'labels', 'app.kubernetes.io/name']`).
 *
 * A dotted string is split on dots; keys that themselves contain dots (label and annotation keys) need the array
 * form. Paths address object members only: arrays are compared as whole values, as Kopf does, because list items
 * have no stable identity.
 */

/** A field path: a dotted string or the list of keys. */
export type FieldPath = string | readonly string[];

/** Normalizes a path to its list of keys. Empty segments are rejected: `'spec..x'` is a typo, not a path. */
export function parseFieldPath(path: FieldPath): string[] {
  const keys = typeof path === 'string' ? path.split('.') : [...path];
  if (keys.length === 0 || keys.some((key) => key.length === 0)) {
    throw new Error(`invalid field path ${JSON.stringify(path)}`);
  }
  return keys;
}

/** Reads the value at `path`, or undefined when any key on the way is missing or not an object. */
export function getField(value: unknown, path: readonly string[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (!isPlainObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** True when `path` starts with `prefix` (key by key). */
export function hasPathPrefix(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((key, index) => path[index] === key);
}

/** True for JSON objects (not arrays, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
