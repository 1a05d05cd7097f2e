/**
 * The status the framework writes: handler outcomes, handler return values and the handlers' own status patches.
 *
 * Layout (merge patch on the status subresource, so concurrent writers of other keys are never overwritten):
 * - cluster scope: `status.<handlerId>` = return value; `status.<handlerStatusField>.<handlerId>` = outcome;
 *   `ctx.patch.status` merged into `status`.
 * - node scope: everything per instance lives under `status.<instanceStatusField>.<instanceId>`: the return values,
 *   `handlers` outcomes and `ctx.patch.instanceStatus`; `ctx.patch.status` still targets the shared `status` (for
 *   fields the author deliberately shares, e.g. a summary).
 * An outcome is small and bounded (messages are truncated), which keeps 500 instances' entries well below the
 * object size limit. Each outcome written replaces the handler's previous one whole (see {@link outcomePatch}).
 */
import { isPlainObject } from './paths.js';
import type { ChangeCause } from './progress.js';

/** Longest failure message kept in status (events carry the same message). */
export const MAX_STATUS_MESSAGE = 512;

/** The recorded outcome of one handler for its latest cause. */
export interface HandlerOutcome {
  /** `success`; `retrying` after a temporary failure; `failed` after a permanent one. */
  outcome: 'success' | 'retrying' | 'failed';
  cause: ChangeCause | 'timer';
  /** Failed attempts so far for this cause. */
  retries: number;
  /** Failure message (truncated). */
  message?: string;
  /** When the next attempt is due, for `retrying` (ISO 8601). */
  nextAttemptAt?: string;
  /** When the outcome was recorded (ISO 8601). */
  time: string;
}

/** Where the status goes. */
export interface StatusLayout {
  scope: 'cluster' | 'node';
  handlerStatusField: string;
  instanceStatusField: string;
  instanceId: string;
}

/** What one handling cycle accumulated for status. */
export interface StatusWrites {
  outcomes: Record<string, HandlerOutcome>;
  results: Record<string, unknown>;
  /** `ctx.patch.status` of the handlers (merge-patch semantics: null deletes). */
  status: Record<string, unknown>;
  /** `ctx.patch.instanceStatus` (node scope). */
  instanceStatus: Record<string, unknown>;
}

/** An empty accumulator. */
export function emptyStatusWrites(): StatusWrites {
  return { outcomes: {}, results: {}, status: {}, instanceStatus: {} };
}

/** True when the accumulator holds nothing to write. */
export function isEmptyStatusWrites(writes: StatusWrites): boolean {
  return (
    Object.keys(writes.outcomes).length === 0 &&
    Object.keys(writes.results).length === 0 &&
    Object.keys(writes.status).length === 0 &&
    Object.keys(writes.instanceStatus).length === 0
  );
}

/**
 * The outcomes this owner recorded in the object's status so far (`status.<handlerStatusField>` in cluster scope,
 * `status.<instanceStatusField>.<instanceId>.<handlerStatusField>` in node scope); `{}` when there are none or the
 * status is not shaped as expected.
 */
export function recordedOutcomes(layout: StatusLayout, status: unknown): Record<string, unknown> {
  const owner =
    layout.scope === 'cluster' ? status : field(field(status, layout.instanceStatusField), layout.instanceId);
  const outcomes = field(owner, layout.handlerStatusField);
  return isPlainObject(outcomes) ? outcomes : {};
}

/**
 * Whether a cycle's status writes are worth a request. Like Kopf, the framework writes handler outcomes only when
 * there is something to say: a write that would only record plain successes (no returned value, no handler status
 * patch) is skipped, unless one of those handlers has anything but a success on record (a `retrying` or `failed`
 * entry that the success must replace). When the write happens anyway, it carries the successes too. A success is the normal case, and the diff-base already says that the change was
 * handled; skipping it saves one request per change, which is what limits throughput (API server CPU per write).
 *
 * @param recorded - {@link recordedOutcomes} of the object as last seen.
 */
export function statusWriteNeeded(writes: StatusWrites, recorded: Record<string, unknown>): boolean {
  if (
    Object.keys(writes.results).length > 0 ||
    Object.keys(writes.status).length > 0 ||
    Object.keys(writes.instanceStatus).length > 0
  ) {
    return true;
  }
  return Object.entries(writes.outcomes).some(([handlerId, entry]) => {
    if (entry.outcome !== 'success') return true;
    const previous = recorded[handlerId];
    // Anything on record but a success (retrying, failed, or garbage) is replaced by the success.
    return previous !== undefined && !(isPlainObject(previous) && previous.outcome === 'success');
  });
}

/** The keys of a {@link HandlerOutcome} that an entry may lack. */
type OptionalOutcomeKey = {
  [K in keyof HandlerOutcome]-?: undefined extends HandlerOutcome[K] ? K : never;
}[keyof HandlerOutcome];

/** Each optional key mapped to null, a merge patch's "delete". */
const ABSENT_OUTCOME_KEYS: Record<OptionalOutcomeKey, null> = { message: null, nextAttemptAt: null };

/**
 * The merge patch that replaces a handler's recorded outcome with `entry`: the entry, plus null for each optional key
 * it lacks. Status is merge-patched, which merges objects key by key, so without the nulls a success would keep the
 * `message` and `nextAttemptAt` of the attempt that failed before it, and a `failed` entry the `nextAttemptAt` of the
 * retry that preceded it. The key list is typed from {@link HandlerOutcome}: a new optional key that is not listed
 * does not compile.
 */
export function outcomePatch(entry: HandlerOutcome): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...ABSENT_OUTCOME_KEYS };
  for (const [key, value] of Object.entries(entry)) {
    // An explicit `undefined` would vanish from the JSON body and keep the stale value: it stays null.
    if (value !== undefined) patch[key] = value;
  }
  return patch;
}

function field(value: unknown, key: string): unknown {
  return isPlainObject(value) ? value[key] : undefined;
}

/** Builds the merge patch body (`{ status: ... }`), or undefined when there is nothing to write. */
export function buildStatusPatch(
  layout: StatusLayout,
  writes: StatusWrites,
): { status: Record<string, unknown> } | undefined {
  if (isEmptyStatusWrites(writes)) return undefined;
  // What this owner (the object in cluster scope, the instance in node scope) reports about its own handlers.
  const own: Record<string, unknown> = { ...writes.results };
  if (Object.keys(writes.outcomes).length > 0) {
    own[layout.handlerStatusField] = Object.fromEntries(
      Object.entries(writes.outcomes).map(([handlerId, entry]) => [handlerId, outcomePatch(entry)]),
    );
  }
  if (layout.scope === 'cluster') return { status: mergePatches(writes.status, own) };
  const entry = mergePatches(writes.instanceStatus, own);
  if (Object.keys(entry).length === 0) return { status: { ...writes.status } };
  return { status: mergePatches(writes.status, { [layout.instanceStatusField]: { [layout.instanceId]: entry } }) };
}

/** The merge patch that deletes one instance's status entry (dead-instance cleanup). */
export function instanceEntryRemoval(
  instanceStatusField: string,
  instanceId: string,
): { status: Record<string, unknown> } {
  return { status: { [instanceStatusField]: { [instanceId]: null } } };
}

/** Truncates a message for status. */
export function truncateMessage(message: string, max: number = MAX_STATUS_MESSAGE): string {
  return message.length <= max ? message : `${message.slice(0, max - 1)}…`;
}

/**
 * Combines two merge patches (RFC 7386) into one with the same effect as applying both in order: nested objects
 * merge, anything else (including null) in `next` wins.
 */
export function mergePatches(base: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(next)) {
    const previous = result[key];
    result[key] = isPlainObject(previous) && isPlainObject(value) ? mergePatches(previous, value) : value;
  }
  return result;
}
