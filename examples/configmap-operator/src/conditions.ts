/**
 * Status helpers (pure): the `Ready` condition and a readable summary of a change.
 */
import type { DiffOp } from 'opkit';
import type { Condition } from './types.js';

/** The condition this operator maintains. */
export const READY = 'Ready';

/** Why the template is or is not ready; also the Event reasons of the same situations. */
export type ReadyReason = 'Rendered' | 'InvalidTemplate' | 'Conflict';

/** The desired state of the `Ready` condition. */
export interface ReadyState {
  status: 'True' | 'False';
  reason: ReadyReason;
  message: string;
}

/**
 * The conditions after setting `Ready` to `next`. Other condition types are kept. `lastTransitionTime` changes only
 * when the status flips (the Kubernetes convention), so repeating the same state yields an identical list and the
 * caller can skip the write.
 */
export function withReady(
  previous: readonly Condition[] | undefined,
  next: ReadyState,
  generation: number | undefined,
  now: Date,
): Condition[] {
  const others = (previous ?? []).filter((condition) => condition.type !== READY);
  const current = (previous ?? []).find((condition) => condition.type === READY);
  const ready: Condition = {
    type: READY,
    status: next.status,
    reason: next.reason,
    message: next.message,
    lastTransitionTime: current && current.status === next.status ? current.lastTransitionTime : now.toISOString(),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  return [...others, ready];
}

/** The `Ready` condition, if set. */
export function readyCondition(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((condition) => condition.type === READY);
}

/** True when two condition lists say the same (order of fields within a condition does not matter). */
export function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const left = a ?? [];
  const right = b ?? [];
  return (
    left.length === right.length &&
    left.every((condition, index) => {
      const other = right[index] as Condition;
      return (
        condition.type === other.type &&
        condition.status === other.status &&
        condition.reason === other.reason &&
        condition.message === other.message &&
        condition.lastTransitionTime === other.lastTransitionTime &&
        condition.observedGeneration === other.observedGeneration
      );
    })
  );
}

/**
 * The spec paths a change touched, e.g. `['spec.values.port changed', 'spec.data.extra added']`, from `ctx.diff`.
 * Empty when only labels or annotations changed (which does not affect the rendering).
 */
export function specChanges(diff: readonly DiffOp[]): string[] {
  const verbs = { add: 'added', change: 'changed', remove: 'removed' } as const;
  return diff.filter((op) => op.path[0] === 'spec').map((op) => `${op.path.join('.')} ${verbs[op.op]}`);
}
