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
 * State as read from where it is stored, and why what was stored there was (partly) discarded, if it was.
 *
 * Garbage never blocks an object: whatever cannot be trusted counts as absent (state lost: the object is handled as
 * new, which handlers tolerate by being idempotent). `discarded` says so, so that the caller can report it instead
 * of an operator with a failing disk looking healthy.
 */
export interface DecodedState {
  state: ObjectState;
  /** Why stored state was discarded (for logs and Events); undefined when nothing was. */
  discarded?: string;
}

/** Reads the state from annotations (see {@link inspectAnnotationState}, which also says what was discarded). */
export function readAnnotationState(annotations: Record<string, string> | undefined, prefix: string): ObjectState {
  return inspectAnnotationState(annotations, prefix).state;
}

/**
 * Reads the state from annotations. Values that do not decode count as absent, and are named in `discarded`; the
 * next state write replaces or removes them.
 */
export function inspectAnnotationState(annotations: Record<string, string> | undefined, prefix: string): DecodedState {
  const keys = stateAnnotationKeys(prefix);
  const state: ObjectState = {};
  const problems: string[] = [];
  const diffBaseText = annotations?.[keys.diffBase];
  if (diffBaseText !== undefined) {
    const diffBase = parseJson(diffBaseText);
    if (isPlainObject(diffBase)) state.diffBase = diffBase as Essence;
    else problems.push(`annotation ${keys.diffBase}: ${diffBase === undefined ? 'not JSON' : 'not an object'}`);
  }
  const progressText = annotations?.[keys.progress];
  if (progressText !== undefined) {
    const progress = parseJson(progressText);
    const problem = progress === undefined ? 'not JSON' : progressProblem(progress);
    if (problem === undefined) state.progress = progress as CauseProgress;
    else problems.push(`annotation ${keys.progress}: ${problem}`);
  }
  return problems.length === 0 ? { state } : { state, discarded: problems.join('; ') };
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

/** Parses a state file (see {@link inspectStateFile}, which also says what was discarded). */
export function decodeStateFile(text: string, uid: string): ObjectState {
  return inspectStateFile(text, uid).state;
}

/**
 * Parses a state file. A file that is not a state file of this object (not JSON, not an object, another version or
 * uid) is discarded as a whole; a malformed diff-base or progress is discarded alone (the other part stays usable).
 * `discarded` names what was wrong.
 */
export function inspectStateFile(text: string, uid: string): DecodedState {
  if (text.trim() === '') return { state: {}, discarded: 'empty file' };
  const parsed = parseJson(text);
  if (parsed === undefined) return { state: {}, discarded: 'not JSON' };
  if (!isPlainObject(parsed)) return { state: {}, discarded: 'not a JSON object' };
  if (parsed.version !== 1) return { state: {}, discarded: `unsupported version ${JSON.stringify(parsed.version)}` };
  if (parsed.uid !== uid)
    return { state: {}, discarded: `state of another object (uid ${JSON.stringify(parsed.uid)})` };
  const state: ObjectState = {};
  const problems: string[] = [];
  if (parsed.key !== undefined && typeof parsed.key !== 'string') problems.push('key is not a string');
  if (parsed.diffBase !== undefined) {
    if (isPlainObject(parsed.diffBase)) state.diffBase = parsed.diffBase as Essence;
    else problems.push('diffBase is not an object');
  }
  if (parsed.progress !== undefined) {
    const problem = progressProblem(parsed.progress);
    if (problem === undefined) state.progress = parsed.progress as CauseProgress;
    else problems.push(`progress: ${problem}`);
  }
  return problems.length === 0 ? { state } : { state, discarded: problems.join('; ') };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const CAUSES: readonly string[] = ['create', 'update', 'delete', 'resume'];
const HANDLER_STATES: readonly string[] = ['success', 'failure', 'retrying'];

/** What is wrong with a stored progress record, or undefined when it is well-formed. */
function progressProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return 'not an object';
  if (typeof value.cause !== 'string' || !CAUSES.includes(value.cause)) return 'unknown cause';
  if (typeof value.target !== 'string') return 'target is not a string';
  if (!isTimestamp(value.startedAt)) return 'startedAt is not a time';
  if (!isPlainObject(value.handlers)) return 'handlers is not an object';
  for (const [id, entry] of Object.entries(value.handlers)) {
    if (!isPlainObject(entry) || typeof entry.state !== 'string' || !HANDLER_STATES.includes(entry.state)) {
      return `handler ${JSON.stringify(id)}: not a handler record`;
    }
    if (typeof entry.retries !== 'number' || !Number.isInteger(entry.retries) || entry.retries < 0) {
      return `handler ${JSON.stringify(id)}: retries is not a count`;
    }
    if (entry.delayedUntil !== undefined && !isTimestamp(entry.delayedUntil)) {
      return `handler ${JSON.stringify(id)}: delayedUntil is not a time`;
    }
    if (entry.message !== undefined && typeof entry.message !== 'string') {
      return `handler ${JSON.stringify(id)}: message is not a string`;
    }
  }
  return undefined;
}

function isTimestamp(value: unknown): boolean {
  return typeof value === 'string' && Number.isFinite(Date.parse(value));
}
