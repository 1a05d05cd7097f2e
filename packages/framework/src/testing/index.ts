/**
 * `opkit/testing`: run operators in-process against a real cluster in your tests, and wait for what they do.
 *
 * Wait for what the handler does, e.g. a status field it patches (`ctx.patch.status.phase = 'Ready'`) or returns:
 * a handler that only succeeds leaves no `status.handlers` entry (the framework records a success only when there is
 * something else to write).
 *
 * @example
 * ```ts
 * import { startOperator, waitFor } from 'opkit/testing';
 * const operator = await startOperator({ classes: [WidgetOperator], kubeconfigPath });
 * try {
 *   await kubectl(['apply', '-f', 'widget.yaml']);
 *   await waitFor(async () => (await getWidget()).status?.phase === 'Ready');
 * } finally {
 *   await operator.stop();
 * }
 * ```
 */
import type { OperatorClass } from '../decorators/metadata.js';
import { importOperators } from '../engine/modules.js';
import { createLogger } from '../ops/logging.js';
import { runOperators, type OperatorRuntime } from '../engine/runtime.js';
import type { RuntimeSettings } from '../engine/settings.js';

export { importOperators };

/** Options of {@link startOperator}: the runtime settings plus what to run. */
export interface StartOperatorOptions extends RuntimeSettings {
  /** Operator classes to run. */
  classes?: OperatorClass[];
  /** Or a module to import (path or file URL): the `@Operator` classes it registers or exports are run. */
  module?: string;
  /** Wait until the runtime is ready before resolving. Defaults to true. */
  waitReady?: boolean;
}

/** A running in-process operator. */
export interface OperatorHandle extends OperatorRuntime {
  /** The `/metrics` text (Prometheus exposition format). */
  metricsText(): Promise<string>;
}

/**
 * Starts operators in this process. Logs go to stdout at `logLevel` (defaults to `$OPKIT_LOG_LEVEL`, then `warn`,
 * to keep test output readable).
 */
export async function startOperator(options: StartOperatorOptions): Promise<OperatorHandle> {
  const { classes = [], module, waitReady = true, ...settings } = options;
  const all = [...classes, ...(module ? await importOperators(module) : [])];
  const logger =
    settings.logger ??
    createLogger({ level: settings.logLevel ?? process.env.OPKIT_LOG_LEVEL ?? 'warn', name: settings.instanceId });
  const runtime = runOperators([...new Set(all)], { ...settings, logger });
  const handle: OperatorHandle = {
    ready: runtime.ready,
    done: runtime.done,
    stop: () => runtime.stop(),
    isReady: () => runtime.isReady(),
    isHealthy: () => runtime.isHealthy(),
    metrics: runtime.metrics,
    settings: runtime.settings,
    logger: runtime.logger,
    get probePort() {
      return runtime.probePort;
    },
    get api() {
      return runtime.api;
    },
    get requestCount() {
      return runtime.requestCount;
    },
    metricsText: () => runtime.metrics.registry.metrics(),
  };
  if (waitReady) {
    try {
      await runtime.ready;
    } catch (error) {
      await runtime.stop();
      throw error;
    }
  }
  return handle;
}

/** `T` without its falsy members: what {@link waitFor} resolves with. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long. Defaults to 30 000 ms. */
  timeoutMs?: number;
  /** Pause between attempts. Defaults to 100 ms. */
  intervalMs?: number;
  /** Prefix of the timeout error. */
  message?: string;
}

/**
 * Calls `check` until it returns a truthy value (which is returned) or the timeout passes. A `check` that throws
 * counts as not yet; on timeout the last error (or falsy value) is reported.
 */
export async function waitFor<T>(check: () => T | Promise<T>, options: WaitForOptions = {}): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`${options.message ?? 'waitFor'}: timed out after ${timeoutMs} ms (last: ${detail})`, {
        cause: last,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
