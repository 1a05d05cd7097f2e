/**
 * Which objects claim which destinations, so that a change of one object is planned from the few destinations it
 * touches instead of from every StaticRoute (a full reconcile of 10,000 routes costs seconds; one object's costs
 * microseconds).
 *
 * A claim is a destination in an object's spec, whatever the node, the selector or the safety rules make of it:
 * those are decided by {@link computeDesiredState} for the objects in scope. The index only has to guarantee that
 * every object that could own or contest a destination is in scope when that destination is planned.
 */

/** What the index remembers of one object. */
interface Entry {
  /** Changes whenever something that decides the object's routes changes (spec, deletion, seed annotation). */
  fingerprint: string;
  keys: readonly string[];
}

const NO_KEYS: readonly string[] = [];

/** Destination -> claimants, and object -> destinations. */
export class ClaimIndex {
  private readonly byObject = new Map<string, Entry>();
  /** One name (the usual case) or several; a Set per destination would cost ~10x the memory at 10,000 routes. */
  private readonly byDestination = new Map<string, string | string[]>();

  /** Objects indexed. */
  get size(): number {
    return this.byObject.size;
  }

  /**
   * Records what `name` claims. Returns undefined when `fingerprint` is unchanged (nothing to plan), else the
   * destinations whose claimants changed: the old and the new ones (an edit may drop a destination).
   *
   * @param keys computes the claimed destinations; only called when the fingerprint changed
   */
  set(name: string, fingerprint: string, keys: () => readonly string[]): readonly string[] | undefined {
    const previous = this.byObject.get(name);
    if (previous?.fingerprint === fingerprint) return undefined;
    const next = keys();
    if (previous) for (const key of previous.keys) this.unlink(key, name);
    for (const key of next) this.link(key, name);
    this.byObject.set(name, { fingerprint, keys: next });
    if (!previous || previous.keys.length === 0) return next;
    return [...new Set([...previous.keys, ...next])];
  }

  /** Forgets `name`; returns the destinations it claimed. */
  delete(name: string): readonly string[] {
    const previous = this.byObject.get(name);
    if (!previous) return NO_KEYS;
    this.byObject.delete(name);
    for (const key of previous.keys) this.unlink(key, name);
    return previous.keys;
  }

  /** The destinations `name` claims (empty when unknown or its spec is invalid). */
  keysOf(name: string): readonly string[] {
    return this.byObject.get(name)?.keys ?? NO_KEYS;
  }

  /** The objects claiming `key`. */
  claimants(key: string): readonly string[] {
    const value = this.byDestination.get(key);
    if (value === undefined) return NO_KEYS;
    return typeof value === 'string' ? [value] : value;
  }

  /** Names of every indexed object. */
  names(): IterableIterator<string> {
    return this.byObject.keys();
  }

  private link(key: string, name: string): void {
    const value = this.byDestination.get(key);
    if (value === undefined) this.byDestination.set(key, name);
    else if (typeof value === 'string') {
      if (value !== name) this.byDestination.set(key, [value, name]);
    } else if (!value.includes(name)) value.push(name);
  }

  private unlink(key: string, name: string): void {
    const value = this.byDestination.get(key);
    if (value === undefined) return;
    if (typeof value === 'string') {
      if (value === name) this.byDestination.delete(key);
      return;
    }
    const rest = value.filter((item) => item !== name);
    this.byDestination.set(key, rest.length === 1 ? (rest[0] as string) : rest);
  }
}

/** What an incremental pass plans and reports. */
export interface AffectedScope {
  /** Objects whose assessment is exact and reported: claimants of the changed destinations, and the changed objects. */
  assessed: Set<string>;
  /** Destinations planned: every destination of an assessed object. The plan of each is exact. */
  keys: Set<string>;
  /** Objects given to the desired-state computation: every claimant of a planned destination. */
  objects: Set<string>;
}

/**
 * The scope of an incremental pass after `changedKeys` changed claimants and `changedObjects` changed (or want
 * their outcome re-checked).
 *
 * Exactness: a destination's route depends only on the objects claiming it, and an object's outcome only on its own
 * destinations. So planning every destination of the assessed objects, from every claimant of those destinations,
 * gives each planned route and each assessed object's outcome exactly as a full reconcile would. A changed
 * destination's other claimants are assessed too: deleting or editing the winner of a conflict hands the destination
 * to the next claimant, whose state changes from Conflict to Applied.
 */
export function affectedScope(
  index: ClaimIndex,
  changedKeys: Iterable<string>,
  changedObjects: Iterable<string>,
): AffectedScope {
  const assessed = new Set<string>(changedObjects);
  const keys = new Set<string>(changedKeys);
  for (const key of keys) for (const name of index.claimants(key)) assessed.add(name);
  for (const name of assessed) for (const key of index.keysOf(name)) keys.add(key);
  const objects = new Set<string>(assessed);
  for (const key of keys) for (const name of index.claimants(key)) objects.add(name);
  return { assessed, keys, objects };
}
