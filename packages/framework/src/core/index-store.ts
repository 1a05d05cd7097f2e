/**
 * In-memory indexes (Kopf's `@kopf.index`): per index, key -> the values the indexed objects returned for that key.
 *
 * Each object contributes what its indexing function returned for it, a record of key -> value (several keys at once
 * are fine). When the object changes, its previous contribution is replaced whole; when it is deleted or stops
 * matching, it is removed. A key whose last value went is removed too, so no key maps to an empty list. Pure: the
 * engine feeds it from the watch events.
 */

/** What an indexing function returns for one object: key -> value, or nothing to leave the object out. */
export type IndexResult<V = unknown> = Readonly<Record<string, V>> | ReadonlyMap<string, V> | undefined | void;

/** A read-only index, as handlers see it (`ctx.indexes.<id>`, `ctx.index(id)`). */
export interface ObjectIndex<V = unknown> {
  /**
   * The values contributed under `key`, one per contributing object, in the order the objects first contributed
   * under it (an update keeps an object's place); `[]` for none.
   */
  get(key: string): readonly V[];
  /** Whether any object contributed under `key`. */
  has(key: string): boolean;
  /** Every key with at least one value. */
  keys(): string[];
  /** Number of keys. */
  readonly size: number;
}

/** One index's content (see the module comment). */
export class IndexStore<V = unknown> implements ObjectIndex<V> {
  /** index key -> object key -> value. */
  private readonly byKey = new Map<string, Map<string, V>>();
  /** object key -> the index keys it contributes to. */
  private readonly byObject = new Map<string, string[]>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): readonly V[] {
    const values = this.byKey.get(key);
    return values ? [...values.values()] : [];
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Replaces what the object `objectKey` contributes with `result` (nothing, for `undefined`). */
  set(objectKey: string, result: IndexResult<V>): void {
    const entries = indexEntries(result);
    const keys = entries.map(([key]) => key);
    const kept = new Set(keys);
    this.drop(
      objectKey,
      (this.byObject.get(objectKey) ?? []).filter((key) => !kept.has(key)),
    );
    for (const [key, value] of entries) {
      let values = this.byKey.get(key);
      if (!values) this.byKey.set(key, (values = new Map()));
      // Map.set on a present key keeps its position: an updated object stays where it was among the values.
      values.set(objectKey, value);
    }
    if (keys.length > 0) this.byObject.set(objectKey, keys);
    else this.byObject.delete(objectKey);
  }

  /** Removes what the object `objectKey` contributed. */
  remove(objectKey: string): void {
    this.drop(objectKey, this.byObject.get(objectKey) ?? []);
    this.byObject.delete(objectKey);
  }

  private drop(objectKey: string, keys: readonly string[]): void {
    for (const key of keys) {
      const values = this.byKey.get(key);
      if (!values) continue;
      values.delete(objectKey);
      if (values.size === 0) this.byKey.delete(key);
    }
  }

  /** Objects contributing at least one value (tests, diagnostics). */
  get objects(): number {
    return this.byObject.size;
  }
}

/**
 * The entries of an indexing function's result. Throws for anything but a plain object, a Map or nothing: a string
 * or an array returned by mistake would otherwise be indexed under its character positions.
 */
export function indexEntries<V>(result: IndexResult<V>): Array<[string, V]> {
  if (result === undefined || result === null) return [];
  if (result instanceof Map) return [...(result as ReadonlyMap<string, V>).entries()].map(([k, v]) => [String(k), v]);
  if (typeof result !== 'object' || Array.isArray(result) || isPromiseLike(result)) {
    throw new TypeError(
      `an indexing function must return a record of key -> value (or undefined), not ${describe(result)}`,
    );
  }
  return Object.entries(result as Record<string, V>);
}

function isPromiseLike(value: object): boolean {
  return typeof (value as { then?: unknown }).then === 'function';
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null && isPromiseLike(value)) return 'a promise (it must be synchronous)';
  return typeof value;
}
