/**
 * Statistics, command-line options, tables and the JSON results every benchmark writes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench folder (results go to `results/` below it). */
export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The framework package. */
export const frameworkDir = path.resolve(benchDir, '..');
/** The repository root. */
export const repoDir = path.resolve(frameworkDir, '../..');

/** The value at quantile `q` (0..1) by linear interpolation between closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

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

/** Median, p90, min and max of samples, plus their count. */
export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    p90: quantile(values, 0.9),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** `--name=value` options, with numeric defaults; `--quick` selects the quick defaults. */
export function options<T extends Record<string, number>>(full: T, quick: Partial<T> = {}): T {
  const args = process.argv.slice(2);
  const isQuick = args.includes('--quick');
  const result = { ...full, ...(isQuick ? quick : {}) } as Record<string, number>;
  for (const arg of args) {
    const match = /^--([a-z-]+)=(.+)$/.exec(arg);
    if (!match) continue;
    const key = match[1]!.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    if (key in result) result[key] = Number(match[2]);
  }
  return result as T;
}

/** Prints a table with a header row; the first column left-aligned, the others right-aligned. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

/** Formats a number with `digits` decimals. */
export const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** Where and how a result was measured. */
export interface Environment {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  loadAverage: number[];
  commit: string;
  dirty: boolean;
  command: string;
}

export function environment(): Environment {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', ['-C', repoDir, ...args], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: git('status', '--porcelain').length > 0,
    command:
      `node ${process.execArgv.join(' ')} ${path.relative(repoDir, process.argv[1] ?? '')} ${process.argv.slice(2).join(' ')}`.replace(
        /\s+/g,
        ' ',
      ),
  };
}

/** One figure compared with its target, for the summary. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The same-run baseline, when there is one. */
  baseline?: { name: string; value: number };
  target?: { op: '<' | '<='; value: number };
  met?: boolean;
}

/** Builds a figure and decides whether its target is met. */
export function figure(
  name: string,
  value: number,
  unit: string,
  target?: Figure['target'],
  baseline?: Figure['baseline'],
): Figure {
  const met = target ? (target.op === '<' ? value < target.value : value <= target.value) : undefined;
  return { name, value, unit, ...(baseline ? { baseline } : {}), ...(target ? { target, met } : {}) };
}

/** Writes `results/<name>.json`: the environment, the headline figures and the raw data. */
export function writeResults(name: string, figures: Figure[], data: unknown): string {
  const dir = path.join(benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ benchmark: name, environment: environment(), figures, data }, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(repoDir, file)}`);
  return file;
}
