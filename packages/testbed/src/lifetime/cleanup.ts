/** Removing what dead runs left behind (their owner was killed before the reaper could act, or the machine rebooted). */
import { runCommand } from '../exec.js';
import { helperScriptPath } from './helper-scripts.js';
import { testbedRoot } from './paths.js';

/**
 * Removes run folders, network namespaces (`otb-<pid>-<id>-*`) and processes (command lines naming a run folder)
 * whose owner process is dead. Runs of live processes, including this one, are left alone. Resolves with what was
 * removed.
 */
export async function cleanupLeftovers(): Promise<string[]> {
  const { stdout } = await runCommand([process.execPath, helperScriptPath('reaper'), 'sweep', testbedRoot()]);
  return JSON.parse(stdout.trim() || '[]') as string[];
}
