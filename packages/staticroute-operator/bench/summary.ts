/**
 * One table of the headline figures in results/*.json (from the last runs of the operator's benchmarks), with their
 * same-run baselines and targets; stored as results/summary.json. Benchmarks report, they do not gate: a missed
 * target exits 1 only with `--strict`.
 *
 * Run: node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/summary.ts [--strict]
 */
import { printSummary } from '@opkit/testbed/bench';
import { BENCH_PATHS } from './lib/report.js';

process.exitCode = printSummary({
  paths: BENCH_PATHS,
  benchmarks: ['netlink-throughput', 'apply-latency', 'cold-start'],
  title: () => 'StaticRoute operator: summary',
  // The machine is shared: each result says how loaded it was while it ran.
  preface: (files) =>
    files.map(
      ({ benchmark, environment: e }) =>
        `${benchmark}: ${e.date}, Node ${e.node}, ${e.cpus} CPUs, load ${e.loadAverage.join(' ')}, ` +
        `CPU pressure ${e.cpuPressure || '?'}, commit ${e.commit}${e.dirty ? '+changes' : ''}`,
    ),
  digits: (value) => (Math.abs(value) < 10 ? 2 : Math.abs(value) < 1000 ? 1 : 0),
});
