/**
 * `@OnSecondary`: the handler for changes of watched (secondary) objects, as a Kopf-style cause of its own.
 *
 * Why a dedicated handler rather than running the primary's create/update handlers: in Kopf (and here) those run only
 * when the primary's own essence changed, with `old`, `new` and `diff` of that essence, and their progress and
 * diff-base are about that essence. A ConfigMap edited by someone is not a change of the template that rendered it:
 * calling `@OnUpdate` with an empty diff would break what update handlers rely on. So a secondary change is
 * delivered as what it is: the primary object as context, plus `ctx.secondary` with the changed object.
 */
import { defineExtension, nextOrder } from './metadata.js';
import { assertMethod, filtersOf, type HandlerDecorator } from './handlers.js';
import type { SecondaryHandlerOptions } from './options.js';

/**
 * Runs for every change of a watched object (`@Operator({ watches })`) that its watch maps to this primary object
 * (`owns` or `map`), with the primary object as context and the change in `ctx.secondary` (`resource`, `type`,
 * `object`, `previous`).
 *
 * - Serialized with the primary's other handlers, in its queue slot, and run only once the primary is at rest: its
 *   current essence handled (create/update/resume done, successfully or not), not being deleted. Changes arriving
 *   while a cause is still in progress (a create retrying) wait for it.
 * - Coalesced per watched object: of several changes of one object before the handler ran, it sees the latest
 *   (with `previous` from before the first).
 * - Only changes after the watch's first complete list are delivered (a restart is covered by `@OnResume`, which can
 *   read `ctx.caches`); a relist after an outage delivers what changed meanwhile, deletions included.
 * - Failures are retried with backoff (`retries`, `backoff`, `TemporaryError`'s delay), in memory; a newer change of
 *   the same object replaces the one being retried. Outcomes are logged, counted and reported as Events
 *   (`HandlerRetrying`, `HandlerFailed`), not kept in status; `ctx.patch` is written as for other handlers.
 */
export function OnSecondary(options: SecondaryHandlerOptions = {}): HandlerDecorator {
  return (target, propertyKey, descriptor) => {
    assertMethod('@OnSecondary handler', target, propertyKey, descriptor);
    const filters = filtersOf(options);
    defineExtension(target, {
      kind: 'secondary',
      id: options.id ?? String(propertyKey),
      method: propertyKey,
      order: nextOrder(),
      ...(filters ? { filters } : {}),
      ...(options.resource !== undefined ? { resource: options.resource } : {}),
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.timeout !== undefined ? { timeoutMs: options.timeout } : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
    });
  };
}
