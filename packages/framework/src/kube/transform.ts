/**
 * Cache transforms: what the watch cache keeps of each object.
 *
 * Every object a {@link Watcher} lists or receives goes through its transform before it is stored and delivered, so
 * the cache (and everything handed to handlers) holds only what the operator needs. The default drops
 * `metadata.managedFields`, the server-side-apply bookkeeping, as controller-runtime's `TransformStripManagedFields`
 * and kube-rs's reflector `.modify()` recipes do: it is typically the largest part of a small object's metadata
 * (one entry per field manager and subresource, each a nested map of every field it owns), and nothing in the
 * framework reads it: change detection uses spec, labels and annotations, and the guarded metadata patches test
 * only finalizers, labels and annotations.
 */
import type { KubeObject } from './types.js';

/**
 * Turns an object as the API server sent it into what the watch cache keeps.
 *
 * Contract: return the object itself or a new one, never throw. The framework needs the result to keep
 * `metadata.name`, `namespace`, `uid`, `resourceVersion`, `generation`, `deletionTimestamp` and `finalizers`
 * unchanged (the watcher refuses a result whose identity fields differ and caches the object untransformed), and
 * should keep `spec`, `labels` and `annotations` whole: the engine compares them (the essence) with the diff-base,
 * so a field the cache lacks looks like a change (the copies its own writes return go through the same transform);
 * the diff-base and progress live in the framework's own annotations; its guarded patches are built from the cached
 * labels, annotations and finalizers. `status`, other top-level fields and kubectl's last-applied-configuration
 * annotation (which the essence ignores) are safe to drop. The transform runs synchronously in the watch loop, once
 * per list item and watch event: keep it cheap. Copy rather than `delete` properties (see {@link stripManagedFields}).
 */
export type CacheTransform = (object: KubeObject) => KubeObject;

/**
 * The default {@link CacheTransform}: drops `metadata.managedFields`; returns the object unchanged when it has none.
 *
 * The metadata is copied without the field instead of `delete`-ing it: custom resources arrive with their keys sorted
 * (`managedFields` is not the last key), and V8 turns an object into a slower, larger dictionary-mode object when a
 * property other than the last one added is deleted.
 *
 * @example
 * ```ts
 * // Also drop kubectl's copy of the last applied manifest (the essence ignores it):
 * const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
 * const slim: CacheTransform = (object) => {
 *   const stripped = stripManagedFields(object);
 *   const annotations = stripped.metadata.annotations;
 *   if (annotations?.[LAST_APPLIED] === undefined) return stripped;
 *   const { [LAST_APPLIED]: _, ...rest } = annotations;
 *   return { ...stripped, metadata: { ...stripped.metadata, annotations: rest } };
 * };
 * ```
 */
export function stripManagedFields<T extends KubeObject>(object: T): T {
  const metadata = object.metadata as KubeObject['metadata'] | undefined;
  if (metadata?.managedFields === undefined) return object;
  const { managedFields: _dropped, ...rest } = metadata;
  return { ...object, metadata: rest } as T;
}

/**
 * Whether a transform kept what the framework cannot do without (see {@link CacheTransform}): the identity and
 * lifecycle fields of the metadata. Labels and annotations are not compared: dropping kubectl's last-applied
 * annotation is legitimate.
 */
export function keepsIdentity(before: KubeObject, after: unknown): boolean {
  const a = before.metadata;
  const b = (after as Partial<KubeObject> | null | undefined)?.metadata;
  if (typeof b !== 'object' || b === null) return false;
  return (
    a.name === b.name &&
    a.namespace === b.namespace &&
    a.uid === b.uid &&
    a.resourceVersion === b.resourceVersion &&
    a.generation === b.generation &&
    a.deletionTimestamp === b.deletionTimestamp &&
    sameStrings(a.finalizers, b.finalizers)
  );
}

function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((value, index) => value === b[index]);
}
