/**
 * The life of an operator process around its runtime: what `opkit run` does after starting the operators, for
 * programs that start them themselves (`runOperators` in their own entry point, like the StaticRoute operator).
 */
import type { OperatorRuntime } from '../engine/runtime.js';

/**
 * Runs until the runtime stops, stopping it gracefully on SIGTERM or SIGINT: no new work, running handlers finish
 * within the grace period. A second signal exits at once with status 1 (an impatient operator or kubelet). Resolves
 * with the exit status for the process: 0 after a stop, 1 when the runtime failed to start (logged as fatal).
 */
export async function runUntilSignalled(runtime: OperatorRuntime): Promise<number> {
  const logger = runtime.logger;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received: stopping gracefully');
    void runtime.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await runtime.ready;
  } catch (error) {
    // A start cut short by a signal is a stop, not a failure.
    if (signals === 0) {
      logger.fatal({ err: error }, 'operator failed to start');
      await runtime.stop();
      return 1;
    }
  }
  await runtime.done;
  return 0;
}
