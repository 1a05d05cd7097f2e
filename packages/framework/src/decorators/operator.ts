/**
 * `@Operator`: declares which resource a class handles.
 */
import { assertValidPrefix } from '../core/finalizers.js';
import { defineOperator, type OperatorClass } from './metadata.js';
import type { OperatorOptions } from './options.js';

/**
 * Marks a class as an operator for one resource and registers it, so `opkit run <module>` and `runOperators`
 * find it. The class is instantiated once, with no arguments, when the runtime starts.
 *
 * @example
 * ```ts
 * @Operator({ group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' })
 * class WidgetOperator {
 *   @OnCreate() async created(ctx: HandlerContext<WidgetSpec>) { ... }
 * }
 * ```
 */
export function Operator(options: OperatorOptions): (target: OperatorClass) => void {
  if (!options.group && options.group !== '') throw new Error('@Operator: group is required');
  for (const key of ['version', 'plural', 'kind'] as const) {
    if (!options[key]) throw new Error(`@Operator: ${key} is required`);
  }
  if (options.persistencePrefix !== undefined) assertValidPrefix(options.persistencePrefix);
  if (options.scope !== undefined && options.scope !== 'cluster' && options.scope !== 'node') {
    throw new Error(`@Operator: scope must be 'cluster' or 'node', not ${JSON.stringify(options.scope)}`);
  }
  return (target) => defineOperator(target, { ...options });
}
