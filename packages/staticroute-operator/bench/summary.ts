/**
 * One table of the headline figures in results/*.json (from the last runs of the operator's benchmarks), with their
 * same-run baselines and targets; stored as results/summary.json. Benchmarks report, they do not gate: a missed
 * target exits 1 only with `--strict`.
 *
 * Run: node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/summary.ts [--strict]
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, fixed, flag, printTable, writeResults, type Environment, type Figure } from './lib/report.js';

const BENCHMARKS = ['netlink-throughput', 'apply-latency', 'cold-start'];

interface ResultFile {
  benchmark: string;
  environment: Environment;
  figures: Figure[];
}

function main(): number {
  const files: ResultFile[] = [];
  for (const name of BENCHMARKS) {
    const file = path.join(BENCH_DIR, 'results', `${name}.json`);
    if (existsSync(file)) files.push(JSON.parse(readFileSync(file, 'utf8')) as ResultFile);
    else console.log(`(no results/${name}.json yet)`);
  }
  const digits = (value: number): number => (Math.abs(value) < 10 ? 2 : Math.abs(value) < 1000 ? 1 : 0);
  const rows = files.flatMap((file) =>
    file.figures.map((f) => [
      f.name,
      `${fixed(f.value, digits(f.value))} ${f.unit}`,
      f.baseline ? `${fixed(f.baseline.value, digits(f.baseline.value))} (${f.baseline.name})` : '',
      f.baseline ? `${fixed(f.baseline.ratio, 2)}x` : '',
      f.target ? `${f.target.op} ${f.target.value}` : '',
      f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
    ]),
  );
  for (const file of files) {
    const e = file.environment;
    console.log(
      `${file.benchmark}: ${e.date}, Node ${e.node}, ${e.cpus} CPUs, load ${e.loadAverage.join(' ')}, ` +
        `CPU pressure ${e.cpuPressure || '?'}, commit ${e.commit}${e.dirty ? '+changes' : ''}`,
    );
  }
  printTable('StaticRoute operator: summary', ['figure', 'value', 'same-run baseline', 'ratio', 'target', ''], rows);
  const figures = files.flatMap((file) => file.figures.map((f) => ({ ...f, name: `${file.benchmark}: ${f.name}` })));
  writeResults('summary', figures, {
    environments: Object.fromEntries(files.map((f) => [f.benchmark, f.environment])),
  });
  const missed = figures.filter((f) => f.met === false);
  return flag('strict') && missed.length > 0 ? 1 : 0;
}

process.exit(main());
