/**
 * @opkit/testbed/bench: what the benchmarks of every package share to report their results: statistics of samples,
 * command-line options, plain-text tables, the `results/<name>.json` files and the summary of the last runs.
 * What each package measures, and where its results go, stays in that package's `bench/`.
 */
export { flag, numericOptions, stringOption } from './options.js';
export {
  cpuPressure,
  environment,
  figure,
  readResults,
  writeResults,
  type BenchPaths,
  type Environment,
  type Figure,
  type ResultFile,
  type Target,
} from './results.js';
export { median, quantile, summarize, type Summary } from './stats.js';
export { printSummary, type SummaryOptions } from './summary.js';
export { fixed, printTable } from './table.js';
