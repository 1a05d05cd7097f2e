/**
 * Cause detection: what a watch event means for this instance, decided from the object and the stored state alone.
 *
 * | condition (checked in order)                                   | cause    |
 * | -------------------------------------------------------------- | -------- |
 * | deletionTimestamp set, our finalizer present                   | delete   |
 * | deletionTimestamp set, no finalizer of ours                    | noop (not ours to hold) |
 * | no diff-base (first time seen by this instance, or state lost) | create   |
 * | essence differs from the diff-base                             | update   |
 * | an interrupted resume is stored                                | resume   |
 * | essence unchanged, not yet seen by this process, has resume handlers | resume |
 * | otherwise (status-only or framework-only changes, own writes)   | noop     |
 *
 * "Seen by this process" is in-memory: a restarted operator sees every unchanged object once more, as resume.
 */
import { jsonEqual } from './diff.js';
import type { Essence } from './essence.js';
import type { HandlerSpec } from './handlers.js';
import { getField } from './paths.js';
import type { ChangeCause, ObjectState } from './progress.js';

/** A cause, or `noop` when nothing is to be done. */
export type Cause = ChangeCause | 'noop';

/** Everything cause detection looks at. */
export interface CauseInput {
  /** `metadata.deletionTimestamp` is set. */
  deleting: boolean;
  /** The object carries this instance's finalizer. */
  hasOwnFinalizer: boolean;
  essence: Essence;
  state: ObjectState;
  /** This process already brought the object to rest once (any cause completed, or noop). */
  seenInThisRun: boolean;
  hasResumeHandlers: boolean;
}

/** Decides the cause (see the module table). */
export function detectCause(input: CauseInput): Cause {
  if (input.deleting) return input.hasOwnFinalizer ? 'delete' : 'noop';
  const base = input.state.diffBase;
  if (base === undefined) return 'create';
  if (!jsonEqual(base, input.essence)) return 'update';
  if (!input.hasResumeHandlers) return 'noop';
  if (input.state.progress?.cause === 'resume') return 'resume';
  return input.seenInThisRun ? 'noop' : 'resume';
}

/**
 * The handlers a cause runs, in declaration order. Field handlers join create and update when their field's value
 * differs between `old` and `new` (on create, `old` is absent: they fire when the field is set).
 */
export function selectHandlers(
  cause: ChangeCause,
  handlers: readonly HandlerSpec[],
  oldEssence: Essence | undefined,
  newEssence: Essence,
): HandlerSpec[] {
  const selected = handlers.filter((handler) => {
    if (handler.kind === cause) return true;
    if (handler.kind !== 'field' || (cause !== 'create' && cause !== 'update')) return false;
    const path = handler.field ?? [];
    return !jsonEqual(getField(oldEssence, path), getField(newEssence, path));
  });
  return selected.sort((a, b) => a.order - b.order);
}
