/**
 * What runs in an object's queue slot after its change handlers: the due `@OnTimer`s, and the `@OnSecondary`
 * handlers of pending changes of watched objects. Neither keeps progress or touches the diff-base; their patches
 * (`ctx.patch`) are written through the processor (`write`), like the change handlers' but with no state.
 */
import type { Logger } from 'pino';
import { computeEssence } from '../core/essence.js';
import { extrasOf } from '../core/handler-extensions.js';
import type { KubeObject } from '../kube/types.js';
import type { HandlerPatch } from './context.js';
import { passesFilters } from './filtering.js';
import type { FreshnessTracker } from './freshness.js';
import { reportDecision, runHandler, type HandlerRunDeps } from './handler-run.js';
import type { SecondaryHandlers } from './secondary-handlers.js';
import type { TimerScheduler } from './timers.js';

/** Writes handler patches (status, labels, annotations) of the object `key`. */
export type PatchWriter = (key: string, object: KubeObject, patches: readonly HandlerPatch[]) => Promise<void>;

/** What the slot extras need of the processor's dependencies. */
export interface SlotExtrasDeps extends HandlerRunDeps {
  freshness: FreshnessTracker;
  lookup: (key: string) => KubeObject | undefined;
  timers: TimerScheduler;
  secondary?: SecondaryHandlers;
}

/**
 * Starts the object's timers if needed and runs those due, in declaration order, each on the freshest copy. A timer
 * whose filters the object does not match is skipped (re-armed, not stopped). A failed run is logged once (by
 * `runHandler`) and retried like a change handler, with the same `HandlerRetrying` / `HandlerFailed` Warnings and
 * metrics (see `timers.ts`).
 */
export async function runDueTimers(
  deps: SlotExtrasDeps,
  key: string,
  logger: Logger,
  write: PatchWriter,
): Promise<void> {
  deps.timers.ensure(key);
  const due = deps.timers.takeDue(key);
  if (due.length === 0) return;
  const patches: HandlerPatch[] = [];
  let object: KubeObject | undefined;
  for (const timer of due) {
    const startedAt = Date.now();
    object = deps.freshness.pick(key, deps.lookup(key));
    if (!object || object.metadata.deletionTimestamp) return deps.timers.stop(key);
    if (!passesFilters(extrasOf(timer).filters, object, deps.logger, timer.id)) {
      deps.timers.rearm(key, timer, startedAt);
      continue;
    }
    const essence = computeEssence(object, deps.definition.prefix);
    const run = await runHandler(deps, {
      handler: timer,
      object,
      cause: 'timer',
      retry: deps.timers.retryOf(key, timer),
      old: essence,
      new: essence,
      diff: [],
      logger,
    });
    patches.push(run.patch);
    const decision = deps.timers.finish(key, timer, startedAt, { attempt: run.attempt, defaults: deps.settings });
    if (decision) reportDecision(deps, object, timer, 'timer', decision);
  }
  if (object && patches.length > 0) await write(key, object, patches);
}

/**
 * Runs the `@OnSecondary` handlers due for the changes of watched objects pending for this object, writes their
 * patches, then records their outcomes (so a failed write runs them again rather than losing their patches).
 * Resolves with the delay until the next retry, if one waits.
 */
export async function runSecondaryChanges(
  deps: SlotExtrasDeps,
  key: string,
  logger: Logger,
  write: PatchWriter,
): Promise<number | undefined> {
  const secondary = deps.secondary;
  if (!secondary?.has(key)) return undefined;
  const object = deps.freshness.pick(key, deps.lookup(key));
  if (!object) return undefined;
  const run = await secondary.run(key, object, computeEssence(object, deps.definition.prefix), logger);
  if (!run) return undefined;
  if (run.patches.length > 0) await write(key, object, run.patches);
  run.commit();
  return secondary.nextDelay(key);
}
