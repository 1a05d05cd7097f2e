/**
 * Where the operator's benchmarks write their results (`bench/results/<name>.json`), and the helpers only they use.
 * The statistics, options, tables and result files are shared with the framework's benchmarks, in the same JSON
 * shape so that one summary reads both: `@opkit/testbed/bench`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixed, printTable, writeResults as writeResultsTo, type BenchPaths, type Figure } from '@opkit/testbed/bench';

/** packages/staticroute-operator/bench */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** packages/staticroute-operator */
export const PACKAGE_DIR = path.resolve(BENCH_DIR, '..');
/** The repository root. */
export const REPO_DIR = path.resolve(PACKAGE_DIR, '../..');
/** The folders the shared reporting needs. */
export const BENCH_PATHS: BenchPaths = { benchDir: BENCH_DIR, repoDir: REPO_DIR };

/** Writes `bench/results/<name>.json` and returns its path. */
export const writeResults = (name: string, figures: Figure[], data: unknown): string =>
  writeResultsTo(BENCH_PATHS, name, figures, data);

/** `12,345` */
export const grouped = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';

/** Prints the figures as a table (value, baseline and ratio, target and whether it is met). */
export function printFigures(title: string, figures: Figure[]): void {
  printTable(
    title,
    ['figure', 'value', 'baseline (same run)', 'ratio', 'target', 'met'],
    figures.map((f) => [
      f.name,
      `${fixed(f.value, f.value >= 100 ? 0 : 2)} ${f.unit}`,
      f.baseline ? `${f.baseline.name}: ${fixed(f.baseline.value, f.baseline.value >= 100 ? 0 : 3)}` : '',
      f.baseline?.ratio === undefined ? '' : `${fixed(f.baseline.ratio, 2)}x`,
      f.target ? `${f.target.op} ${f.target.value} ${f.unit}` : '',
      f.met === undefined ? '' : f.met ? 'yes' : 'NO',
    ]),
  );
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
