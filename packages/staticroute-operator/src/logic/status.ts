/**
 * A node's outcome for one StaticRoute (what its report says, see report.ts), and the condition shape of the status
 * the aggregator writes (aggregate.ts).
 */
import type { GatewayHealthEffect, ObjectAssessment } from './desired.js';

/** The per-node outcome of one StaticRoute. */
export type RouteState = 'Applied' | 'Failed' | 'Refused' | 'Conflict' | 'NotSelected';

/** A Kubernetes-style condition. */
export interface StatusCondition {
  type: 'Ready' | 'Conflict' | 'GatewaysReachable';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** The outcome of one object on this node, before the timestamp is added. */
export interface NodeOutcome {
  state: RouteState;
  message: string;
  routes: number;
  /** The object's health-checked gateways that are Unreachable from this node; absent when none. */
  unreachableGateways?: string[];
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/**
 * One line on what gateway health did: `gateway 10.116.0.12 unreachable, withdrawn from 2 routes`, `all gateways
 * unreachable, routes kept`, `all gateways unreachable, routes withdrawn (whenAllDown: Withdraw)`.
 */
export function describeGatewayHealth(effect: GatewayHealthEffect): string {
  const parts: string[] = [];
  if (effect.withdrawnFrom > 0) {
    const which = effect.unreachable.length === 1 ? 'gateway' : 'gateways';
    parts.push(
      `${which} ${effect.unreachable.join(', ')} unreachable, withdrawn from ${plural(effect.withdrawnFrom, 'route')}`,
    );
  }
  if (effect.keptAllDown > 0) parts.push('all gateways unreachable, routes kept');
  if (effect.removedAllDown > 0) parts.push('all gateways unreachable, routes withdrawn (whenAllDown: Withdraw)');
  return parts.join('; ');
}

const MAX_LISTED = 5;

function listSome(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join('; ');
  return items.length > MAX_LISTED ? `${shown}; and ${items.length - MAX_LISTED} more` : shown;
}

/**
 * Folds an assessment and the kernel results into one state. Precedence: NotSelected, Refused (invalid spec),
 * Failed (kernel error or a foreign route in the way), Refused (unsafe destination), Conflict, Applied.
 * Destinations that are fine are installed whatever the state, so the message says how many are applied.
 *
 * @param failures destination -> error, for destinations whose kernel operation failed or is blocked
 */
export function objectOutcome(assessment: ObjectAssessment, failures: ReadonlyMap<string, string>): NodeOutcome {
  if (!assessment.selected) {
    return { state: 'NotSelected', message: 'nodeSelector does not select this node', routes: 0 };
  }
  if (assessment.invalid.length > 0) {
    return { state: 'Refused', message: `invalid spec: ${listSome(assessment.invalid)}`, routes: 0 };
  }
  const outcome = assessedOutcome(assessment, failures);
  const effect = assessment.gatewayHealth;
  if (!effect || effect.unreachable.length === 0) return outcome;
  // Routes installed through the gateways left, or kept: the state stays what the routes make it.
  const health = describeGatewayHealth(effect);
  return {
    ...outcome,
    message: health ? `${outcome.message}; ${health}` : outcome.message,
    unreachableGateways: effect.unreachable,
  };
}

function assessedOutcome(assessment: ObjectAssessment, failures: ReadonlyMap<string, string>): NodeOutcome {
  const failed = assessment.claimed.filter((destination) => failures.has(destination));
  const routes = assessment.claimed.length - failed.length;
  const withdrawn = assessment.gatewayHealth?.removedAllDown ?? 0;
  const total = routes + failed.length + assessment.refused.length + assessment.conflicts.length + withdrawn;
  const applied = `${routes}/${total} routes applied`;
  if (failed.length > 0) {
    const details = failed.map((destination) => `${destination}: ${failures.get(destination)}`);
    return { state: 'Failed', message: `${applied}; failed: ${listSome(details)}`, routes };
  }
  if (assessment.refused.length > 0) {
    return {
      state: 'Refused',
      message: `${applied}; refused: ${listSome(assessment.refused.map((item) => item.reason))}`,
      routes,
    };
  }
  if (assessment.conflicts.length > 0) {
    const details = assessment.conflicts.map((item) => `${item.destination} is routed by StaticRoute ${item.winner}`);
    return { state: 'Conflict', message: `${applied}; conflict: ${listSome(details)}`, routes };
  }
  const warnings = assessment.warnings ?? [];
  if (warnings.length > 0) return { state: 'Applied', message: `${applied}; warning: ${listSome(warnings)}`, routes };
  return { state: 'Applied', message: applied, routes };
}
