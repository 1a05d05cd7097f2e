/**
 * Prints one table of the headline figures in results/*.json (written by the benchmarks of the last run), with
 * their same-run baselines and targets, and stores it as results/summary.json. Benchmarks report, they do not gate:
 * a missed target exits 1 only with `--strict`.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/summary.ts [--strict]
 */
import { printSummary } from '@opkit/testbed/bench';
import { benchPaths } from './lib/report.js';

process.exitCode = printSummary({
  paths: benchPaths,
  benchmarks: ['throughput', 'latency', 'requests', 'memory', 'rss'],
  title: (files) => {
    const first = files[0]?.environment;
    return `Summary${first ? ` (${first.cpus} CPUs ${first.cpuModel}, Node ${first.node}, commit ${first.commit}${first.dirty ? '+changes' : ''})` : ''}`;
  },
  digits: (value) => (value < 10 ? 2 : 1),
  // The figure names do not say which benchmark measured them.
  qualifyNames: true,
  listMissed: true,
});
