/**
 * Figure 4, operator memory: VmRSS of the operator process (the real CLI, `fixtures/widget-operator.mjs`, cluster
 * scope, create + delete handler), idle and with `--objects` watched objects, read from /proc/<pid>/status.
 *
 * - idle: its CRD has no objects; measured once ready.
 * - loaded: the objects exist before the operator starts; it lists them, handles every one (finalizer, diff-base,
 *   Event; the fixture's handlers patch no status and return nothing, so no status write) and becomes ready;
 *   measured after its requests stopped (Events posted) and its RSS settled.
 * Both are read "settled" (no intervention: what the kubelet sees) and again after two forced full GCs (SIGUSR2, see
 * fixtures/gc-on-signal.mjs). Baseline in the same run: a bare `node` process with the same flags. The "new space"
 * column is the committed young generation (see `Reading.newSpaceMiB`).
 * Every run uses fresh CRDs; the table shows medians. The layer-by-layer breakdown is bench/rss.ts.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/memory.ts
 *        [--runs=3] [--objects=5000] [--node-flags="--max-semi-space-size=1"] [--quick]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { figure, fixed, median, numericOptions, printTable } from '@opkit/testbed/bench';
import { createWidgets, handlerSuccesses, startBenchCluster, type BenchCluster } from './lib/cluster.js';
import { metricSum, nodeFlagsFromArgs, startOperatorProcess, type OperatorProcess } from './lib/operator-process.js';
import { writeResults } from './lib/report.js';

const opts = numericOptions({ runs: 3, objects: 5000, parallel: 16 }, { runs: 1, objects: 2000 });
const MiB = 2 ** 20;

interface Reading {
  /** Time from spawn to /readyz 200, and the operator's CPU time until then (load-independent). */
  readyMs: number;
  readyCpuMs: number;
  /** VmRSS once settled, and after two forced GCs. */
  settledMiB: number;
  afterGcMiB: number;
  /** VmHWM: the highest RSS of the process's life. */
  peakMiB: number;
  /** Settled: anonymous memory and mapped files (mostly the node binary's code) of the RSS. */
  anonMiB: number;
  fileMiB: number;
  /** Settled: V8 heap committed (total) and used, from prom-client's process metrics. */
  heapTotalMiB: number;
  heapUsedSettledMiB: number;
  /** V8 heap used after the forced GCs. */
  heapUsedMiB: number;
  /**
   * Settled: committed size of V8's young generation (both semi-spaces). It grows to its maximum (2 x 16 MiB by
   * default on 64-bit) under a burst of allocations and is not given back while the process idles, so with the
   * initial list handled it is a large, fixed part of the heap committed (`--max-semi-space-size` caps it).
   */
  newSpaceMiB: number;
}

/** Waits until the operator stopped sending requests and its RSS stayed within 1 MiB for 5 s (at most 90 s). */
async function settle(operator: OperatorProcess): Promise<number> {
  const window: { requests: number; rss: number }[] = [];
  for (let i = 0; i < 90; i += 1) {
    await sleep(1000);
    const rss = operator.memory().rss;
    window.push({ requests: metricSum(await operator.metrics(), 'opkit_api_requests_total'), rss });
    const last = window.slice(-5);
    const quiet = last.length === 5 && last.every((s) => s.requests === last[0]!.requests);
    const rssValues = last.map((s) => s.rss);
    if (quiet && Math.max(...rssValues) - Math.min(...rssValues) < MiB) return rss;
  }
  return operator.memory().rss;
}

/**
 * Starts the operator on `plural` and reads its memory once settled. `objects`: how many objects exist, all of which
 * must have been handled by then (counted with `opkit_handler_runs_total`: the fixture's create handler leaves
 * nothing on the object but the finalizer and the diff-base annotation).
 */
async function measureOperator(cluster: BenchCluster, plural: string, objects: number): Promise<Reading> {
  const operator = await startOperatorProcess({
    nodeFlags: nodeFlagsFromArgs(),
    kubeconfigPath: cluster.controlPlane.kubeconfigPath,
    plural,
  });
  try {
    const readyMs = await operator.waitReady(900_000);
    const readyCpuMs = operator.cpuMs();
    const settled = await settle(operator);
    const { anon, file } = operator.memory();
    const settledMetrics = await operator.metrics();
    const handled = handlerSuccesses(settledMetrics, 'created');
    if (handled !== objects) throw new Error(`${plural}: ${handled} of ${objects} objects handled once settled`);
    await operator.forceGc();
    const { rss: afterGc, peak } = operator.memory();
    const heapUsed = metricSum(await operator.metrics(), 'nodejs_heap_size_used_bytes');
    return {
      readyMs,
      readyCpuMs,
      settledMiB: settled / MiB,
      afterGcMiB: afterGc / MiB,
      peakMiB: peak / MiB,
      anonMiB: anon / MiB,
      fileMiB: file / MiB,
      heapTotalMiB: metricSum(settledMetrics, 'nodejs_heap_size_total_bytes') / MiB,
      heapUsedSettledMiB: metricSum(settledMetrics, 'nodejs_heap_size_used_bytes') / MiB,
      heapUsedMiB: heapUsed / MiB,
      newSpaceMiB: metricSum(settledMetrics, 'nodejs_heap_space_size_total_bytes', 'space="new"') / MiB,
    };
  } finally {
    await operator.stop();
  }
}

/** RSS of a bare node process started with the operator's flags, after 3 s. */
async function bareNode(): Promise<number> {
  const child = spawn(process.execPath, ['--expose-gc', '-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  await sleep(3000);
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  child.kill('SIGKILL');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

async function main(): Promise<void> {
  console.log(`memory: operator process idle and with ${opts.objects} objects, ${opts.runs} run(s)`);
  const cluster = await startBenchCluster();
  const bare: number[] = [];
  const idle: Reading[] = [];
  const loaded: Reading[] = [];
  try {
    for (let run = 1; run <= opts.runs; run += 1) {
      bare.push(await bareNode());
      await cluster.installCrd(`idle${run}widgets`);
      idle.push(await measureOperator(cluster, `idle${run}widgets`, 0));
      await cluster.installCrd(`mem${run}widgets`);
      await createWidgets(cluster.client, `mem${run}widgets`, opts.objects, opts.parallel);
      loaded.push(await measureOperator(cluster, `mem${run}widgets`, opts.objects));
      const [i, l] = [idle.at(-1) as Reading, loaded.at(-1) as Reading];
      console.log(
        `run ${run}: bare ${fixed(bare.at(-1) as number)} MiB, idle ${fixed(i.settledMiB)} MiB, ` +
          `${opts.objects} objects ${fixed(l.settledMiB)} MiB (ready after ${fixed(l.readyMs / 1000)} s, peak ${fixed(l.peakMiB)} MiB)`,
      );
    }
  } finally {
    await cluster.stop();
  }
  const m = (readings: Reading[], key: keyof Reading): number => median(readings.map((r) => r[key]));
  const bareMiB = median(bare);
  const row = (label: string, readings: Reading[]): string[] => [
    label,
    fixed(m(readings, 'settledMiB')),
    `+${fixed(m(readings, 'settledMiB') - bareMiB)}`,
    `${fixed(m(readings, 'anonMiB'))} / ${fixed(m(readings, 'fileMiB'))}`,
    `${fixed(m(readings, 'heapUsedSettledMiB'))} / ${fixed(m(readings, 'heapTotalMiB'))}`,
    fixed(m(readings, 'newSpaceMiB')),
    fixed(m(readings, 'afterGcMiB')),
    fixed(m(readings, 'heapUsedMiB')),
    fixed(m(readings, 'peakMiB')),
  ];
  printTable(
    `Operator RSS in MiB (VmRSS), median of ${opts.runs} run(s); settled = requests stopped and RSS stable for 5 s`,
    [
      'figure',
      'settled',
      'vs bare',
      'anon / file',
      'heap used / committed',
      'new space',
      'after GC',
      'heap after GC',
      'peak',
    ],
    [
      ['baseline: bare node process', fixed(bareMiB), '', '', '', '', '', '', ''],
      row('idle, ready (target < 70)', idle),
      row(`${opts.objects} objects watched and handled (target < 100)`, loaded),
    ],
  );
  console.log(
    `time to ready with ${opts.objects} unhandled objects: ${fixed(m(loaded, 'readyMs') / 1000)} s, operator CPU ` +
      `${fixed(m(loaded, 'readyCpuMs') / 1000)} s (medians; idle start: ${fixed(m(idle, 'readyCpuMs') / 1000)} s CPU)`,
  );
  const baseline = { name: 'bare node', value: bareMiB };
  writeResults(
    'memory',
    [
      figure('idle RSS', m(idle, 'settledMiB'), 'MiB', { target: { op: '<', value: 70 }, baseline }),
      figure(`${opts.objects} objects RSS`, m(loaded, 'settledMiB'), 'MiB', {
        target: { op: '<', value: 100 },
        baseline,
      }),
      figure(`${opts.objects} objects RSS after forced GC`, m(loaded, 'afterGcMiB'), 'MiB'),
      figure(`${opts.objects} objects peak RSS`, m(loaded, 'peakMiB'), 'MiB'),
    ],
    { options: opts, bareMiB: bare, idle, loaded },
  );
}

await main();
