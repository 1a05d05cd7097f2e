/**
 * Structural diff of two JSON values, in the shape handlers receive as `ctx.diff`.
 *
 * Objects are compared key by key (recursively); arrays and scalars are compared as whole values. The result is
 * sorted by path so that it is deterministic whatever the key order of the inputs.
 */
import { isPlainObject } from './paths.js';

/** One difference between the old and the new state. */
export interface DiffOp {
  /** `add`: absent before; `remove`: absent now; `change`: present in both with different values. */
  op: 'add' | 'change' | 'remove';
  /** Keys from the root of the compared values, e.g. `['spec', 'gateway']`. */
  path: string[];
  /** Value before (absent for `add`). */
  old?: unknown;
  /** Value after (absent for `remove`). */
  new?: unknown;
}

/** Deep equality of JSON values (key order ignored for objects, significant for arrays). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keysA = Object.keys(a).filter((key) => a[key] !== undefined);
    const keysB = Object.keys(b).filter((key) => b[key] !== undefined);
    return keysA.length === keysB.length && keysA.every((key) => jsonEqual(a[key], b[key]));
  }
  return false;
}

/**
 * Lists the differences from `oldValue` to `newValue`. `undefined` stands for "absent": diffing `undefined` against
 * an object yields one `add` of the whole object at the root path.
 */
export function diffValues(oldValue: unknown, newValue: unknown, basePath: readonly string[] = []): DiffOp[] {
  const ops: DiffOp[] = [];
  collect(oldValue, newValue, [...basePath], ops);
  return ops.sort((x, y) => comparePaths(x.path, y.path));
}

function collect(oldValue: unknown, newValue: unknown, path: string[], ops: DiffOp[]): void {
  if (oldValue === undefined && newValue === undefined) return;
  if (oldValue === undefined) {
    ops.push({ op: 'add', path, new: newValue });
    return;
  }
  if (newValue === undefined) {
    ops.push({ op: 'remove', path, old: oldValue });
    return;
  }
  if (isPlainObject(oldValue) && isPlainObject(newValue)) {
    const keys = new Set([...Object.keys(oldValue), ...Object.keys(newValue)]);
    for (const key of keys) collect(oldValue[key], newValue[key], [...path, key], ops);
    return;
  }
  if (!jsonEqual(oldValue, newValue)) ops.push({ op: 'change', path, old: oldValue, new: newValue });
}

function comparePaths(a: readonly string[], b: readonly string[]): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
