/**
 * Dead-instance detection for node scope (pure).
 *
 * Each instance holds one finalizer (`<prefix>/<name part>`) and one status entry (`status.<field>.<instanceId>`)
 * on every object. When a Node is gone for good, its instance will never release them, so the survivors do. An
 * instance counts as dead when no live Node has its id; since finalizer names of long ids are hashes, the live set is
 * turned into finalizer names (hashing is deterministic) rather than the other way round.
 *
 * Caveat: in node scope the instance id must be the Node's name (the CLI defaults it to NODE_NAME) for this to work.
 */
import { instanceFinalizer, isOwnFinalizer } from './finalizers.js';
import { isPlainObject } from './paths.js';

/** Finalizers under `prefix` that belong to no live instance. */
export function deadInstanceFinalizers(
  finalizers: readonly string[] | undefined,
  prefix: string,
  liveInstanceIds: Iterable<string>,
): string[] {
  const live = new Set<string>();
  for (const id of liveInstanceIds) live.add(instanceFinalizer(prefix, id));
  return [...new Set((finalizers ?? []).filter((name) => isOwnFinalizer(name, prefix) && !live.has(name)))];
}

/** Instance ids with a status entry but no live instance. */
export function deadStatusEntries(
  status: unknown,
  instanceStatusField: string,
  liveInstanceIds: Iterable<string>,
): string[] {
  if (!isPlainObject(status)) return [];
  const entries = status[instanceStatusField];
  if (!isPlainObject(entries)) return [];
  const live = new Set(liveInstanceIds);
  return Object.keys(entries).filter((id) => !live.has(id));
}
