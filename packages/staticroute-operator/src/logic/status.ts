/**
 * Status: what each node reports for a StaticRoute, and the summary every node recomputes from all reports.
 *
 * Layout (all under `.status`):
 * - `nodes.<node>`: `{ state, message, observedGeneration, lastUpdateTime, routes }`, written only by that node.
 * - `ready`: `"<applied>/<selected>"` (printer column READY).
 * - `conditions`: `Ready` (every selected node applied the current generation) and `Conflict` (some node reports a
 *   destination won by another object).
 */
import type { ObjectAssessment } from './desired.js';

/** The per-node outcome of one StaticRoute. */
export type RouteState = 'Applied' | 'Failed' | 'Refused' | 'Conflict' | 'NotSelected';

/** `status.nodes[<node>]`. */
export interface NodeStatusEntry {
  state: RouteState;
  message: string;
  observedGeneration?: number;
  lastUpdateTime: string;
  /** Routes of this object installed on the node. */
  routes?: number;
}

/** A Kubernetes-style condition. */
export interface StatusCondition {
  type: 'Ready' | 'Conflict';
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
  const failed = assessment.claimed.filter((destination) => failures.has(destination));
  const routes = assessment.claimed.length - failed.length;
  const total = routes + failed.length + assessment.refused.length + assessment.conflicts.length;
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
  return { state: 'Applied', message: applied, routes };
}

/** Summary fields every node writes alongside its own entry. */
export interface StatusSummary {
  ready: string;
  conditions: StatusCondition[];
}

export interface SummaryInput {
  generation?: number;
  entries: Readonly<Record<string, NodeStatusEntry | null | undefined>>;
  /**
   * Names of the nodes the object's nodeSelector selects, when known (from the Node list). Otherwise the nodes
   * that reported a state other than NotSelected.
   */
  selectedNodes?: readonly string[];
  previousConditions?: readonly StatusCondition[];
  now: string;
}

function condition(
  type: StatusCondition['type'],
  status: StatusCondition['status'],
  reason: string,
  message: string,
  input: SummaryInput,
): StatusCondition {
  const previous = input.previousConditions?.find((item) => item.type === type);
  // The transition time changes only when the status does, as for every Kubernetes condition.
  const lastTransitionTime = previous && previous.status === status ? previous.lastTransitionTime : input.now;
  const result: StatusCondition = { type, status, reason, message, lastTransitionTime };
  if (input.generation !== undefined) result.observedGeneration = input.generation;
  return result;
}

/**
 * Computes `status.ready` and the conditions from all nodes' entries. An entry counts as applied only when it
 * reports the object's current generation; an entry without a `state` counts as not reported.
 */
export function summarizeStatus(input: SummaryInput): StatusSummary {
  // An entry without a state is not a report: the framework writes its handler outcomes into the same entry
  // (`status.nodes.<node>.handlers`), often before the node's own report. Counting those would change the summary
  // at every framework write and make every node rewrite it.
  const entries = Object.entries(input.entries).filter(
    (pair): pair is [string, NodeStatusEntry] => typeof pair[1]?.state === 'string',
  );
  const selected =
    input.selectedNodes ?? entries.filter(([, entry]) => entry.state !== 'NotSelected').map(([node]) => node);
  const byNode = new Map(entries);
  const current = (entry: NodeStatusEntry | undefined) =>
    entry !== undefined && (input.generation === undefined || entry.observedGeneration === input.generation);
  const applied = selected.filter((node) => {
    const entry = byNode.get(node);
    return current(entry) && entry?.state === 'Applied';
  });
  const notApplied = selected.filter((node) => !applied.includes(node));
  const conflicted = entries.filter(([, entry]) => entry.state === 'Conflict').map(([node]) => node);

  let ready: StatusCondition;
  if (selected.length === 0) {
    ready = condition('Ready', 'False', 'NoNodeSelected', 'no node is selected by spec.nodeSelector', input);
  } else if (notApplied.length === 0) {
    ready = condition('Ready', 'True', 'Applied', `routes applied on all ${selected.length} selected nodes`, input);
  } else {
    const details = notApplied.slice(0, MAX_LISTED).map((node) => {
      const entry = byNode.get(node);
      if (!entry) return `${node}: not reported yet`;
      if (!current(entry)) return `${node}: reported an older generation`;
      return `${node}: ${entry.state}`;
    });
    const more = notApplied.length > MAX_LISTED ? `; and ${notApplied.length - MAX_LISTED} more` : '';
    const reason = notApplied.some((node) => byNode.get(node)?.state === 'Failed')
      ? 'Failed'
      : notApplied.some((node) => byNode.get(node)?.state === 'Refused')
        ? 'Refused'
        : notApplied.some((node) => byNode.get(node)?.state === 'Conflict')
          ? 'Conflict'
          : 'Pending';
    ready = condition('Ready', 'False', reason, `${details.join('; ')}${more}`, input);
  }
  const conflict =
    conflicted.length > 0
      ? condition('Conflict', 'True', 'DestinationConflict', `conflict reported by ${listSome(conflicted)}`, input)
      : condition('Conflict', 'False', 'NoConflict', 'no destination is claimed by another StaticRoute', input);
  return { ready: `${applied.length}/${selected.length}`, conditions: [ready, conflict] };
}

/**
 * Whether two summaries would write the same status (timestamps included: they only change with the status).
 * Key order does not matter: the API server returns object keys sorted, so a summary read back never has the key
 * order of a computed one. (Comparing serializations made every check "different": each watch event made every node
 * rewrite the summary, and each rewrite caused the next event, for as long as the object existed.)
 */
export function sameSummary(a: StatusSummary, b: StatusSummary): boolean {
  return sortedJson(a) === sortedJson(b);
}

/** JSON with object keys sorted at every level. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : item,
  );
}
