/**
 * Which primary objects a change of a secondary (watched) object concerns (pure).
 *
 * Two ways, as controller-runtime has them: `owns` follows the secondary's controller owner reference
 * (`EnqueueRequestForOwner` with `OnlyControllerOwner`), `map` is the operator's own function
 * (`EnqueueRequestsFromMapFunc`). For an update, both the copy before and the copy after are mapped and the keys
 * united, so a secondary that moves from one primary to another (its owner or a label changed) concerns both.
 */

/** A primary object, by name (and namespace). A string is a name, or `namespace/name`. */
export type PrimaryKey = string | { name: string; namespace?: string };

/** What a `map` function may return: one key, several, or nothing. */
export type PrimaryKeys = PrimaryKey | readonly PrimaryKey[] | undefined | null | void;

/** The primary resource, as owner references name it. */
export interface OwnerKind {
  /** API group of the primary (`''` for core). */
  group: string;
  kind: string;
  namespaced: boolean;
}

/** The parts of a secondary object that key mapping reads. */
export interface MappedObject {
  metadata: { namespace?: string; ownerReferences?: unknown };
}

interface OwnerReference {
  apiVersion?: unknown;
  kind?: unknown;
  name?: unknown;
  controller?: unknown;
}

/**
 * The keys of the primaries that control `object`: its owner references with `controller: true` whose group and kind
 * are the primary's (the version is ignored, as controller-runtime does). A namespaced primary is looked up in the
 * secondary's namespace (owner references never cross namespaces).
 */
export function controllerOwnerKeys(object: MappedObject, owner: OwnerKind): string[] {
  const references = object.metadata.ownerReferences;
  if (!Array.isArray(references)) return [];
  const keys: string[] = [];
  for (const reference of references as OwnerReference[]) {
    if (reference?.controller !== true || reference.kind !== owner.kind || typeof reference.name !== 'string') continue;
    if (typeof reference.apiVersion !== 'string' || groupOf(reference.apiVersion) !== owner.group) continue;
    if (!owner.namespaced) keys.push(reference.name);
    else if (object.metadata.namespace) keys.push(`${object.metadata.namespace}/${reference.name}`);
  }
  return keys;
}

/**
 * Normalizes what a `map` function returned to queue keys (`namespace/name` or `name`). For a namespaced primary, a
 * key without a namespace means the secondary's own namespace.
 */
export function primaryKeys(result: PrimaryKeys, namespaced: boolean, defaultNamespace: string | undefined): string[] {
  if (result === undefined || result === null) return [];
  const items: readonly PrimaryKey[] =
    typeof result === 'string' || !Array.isArray(result) ? [result as PrimaryKey] : result;
  const keys: string[] = [];
  for (const item of items) {
    const key = primaryKey(item, namespaced, defaultNamespace);
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

function primaryKey(item: PrimaryKey, namespaced: boolean, defaultNamespace: string | undefined): string | undefined {
  if (typeof item === 'string') {
    if (item === '') return undefined;
    if (!namespaced || item.includes('/')) return item;
    return defaultNamespace ? `${defaultNamespace}/${item}` : undefined;
  }
  if (!item || typeof item.name !== 'string' || item.name === '') return undefined;
  if (!namespaced) return item.name;
  const namespace = item.namespace ?? defaultNamespace;
  return namespace ? `${namespace}/${item.name}` : undefined;
}

/** Keys of several mappings, each once, in first-seen order. */
export function unitedKeys(...lists: ReadonlyArray<readonly string[]>): string[] {
  return [...new Set(lists.flat())];
}

/** The API group of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> `''`). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}
