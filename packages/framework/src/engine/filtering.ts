/**
 * Per-handler filters at run time: `core/filters.ts` decides, this logs a filter that throws (counted as not
 * matching: a broken filter must not make a handler run for objects it was meant to skip).
 */
import type { Logger } from 'pino';
import { matchesFilters, type HandlerFilters } from '../core/filters.js';
import type { KubeObject } from '../kube/types.js';

/** Whether `object` passes `filters`; a filter that throws is logged and counts as not matching. */
export function passesFilters(
  filters: HandlerFilters | undefined,
  object: KubeObject,
  logger: Logger,
  handlerId: string,
): boolean {
  if (!filters) return true;
  try {
    return matchesFilters(filters, object);
  } catch (error) {
    logger.warn({ err: error, handler: handlerId, object: object.metadata.name }, 'handler filter threw; skipped');
    return false;
  }
}
