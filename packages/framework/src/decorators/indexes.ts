/**
 * `@Index`: an in-memory index maintained by the framework (Kopf's `@kopf.index`).
 */
import { defineExtension, nextOrder } from './metadata.js';
import { assertMethod, filtersOf, type HandlerDecorator } from './handlers.js';
import type { IndexOptions } from './options.js';

/**
 * Declares an index. The method is called with each object of the operator's resource (or, with `resource`, of that
 * watch) and returns a record of key -> value to file the object under, or `undefined` to leave it out:
 *
 * ```ts
 * @Index({ resource: 'pods' })
 * podsByNode(pod: KubeObject) {
 *   return pod.spec?.nodeName ? { [pod.spec.nodeName]: pod.metadata.name } : undefined;
 * }
 * // in any handler: ctx.index<string>('podsByNode').get('node-a')  -> ['pod-1', 'pod-2']
 * ```
 *
 * - Maintained from the watch events: when an object is added or changes, its values are replaced; when it is
 *   deleted (or stops matching the filters) they are removed; a key with no values left disappears.
 * - Complete before any handler runs (handlers start once every watch listed), and updated before the handlers the
 *   same change triggers, so a handler sees at least the state that triggered it.
 * - The method must be synchronous and quick (it runs in the watch loop). If it throws, the object's previous values
 *   are kept (stale rather than lost, as Kopf's default) and the error is logged.
 */
export function Index(options: IndexOptions = {}): HandlerDecorator {
  return (target, propertyKey, descriptor) => {
    assertMethod('@Index', target, propertyKey, descriptor);
    const filters = filtersOf(options);
    defineExtension(target, {
      kind: 'index',
      id: options.id ?? String(propertyKey),
      method: propertyKey,
      order: nextOrder(),
      ...(filters ? { filters } : {}),
      ...(options.resource !== undefined ? { resource: options.resource } : {}),
    });
  };
}
