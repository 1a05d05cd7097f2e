/** The summary of a package's benchmarks: one table of the headline figures of their last runs. */
import { flag } from './options.js';
import { readResults, writeResults, type BenchPaths, type Figure, type ResultFile } from './results.js';
import { fixed, printTable } from './table.js';

/** Options of {@link printSummary}: what the packages' summaries do differently. */
export interface SummaryOptions {
  paths: BenchPaths;
  /** The benchmarks whose `results/<name>.json` are collected, in the order of the table. */
  benchmarks: readonly string[];
  /** The title of the table. */
  title(files: readonly ResultFile[]): string;
  /** Lines printed before the table (e.g. where and when each result was measured). */
  preface?(files: readonly ResultFile[]): string[];
  /** Decimals of a value or a baseline in the table. */
  digits(value: number): number;
  /** Whether each row names its benchmark (`latency: <figure>`), for figure names that do not say it themselves. */
  qualifyNames?: boolean;
  /** Whether the missed targets are listed once more after the table. */
  listMissed?: boolean;
}

/**
 * Prints one table of the headline figures in `results/<benchmark>.json` (written by the last runs), with their
 * same-run baselines and targets, and stores them as `results/summary.json`, each named `<benchmark>: <figure>`.
 * Benchmarks report, they do not gate: the exit code is 1 only when a target is missed and `--strict` was given.
 */
export function printSummary(options: SummaryOptions): number {
  const { digits } = options;
  const files = readResults(options.paths, options.benchmarks);
  const rows = files.flatMap((file) =>
    file.figures.map((f) => [
      options.qualifyNames ? `${file.benchmark}: ${f.name}` : f.name,
      `${fixed(f.value, digits(f.value))} ${f.unit}`,
      f.baseline ? `${fixed(f.baseline.value, digits(f.baseline.value))} (${f.baseline.name})` : '',
      ratioCell(f),
      f.target ? `${f.target.op} ${f.target.value}` : '',
      f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
    ]),
  );
  for (const line of options.preface?.(files) ?? []) console.log(line);
  printTable(options.title(files), ['figure', 'value', 'same-run baseline', 'ratio', 'target', ''], rows);
  const figures = files.flatMap((file) => file.figures.map((f) => ({ ...f, name: `${file.benchmark}: ${f.name}` })));
  writeResults(options.paths, 'summary', figures, {
    environments: Object.fromEntries(files.map((file) => [file.benchmark, file.environment])),
  });
  const missed = figures.filter((f) => f.met === false);
  if (options.listMissed && missed.length > 0) console.log(`targets missed: ${missed.map((f) => f.name).join('; ')}`);
  return flag('strict') && missed.length > 0 ? 1 : 0;
}

/** `1.05x`: the stored ratio to the baseline, computed for results written before figures stored it. */
function ratioCell(f: Figure): string {
  if (!f.baseline) return '';
  if (f.baseline.ratio !== undefined) return `${fixed(f.baseline.ratio, 2)}x`;
  return f.baseline.value === 0 ? '' : `${fixed(f.value / f.baseline.value, 2)}x`;
}
