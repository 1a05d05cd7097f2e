/**
 * Statistics, options, tables and the JSON every benchmark of the operator writes to `bench/results/<name>.json`.
 *
 * The JSON has the shape the framework's benchmarks use (`benchmark`, `environment`, `figures`, `data`), so one
 * summary script can read both: `figures` are the headline numbers with their same-run baseline and target, `data`
 * holds every raw sample so medians can be recomputed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/staticroute-operator/bench */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** packages/staticroute-operator */
export const PACKAGE_DIR = path.resolve(BENCH_DIR, '..');
/** The repository root. */
export const REPO_DIR = path.resolve(PACKAGE_DIR, '../..');

/** The value at quantile `q` (0..1), interpolating linearly between the closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = sorted[Math.floor(position)] as number;
  const above = sorted[Math.ceil(position)] as number;
  return below + (above - below) * (position - Math.floor(position));
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** Median, p90, min and max of the finite values (NaN marks a sample that could not be taken). */
export function summarize(all: readonly number[]): Summary {
  const values = all.filter(Number.isFinite);
  let min = Number.NaN;
  let max = Number.NaN;
  for (const value of values) {
    if (!(value >= min)) min = value;
    if (!(value <= max)) max = value;
  }
  return { n: values.length, median: median(values), p90: quantile(values, 0.9), min, max };
}

/**
 * `--name=value` options over numeric defaults (`--cold-runs=2` sets `coldRuns`); `--quick` applies the quick
 * defaults first. Options that name no default are left to {@link stringOption}.
 */
export function numericOptions<T extends Record<string, number>>(defaults: T, quick: Partial<T> = {}): T {
  const args = process.argv.slice(2);
  const result: Record<string, number> = { ...defaults, ...(args.includes('--quick') ? quick : {}) };
  for (const arg of args) {
    if (arg === '--quick' || !arg.startsWith('--')) continue;
    const match = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    const key = match?.[1]?.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (!match || key === undefined || !(key in result)) continue;
    const value = Number(match[2]);
    if (!Number.isFinite(value)) throw new Error(`option ${arg}: not a number`);
    result[key] = value;
  }
  return result as T;
}

/** A string option `--name=value` (undefined when absent). */
export function stringOption(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .slice(2)
    .find((arg) => arg.startsWith(prefix))
    ?.slice(prefix.length);
}

export const flag = (name: string): boolean => process.argv.slice(2).includes(`--${name}`);

/** Prints a table: first column left-aligned, the others right-aligned. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const format = (row: string[]): string =>
    row
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number),
      )
      .join('  ');
  console.log(`\n${title}`);
  console.log(format(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of cells.slice(1)) console.log(format(row));
}

/** `value` with `digits` decimals, or `-` when it is not a number. */
export const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** `12,345` */
export const grouped = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';

/** Where and when a result was measured. */
export interface Environment {
  date: string;
  node: string;
  kernel: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages when the benchmark ended (the machine is shared). */
  loadAverage: number[];
  /** `/proc/pressure/cpu` "some" avg10/avg60 at the end: the share of time runnable tasks waited for a CPU. */
  cpuPressure: string;
  commit: string;
  dirty: boolean;
  command: string;
}

export function environment(): Environment {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', ['-C', REPO_DIR, ...args], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    node: process.version,
    kernel: os.release(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
    cpuPressure: cpuPressure(),
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: git('status', '--porcelain').length > 0,
    command: ['node', ...process.execArgv, path.relative(REPO_DIR, process.argv[1] ?? ''), ...process.argv.slice(2)]
      .join(' ')
      .trim(),
  };
}

/** `some avg10=.. avg60=..` from /proc/pressure/cpu, or '' where PSI is not available. */
export function cpuPressure(): string {
  try {
    const line = readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0] ?? '';
    return line.replace(/ avg300=\S+ total=\S+/, '');
  } catch {
    return '';
  }
}

/** A headline figure, with its same-run baseline and its target. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number; ratio: number };
  target?: { op: '<' | '>='; value: number };
  met?: boolean;
}

export function figure(
  name: string,
  value: number,
  unit: string,
  options: { target?: Figure['target']; baseline?: { name: string; value: number } } = {},
): Figure {
  const result: Figure = { name, value, unit };
  if (options.baseline) {
    result.baseline = { ...options.baseline, ratio: Number((value / options.baseline.value).toFixed(2)) };
  }
  if (options.target) {
    result.target = options.target;
    result.met = options.target.op === '<' ? value < options.target.value : value >= options.target.value;
  }
  return result;
}

/** Prints the figures as a table (value, baseline and ratio, target and whether it is met). */
export function printFigures(title: string, figures: Figure[]): void {
  printTable(
    title,
    ['figure', 'value', 'baseline (same run)', 'ratio', 'target', 'met'],
    figures.map((f) => [
      f.name,
      `${fixed(f.value, f.value >= 100 ? 0 : 2)} ${f.unit}`,
      f.baseline ? `${f.baseline.name}: ${fixed(f.baseline.value, f.baseline.value >= 100 ? 0 : 3)}` : '',
      f.baseline ? `${fixed(f.baseline.ratio, 2)}x` : '',
      f.target ? `${f.target.op} ${f.target.value} ${f.unit}` : '',
      f.met === undefined ? '' : f.met ? 'yes' : 'NO',
    ]),
  );
}

/** Writes `bench/results/<name>.json` and returns its path. */
export function writeResults(name: string, figures: Figure[], data: unknown): string {
  const dir = path.join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const body = { benchmark: name, environment: environment(), figures, data };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(REPO_DIR, file)}`);
  return file;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
