/**
 * The essence of an object: the part whose changes are worth handling.
 *
 * Essence = `spec` + `metadata.labels` + `metadata.annotations`, minus the framework's own keys (everything under
 * `<prefix>/`) and `kubectl.kubernetes.io/last-applied-configuration` (a copy of the rest, rewritten by every
 * `kubectl apply`). Status, resourceVersion, managedFields, finalizers and other server-maintained fields are not
 * part of it, which is what keeps the framework's own writes (status, state annotations, finalizers) from
 * triggering new handling cycles.
 */
import { createHash } from 'node:crypto';
import { isPlainObject } from './paths.js';

/** What the framework compares to decide whether an object changed. Empty maps are omitted. */
export interface Essence {
  spec?: unknown;
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** The minimal object shape the essence is computed from. */
export interface EssenceSource {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
}

/** Annotations never part of the essence, whatever the prefix. */
export const IGNORED_ANNOTATIONS: readonly string[] = ['kubectl.kubernetes.io/last-applied-configuration'];

/** True when a label/annotation key belongs to the framework (`<prefix>/anything`). */
export function isOwnKey(key: string, prefix: string): boolean {
  return key.startsWith(`${prefix}/`);
}

/** Computes the essence of `object` for a framework using `prefix` for its own keys. */
export function computeEssence(object: EssenceSource, prefix: string): Essence {
  const labels = filterKeys(object.metadata.labels, (key) => !isOwnKey(key, prefix));
  const annotations = filterKeys(
    object.metadata.annotations,
    (key) => !isOwnKey(key, prefix) && !IGNORED_ANNOTATIONS.includes(key),
  );
  const essence: Essence = {};
  if (object.spec !== undefined) essence.spec = object.spec;
  if (labels || annotations) {
    essence.metadata = {};
    if (labels) essence.metadata.labels = labels;
    if (annotations) essence.metadata.annotations = annotations;
  }
  return essence;
}

function filterKeys(
  map: Record<string, string> | undefined,
  keep: (key: string) => boolean,
): Record<string, string> | undefined {
  if (!map) return undefined;
  const entries = Object.entries(map).filter(([key]) => keep(key));
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** JSON with object keys sorted at every level, so equal values always serialize identically. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isPlainObject(value)) {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) sorted[key] = sortKeys(value[key]);
    }
    return sorted;
  }
  return value;
}

/**
 * A short digest of a value (first 16 hex digits of SHA-256 over its canonical JSON). Progress records carry the
 * digest of the essence they target, so a stale progress record is recognised without storing the essence twice.
 */
export function digest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}
