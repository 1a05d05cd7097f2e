/**
 * Where the framework's benchmarks write their results, and the helpers only they use. The statistics, options,
 * tables and result files are shared with the operator's benchmarks: `@opkit/testbed/bench`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResults as writeResultsTo, type BenchPaths, type Figure } from '@opkit/testbed/bench';

/** The bench folder (results go to `results/` below it). */
export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The framework package. */
export const frameworkDir = path.resolve(benchDir, '..');
/** The repository root. */
export const repoDir = path.resolve(frameworkDir, '../..');
/** The folders the shared reporting needs. */
export const benchPaths: BenchPaths = { benchDir, repoDir };

/** Writes `results/<name>.json`: the environment, the headline figures and the raw data. */
export const writeResults = (name: string, figures: Figure[], data: unknown): string =>
  writeResultsTo(benchPaths, name, figures, data);

/** `promise`, or a rejection after `ms`; the timer is cleared either way (it must not keep the process alive). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
