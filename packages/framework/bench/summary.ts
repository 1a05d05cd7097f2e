/**
 * Prints one table of the headline figures in results/*.json (written by the benchmarks of the last run), with
 * their same-run baselines and targets, and stores it as results/summary.json. Benchmarks report, they do not gate:
 * a missed target exits 1 only with `--strict`.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/summary.ts [--strict]
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { benchDir, fixed, printTable, writeResults, type Environment, type Figure } from './lib/report.js';

const BENCHMARKS = ['throughput', 'latency', 'requests', 'memory', 'rss'];

interface ResultFile {
  benchmark: string;
  environment: Environment;
  figures: Figure[];
}

function main(): number {
  const files: ResultFile[] = [];
  for (const name of BENCHMARKS) {
    const file = path.join(benchDir, 'results', `${name}.json`);
    if (existsSync(file)) files.push(JSON.parse(readFileSync(file, 'utf8')) as ResultFile);
    else console.log(`(no results/${name}.json)`);
  }
  const rows = files.flatMap((file) =>
    file.figures.map((f) => [
      `${file.benchmark}: ${f.name}`,
      `${fixed(f.value, f.value < 10 ? 2 : 1)} ${f.unit}`,
      f.baseline ? `${fixed(f.baseline.value, f.baseline.value < 10 ? 2 : 1)} (${f.baseline.name})` : '',
      f.baseline && f.baseline.value !== 0 ? `${fixed(f.value / f.baseline.value, 2)}x` : '',
      f.target ? `${f.target.op} ${f.target.value}` : '',
      f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
    ]),
  );
  const first = files[0]?.environment;
  printTable(
    `Summary${first ? ` (${first.cpus} CPUs ${first.cpuModel}, Node ${first.node}, commit ${first.commit}${first.dirty ? '+changes' : ''})` : ''}`,
    ['figure', 'value', 'same-run baseline', 'ratio', 'target', ''],
    rows,
  );
  const figures = files.flatMap((file) => file.figures.map((f) => ({ ...f, name: `${file.benchmark}: ${f.name}` })));
  writeResults('summary', figures, { sources: files.map((file) => file.environment) });
  const missed = figures.filter((f) => f.met === false);
  if (missed.length > 0) console.log(`targets missed: ${missed.map((f) => f.name).join('; ')}`);
  return missed.length > 0 && process.argv.includes('--strict') ? 1 : 0;
}

process.exitCode = main();
