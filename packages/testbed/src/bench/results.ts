/**
 * The JSON every benchmark writes to `bench/results/<name>.json`, in every package that has benchmarks: `benchmark`,
 * `environment` (where and when it was measured), `figures` (the headline numbers with their same-run baseline and
 * target) and `data` (every raw sample, so medians can be recomputed). One shape, so one summary reads them all.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where a package's benchmarks live. */
export interface BenchPaths {
  /** The bench folder: results are read from and written to `results/` below it. */
  benchDir: string;
  /** The repository root: git describes the commit from there, and paths are printed relative to it. */
  repoDir: string;
}

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

/** This process's environment; `repoDir` is the repository whose commit is recorded. */
export function environment(repoDir: string): Environment {
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
    kernel: os.release(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
    cpuPressure: cpuPressure(),
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: git('status', '--porcelain').length > 0,
    command: ['node', ...process.execArgv, path.relative(repoDir, process.argv[1] ?? ''), ...process.argv.slice(2)]
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

/** A target a figure should meet: `value <op> target.value`. */
export interface Target {
  op: '<' | '<=' | '>' | '>=';
  value: number;
}

/** A headline figure, with its same-run baseline and its target. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The comparison measured in the same run (e.g. the API server accepting the creates with no operator). */
  baseline?: { name: string; value: number; ratio?: number };
  target?: Target;
  met?: boolean;
}

const meets: Record<Target['op'], (value: number, target: number) => boolean> = {
  '<': (value, target) => value < target,
  '<=': (value, target) => value <= target,
  '>': (value, target) => value > target,
  '>=': (value, target) => value >= target,
};

/** Builds a figure: the ratio to its baseline, and whether its target is met. */
export function figure(
  name: string,
  value: number,
  unit: string,
  options: { target?: Target; baseline?: { name: string; value: number } } = {},
): Figure {
  const result: Figure = { name, value, unit };
  if (options.baseline) {
    result.baseline = { ...options.baseline, ratio: Number((value / options.baseline.value).toFixed(2)) };
  }
  if (options.target) {
    result.target = options.target;
    result.met = meets[options.target.op](value, options.target.value);
  }
  return result;
}

/** The content of `results/<name>.json`. */
export interface ResultFile {
  benchmark: string;
  environment: Environment;
  figures: Figure[];
  data: unknown;
}

/** Writes `results/<name>.json` below the bench folder: the environment, the headline figures and the raw data. */
export function writeResults(paths: BenchPaths, name: string, figures: Figure[], data: unknown): string {
  const dir = path.join(paths.benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const body: ResultFile = { benchmark: name, environment: environment(paths.repoDir), figures, data };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(paths.repoDir, file)}`);
  return file;
}

/** Reads `results/<name>.json` of each benchmark in `names` that has run, in that order, and notes the others. */
export function readResults(paths: BenchPaths, names: readonly string[]): ResultFile[] {
  const files: ResultFile[] = [];
  for (const name of names) {
    const file = path.join(paths.benchDir, 'results', `${name}.json`);
    if (existsSync(file)) files.push(JSON.parse(readFileSync(file, 'utf8')) as ResultFile);
    else console.log(`(no results/${name}.json yet)`);
  }
  return files;
}
