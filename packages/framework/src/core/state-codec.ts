/**
 * How {@link ObjectState} is written down, per scope.
 *
 * Cluster scope keeps it on the object, as Kopf does, in two annotations:
 * - `<prefix>/last-handled-configuration`: the diff-base, canonical JSON of the essence (Kopf's format);
 * - `<prefix>/progress`: the progress of the cause in flight, removed when the cause completes.
 * The object then carries its diff-base once: a spec bigger than ~250 KiB cannot be handled in cluster scope
 * (annotations are limited to 256 KiB in total).
 *
 * Node scope keeps it in one small JSON file per object in the instance's state directory (see the file store),
 * because N instances each storing a diff-base on the object would multiply its size by N.
 */
import { canonicalJson, type Essence } from './essence.js';
import { isPlainObject } from './paths.js';
import type { CauseProgress, ObjectState } from './progress.js';

/** The annotation keys of the cluster scope. */
export function stateAnnotationKeys(prefix: string): { diffBase: string; progress: string } {
  return { diffBase: `${prefix}/last-handled-configuration`, progress: `${prefix}/progress` };
}

/**
 * Reads the state from annotations. Unparseable values count as absent (state lost: the object is handled as new,
 * which handlers tolerate by being idempotent) rather than blocking the object forever.
 */
export function readAnnotationState(annotations: Record<string, string> | undefined, prefix: string): ObjectState {
  const keys = stateAnnotationKeys(prefix);
  const state: ObjectState = {};
  const diffBase = parseJson(annotations?.[keys.diffBase]);
  if (isPlainObject(diffBase)) state.diffBase = diffBase as Essence;
  const progress = parseJson(annotations?.[keys.progress]);
  if (isProgress(progress)) state.progress = progress;
  return state;
}

/** The annotation writes (value, or null to delete) that turn `annotations` into a record of `next`. */
export function stateAnnotationChanges(
  annotations: Record<string, string> | undefined,
  prefix: string,
  next: ObjectState,
): Record<string, string | null> {
  const keys = stateAnnotationKeys(prefix);
  const wanted: Record<string, string | null> = {
    [keys.diffBase]: next.diffBase === undefined ? null : canonicalJson(next.diffBase),
    [keys.progress]: next.progress === undefined ? null : JSON.stringify(next.progress),
  };
  const changes: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(wanted)) {
    const current = annotations?.[key];
    if (value === null ? current !== undefined : current !== value) changes[key] = value;
  }
  return changes;
}

/** The JSON document of one node-local state file. */
export interface StateFile {
  version: 1;
  uid: string;
  /** `namespace/name` or `name`, for humans and for garbage collection logs. */
  key: string;
  diffBase?: Essence;
  progress?: CauseProgress;
}

/** Serializes a state file. */
export function encodeStateFile(uid: string, key: string, state: ObjectState): string {
  const file: StateFile = { version: 1, uid, key };
  if (state.diffBase !== undefined) file.diffBase = state.diffBase;
  if (state.progress !== undefined) file.progress = state.progress;
  return `${JSON.stringify(file)}\n`;
}

/** Parses a state file; anything unreadable or of another uid counts as no state. */
export function decodeStateFile(text: string, uid: string): ObjectState {
  const parsed = parseJson(text);
  if (!isPlainObject(parsed) || parsed.version !== 1 || parsed.uid !== uid) return {};
  const state: ObjectState = {};
  if (isPlainObject(parsed.diffBase)) state.diffBase = parsed.diffBase as Essence;
  if (isProgress(parsed.progress)) state.progress = parsed.progress;
  return state;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isProgress(value: unknown): value is CauseProgress {
  return (
    isPlainObject(value) &&
    typeof value.cause === 'string' &&
    ['create', 'update', 'delete', 'resume'].includes(value.cause) &&
    typeof value.target === 'string' &&
    isPlainObject(value.handlers)
  );
}
