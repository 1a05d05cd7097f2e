/**
 * The life of an operator process around its runtime: what `opkit run` does after starting the operators, for
 * programs that start them themselves (`runOperators` in their own entry point, like the StaticRoute operator).
 */
import type { OperatorRuntime } from '../engine/runtime.js';

/**
 * The exit status after the runtime lost the leader election Lease: non-zero, so that the Deployment's restart makes
 * a fresh process that comes back as a standby (as controller-runtime's managers exit).
 */
export const EXIT_LEADERSHIP_LOST = 1;

/**
 * Runs until the runtime stops, stopping it gracefully on SIGTERM or SIGINT: no new work, running handlers finish
 * within the grace period. A second signal exits at once with status 1 (an impatient operator or kubelet). Resolves
 * with the exit status for the process: 0 after a stop, 1 when the runtime failed to start (logged as fatal), and
 * {@link EXIT_LEADERSHIP_LOST} when it stopped because it lost the leader election Lease. The signal handlers are
 * removed when it resolves.
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
    try {
      await runtime.ready;
    } catch (error) {
      // A start cut short by a signal is a stop, not a failure.
      if (signals === 0) {
        await runtime.stop();
        // Leadership lost during startup ends the start too: that is the standby's normal way back, not a fault.
        if ((await runtime.done) === 'leadership-lost') return EXIT_LEADERSHIP_LOST;
        logger.fatal({ err: error }, 'operator failed to start');
        return 1;
      }
    }
    const reason = await runtime.done;
    return reason === 'leadership-lost' ? EXIT_LEADERSHIP_LOST : 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
