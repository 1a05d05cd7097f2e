/**
 * Where the time of one change goes on one node, from the operator's own log lines (pino, millisecond timestamps):
 *
 *   accepted (API response) -> cause detected (debug) -> [finalizer write; a failed guard is logged at debug as
 *   "metadata patch guard failed; refetching"] -> handler start (`handler succeeded` time minus its durationMs) ->
 *   route in the kernel (`ip monitor`) -> handler end -> cause handled (debug: state and status written)
 *
 * At the DaemonSet's `info` level only the handler's end (with its duration) is logged; `LOG_LEVEL=debug`
 * (`--profile`) adds the others. The handler's and the writer's lines do not name the object (their loggers are not
 * bound to it), so they are matched by time: the first such line after the object's `cause detected`. That is exact
 * here because the benchmark changes one object at a time.
 */
import type { OperatorProcess } from './operators.js';

export interface Timeline {
  /** accepted -> `cause detected` (watch delivery, queue, state read). */
  toCauseMs?: number;
  /** accepted -> handler start (for a create this includes the finalizer write). */
  toHandlerStartMs?: number;
  handlerMs?: number;
  /** accepted -> `cause handled` (status and state written). */
  toCauseHandledMs?: number;
  /** Finalizer/metadata patches refused by their guard (another node wrote first) before the handler started. */
  guardConflicts?: number;
}

type LogLine = Record<string, unknown> & { msg?: string; time?: string; at: number };

/** Every operator's log lines, read once after a phase. */
export class OperatorLogIndex {
  private readonly byNode = new Map<string, LogLine[]>();

  constructor(operators: OperatorProcess[]) {
    for (const operator of operators) {
      const lines = operator.logLines().map((line) => ({ ...line, at: Date.parse(line.time ?? '') }));
      this.byNode.set(operator.node.name, lines);
    }
  }

  /**
   * The first handling of `object` for `cause` on `node` that began at or after `acceptedAt - slackMs` (the watch
   * event can overtake the API response).
   */
  timeline(node: string, object: string, cause: string, acceptedAt: number, slackMs = 200): Timeline {
    const lines = this.byNode.get(node) ?? [];
    const from = acceptedAt - slackMs;
    const result: Timeline = {};
    const detected = lines.find(
      (line) => line.at >= from && line.object === object && line.msg === 'cause detected' && line.cause === cause,
    );
    const start = detected?.at ?? from;
    if (detected) result.toCauseMs = detected.at - acceptedAt;
    const handler = lines.find((line) => line.at >= start && line.msg === 'handler succeeded' && line.cause === cause);
    if (handler && typeof handler.durationMs === 'number') {
      result.handlerMs = handler.durationMs;
      result.toHandlerStartMs = handler.at - handler.durationMs - acceptedAt;
      if (detected) {
        result.guardConflicts = lines.filter(
          (line) =>
            line.at >= detected.at && line.at <= handler.at && line.msg === 'metadata patch guard failed; refetching',
        ).length;
      }
    }
    const handled = lines.find(
      (line) => line.at >= start && line.object === object && line.msg === 'cause handled' && line.cause === cause,
    );
    if (handled) result.toCauseHandledMs = handled.at - acceptedAt;
    return result;
  }
}
