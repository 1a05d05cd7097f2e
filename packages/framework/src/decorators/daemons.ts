/**
 * `@Daemon`: a long-lived task per object (Kopf's `@kopf.daemon`).
 */
import { defineExtension, nextOrder } from './metadata.js';
import { assertMethod, filtersOf, type HandlerDecorator } from './handlers.js';
import type { DaemonOptions } from './options.js';

/**
 * Runs the method as a long-lived task for every object (that matches the filters), with a `DaemonContext`.
 *
 * - Started when the object is first seen, as Kopf does: it does not wait for the create handlers (which may still be
 *   retrying, or have failed). After `initialDelayMs` if given.
 * - `ctx.signal` is aborted when the object is being deleted or gone, when it stops matching the filters, and at
 *   shutdown; the daemon should then return. After `cancellationTimeoutMs` the framework stops waiting for it.
 * - Never two at once for one object: a daemon that was asked to stop and has not returned yet is not started again
 *   (once it returns, it is started again if the object still matches).
 * - Returning ends it for that object in this process (it is not restarted, as in Kopf); throwing restarts it after
 *   a backoff (a `TemporaryError`'s delay when given); `PermanentError` or `retries` exhausted end it.
 * - Not serialized with the object's handlers: it runs beside them, and `ctx.body` always reads the freshest copy.
 * - It adds no finalizer. When the operator has one anyway (a non-optional `@OnDelete`), the finalizer is released
 *   only after the object's daemons returned (or their cancellation timeout passed).
 */
export function Daemon(options: DaemonOptions = {}): HandlerDecorator {
  return (target, propertyKey, descriptor) => {
    assertMethod('@Daemon', target, propertyKey, descriptor);
    const filters = filtersOf(options);
    defineExtension(target, {
      kind: 'daemon',
      id: options.id ?? String(propertyKey),
      method: propertyKey,
      order: nextOrder(),
      ...(filters ? { filters } : {}),
      ...(options.cancellationTimeoutMs !== undefined ? { cancellationTimeoutMs: options.cancellationTimeoutMs } : {}),
      ...(options.initialDelayMs !== undefined ? { initialDelayMs: options.initialDelayMs } : {}),
      ...(options.retries !== undefined ? { retries: options.retries } : {}),
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
    });
  };
}
