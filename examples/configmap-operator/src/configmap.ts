/**
 * Decisions about the rendered ConfigMap, kept pure (no API calls) so they are unit-tested: what it should look
 * like, whether an existing one is ours, whether it matches, and how to bring it in line.
 *
 * Ownership is decided by the owner reference's uid, never by name or label: a ConfigMap that merely carries our
 * label, or one owned by an earlier ConfigTemplate of the same name (deleted and re-created), is someone else's and
 * is never overwritten or deleted.
 */
import {
  API_VERSION,
  KIND,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  TEMPLATE_LABEL,
  type ConfigMap,
  type ConfigMapBody,
  type OwnerReference,
} from './types.js';

/** The ConfigTemplate a ConfigMap is rendered from (the fields the decisions need). */
export interface TemplateIdentity {
  name: string;
  namespace: string;
  uid: string;
}

/** The ConfigMap a template should produce under `targetName` with `data`. */
export function desiredConfigMap(
  owner: TemplateIdentity,
  targetName: string,
  data: Record<string, string>,
): ConfigMapBody {
  const ownerReference: OwnerReference = {
    apiVersion: API_VERSION,
    kind: KIND,
    name: owner.name,
    uid: owner.uid,
    // `controller: true` marks us as the managing controller (kubectl and other tools show it). No
    // blockOwnerDeletion: it would need `update` on configtemplates/finalizers, and our own finalizer already
    // keeps the template until the ConfigMap is gone.
    controller: true,
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: targetName,
      namespace: owner.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [TEMPLATE_LABEL]: owner.name },
      ownerReferences: [ownerReference],
    },
    data,
  };
}

/** The owner references of an object (empty when none). */
export function ownerReferencesOf(object: ConfigMap | ConfigMapBody): OwnerReference[] {
  const references = object.metadata.ownerReferences;
  return Array.isArray(references) ? (references as OwnerReference[]) : [];
}

/** True when `configMap` is owned by the ConfigTemplate with `ownerUid`. */
export function isOwnedBy(configMap: ConfigMap | ConfigMapBody, ownerUid: string): boolean {
  return ownerReferencesOf(configMap).some((reference) => reference.uid === ownerUid);
}

/** Who owns a ConfigMap, for messages: `ConfigTemplate/other`, `unmanaged`, ... */
export function describeOwner(configMap: ConfigMap): string {
  const controller =
    ownerReferencesOf(configMap).find((reference) => reference.controller) ?? ownerReferencesOf(configMap)[0];
  return controller
    ? `owned by ${controller.kind}/${controller.name} (uid ${controller.uid})`
    : 'not owned by anything';
}

/** True when `existing` (ours) already matches `desired`: same data, our labels present. */
export function isInSync(existing: ConfigMap, desired: ConfigMapBody): boolean {
  if (!sameStrings(existing.data ?? {}, desired.data)) return false;
  const labels = existing.metadata.labels ?? {};
  return Object.entries(desired.metadata.labels).every(([key, value]) => labels[key] === value);
}

/** A JSON patch operation (RFC 6902), as far as {@link syncPatch} uses them. */
export type JsonPatchOp = { op: 'test'; path: string; value: unknown } | { op: 'add'; path: string; value: unknown };

/**
 * The JSON patch that turns `existing` (ours) into `desired`.
 *
 * Why a JSON patch and not a merge patch: `add /data` replaces the whole map, so keys removed from the template
 * disappear from the ConfigMap (a merge patch would keep them unless each were nulled). The `test` of the
 * resourceVersion makes the write conditional: if someone changed the ConfigMap after we read it (for example
 * took it over), the API refuses the patch and the handler runs again with a fresh read, instead of overwriting.
 */
export function syncPatch(existing: ConfigMap, desired: ConfigMapBody): JsonPatchOp[] {
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: existing.metadata.resourceVersion },
    { op: 'add', path: '/data', value: desired.data },
    // Keep labels others put on the ConfigMap; only ours are (re)set.
    { op: 'add', path: '/metadata/labels', value: { ...existing.metadata.labels, ...desired.metadata.labels } },
  ];
}

/** Keys added, changed and removed between two data maps, for event messages. */
export function dataChanges(
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
): { added: string[]; changed: string[]; removed: string[] } {
  const added = Object.keys(after).filter((key) => !Object.hasOwn(before, key));
  const removed = Object.keys(before).filter((key) => !Object.hasOwn(after, key));
  const changed = Object.keys(after).filter((key) => Object.hasOwn(before, key) && before[key] !== after[key]);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

function sameStrings(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}
