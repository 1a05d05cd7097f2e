/**
 * JSON patches of `metadata` that are safe under concurrent writers, without locking the whole object.
 *
 * A merge patch would replace the finalizer array wholesale, so two instances adding or removing their finalizers at
 * once would clobber each other; a resourceVersion precondition would make every unrelated write (another node's
 * status) a conflict. Instead every operation is guarded by a `test` of exactly what it relies on:
 * - add a finalizer: append (`/metadata/finalizers/-`), or, when the array is absent, `test` it is absent (null)
 *   and create it; with `guardAppends` (the previous attempt may have gone through unseen), `test` the whole array
 *   first, so that a repeat finds it changed and fails instead of appending a second copy;
 * - remove a finalizer: `test` the element at its index, then remove that index (a concurrent removal that shifted
 *   indexes makes the test fail instead of removing someone else's finalizer);
 * - set an annotation/label: `add` (creates or replaces); create the map when absent, guarded like the array;
 * - delete an annotation/label: `test` its current value, then remove it.
 * When any test fails the API answers 422 (or 409); the writer refetches the object and rebuilds the patch.
 *
 * Guarantees: every operation but a plain append is idempotent by its guard: applied a second time, its `test` fails
 * (the array now exists, the element at the index is another one or none, the annotation has another value or none),
 * so a retried request never removes a neighbour nor adds twice. A plain append is not: it is the one operation
 * whose guard would conflict with every concurrent append of other instances, so it is guarded only on request.
 */

/** One RFC 6902 operation. */
export type JsonPatchOp =
  { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

/** The metadata the builder reads. */
export interface PatchableMetadata {
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** What the caller wants changed. */
export interface MetadataChanges {
  addFinalizers?: readonly string[];
  removeFinalizers?: readonly string[];
  /** value to set, null to delete */
  labels?: Record<string, string | null>;
  annotations?: Record<string, string | null>;
}

/** How {@link buildMetadataPatch} guards its operations. */
export interface MetadataPatchOptions {
  /**
   * Guard appends to an existing finalizer array with a `test` of the whole array as `current` has it. For a retry
   * after a request whose outcome is unknown (a 504, a reset connection): if that request went through, the array
   * has changed, the guard fails, and the rebuilt patch (from a fresh read) finds the finalizer present. The cost is
   * a conflict whenever anyone else changed the array meanwhile, so it is off by default. Defaults to false.
   */
  guardAppends?: boolean;
}

/** Escapes one JSON pointer token (RFC 6901). */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Builds the guarded patch turning `current` into the wanted state; empty when nothing needs to change. */
export function buildMetadataPatch(
  current: PatchableMetadata,
  changes: MetadataChanges,
  options: MetadataPatchOptions = {},
): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const finalizers = current.finalizers;
  const additions = [...new Set(changes.addFinalizers ?? [])].filter((name) => !finalizers?.includes(name));
  // First, before any removal below changes the array: the guard is about the array as `current` has it.
  if (options.guardAppends && finalizers !== undefined && additions.length > 0) {
    ops.push({ op: 'test', path: '/metadata/finalizers', value: [...finalizers] });
  }
  // Removals first, from the highest index down, so earlier indexes stay valid within this patch.
  const removals: number[] = [];
  for (const name of changes.removeFinalizers ?? []) {
    finalizers?.forEach((value, index) => {
      if (value === name) removals.push(index);
    });
  }
  for (const index of removals.sort((a, b) => b - a)) {
    ops.push({ op: 'test', path: `/metadata/finalizers/${index}`, value: finalizers?.[index] });
    ops.push({ op: 'remove', path: `/metadata/finalizers/${index}` });
  }
  if (additions.length > 0) {
    if (finalizers === undefined) {
      ops.push({ op: 'test', path: '/metadata/finalizers', value: null });
      ops.push({ op: 'add', path: '/metadata/finalizers', value: additions });
    } else {
      for (const name of additions) ops.push({ op: 'add', path: '/metadata/finalizers/-', value: name });
    }
  }
  mapOps(ops, 'labels', current.labels, changes.labels);
  mapOps(ops, 'annotations', current.annotations, changes.annotations);
  return ops;
}

function mapOps(
  ops: JsonPatchOp[],
  field: 'labels' | 'annotations',
  current: Record<string, string> | undefined,
  changes: Record<string, string | null> | undefined,
): void {
  if (!changes) return;
  const sets = Object.entries(changes).filter(
    (entry): entry is [string, string] => entry[1] !== null && current?.[entry[0]] !== entry[1],
  );
  const deletes = Object.keys(changes).filter((key) => changes[key] === null && current?.[key] !== undefined);
  if (current === undefined) {
    if (sets.length === 0) return;
    ops.push({ op: 'test', path: `/metadata/${field}`, value: null });
    ops.push({ op: 'add', path: `/metadata/${field}`, value: Object.fromEntries(sets) });
    return;
  }
  for (const [key, value] of sets) ops.push({ op: 'add', path: `/metadata/${field}/${pointerToken(key)}`, value });
  for (const key of deletes) {
    const path = `/metadata/${field}/${pointerToken(key)}`;
    ops.push({ op: 'test', path, value: current[key] });
    ops.push({ op: 'remove', path });
  }
}

/**
 * The metadata as it most likely is after `ops` failed on a guard that a container was absent: created meanwhile by
 * a concurrent writer (typically another instance adding its finalizer to a new object at the same moment). Rebuilding
 * the patch from this guess (append instead of create) succeeds without re-reading the object in the common case;
 * when the guess is wrong, the rebuilt patch's own guards fail and the writer re-reads. Undefined when no absent
 * guard was in `ops`, so the failure must have another cause.
 */
export function assumeContainersCreated(
  current: PatchableMetadata,
  ops: readonly JsonPatchOp[],
): PatchableMetadata | undefined {
  const absent = new Set(
    ops.filter((op) => op.op === 'test' && op.value === null).map((op) => op.path.slice('/metadata/'.length)),
  );
  if (absent.size === 0) return undefined;
  return {
    ...current,
    ...(absent.has('finalizers') ? { finalizers: [] } : {}),
    ...(absent.has('labels') ? { labels: {} } : {}),
    ...(absent.has('annotations') ? { annotations: {} } : {}),
  };
}
