/**
 * Figure 1, throughput: 1,000 objects of a cluster-scoped CRD created at once, handled by the operator running as
 * a separate process (the real CLI, `fixtures/widget-operator.mjs`: one create handler, one delete handler, so the
 * finalizer is written too; both return nothing and patch nothing). Measured from the first create sent until the
 * driver's own watch has seen every object handled: handler run, finalizer and state written, i.e. the object carries
 * the finalizer and the diff-base annotation (`handledByOperator`). A handler that only succeeds costs no status
 * write (the framework records plain successes only when there is something else to write), so none is awaited.
 *
 * Baselines, in the same run:
 * - floor: the time the API server takes to accept the same 1,000 creates with no operator;
 * - replay: the same creates while the driver itself sends, per object, exactly the writes the operator sends, with
 *   the operator's concurrency (lib/replay.ts, without the status write): what any implementation of this write
 *   pattern costs.
 * Each run uses fresh CRDs and rotates the order of the three; ratios are medians of the per-run ratios.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/throughput.ts
 *        [--runs=3] [--objects=1000] [--parallel=8 (creates in flight)] [--concurrency=N (operator)]
 *        [--node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof" (operator process)] [--quick]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { figure, fixed, median, numericOptions, printTable, summarize } from '@opkit/testbed/bench';
import { DEFAULT_CONCURRENCY } from 'opkit';
import {
  collectionPath,
  createWidgets,
  handledByOperator,
  startBenchCluster,
  type BenchCluster,
} from './lib/cluster.js';
import { replayOperatorWrites } from './lib/replay.js';
import { metricSum, nodeFlagsFromArgs, startOperatorProcess } from './lib/operator-process.js';
import { withTimeout, writeResults } from './lib/report.js';

const opts = numericOptions({ runs: 3, objects: 1000, parallel: 8, concurrency: 0 }, { runs: 1 });

interface OperatorRun {
  /** First create sent -> last object seen handled. */
  handledMs: number;
  /** First create sent -> last create accepted (while the operator works). */
  createsMs: number;
  /** Per object: create accepted -> seen handled. */
  perObject: ReturnType<typeof summarize>;
  /** Operator requests by verb until everything was handled, and after the Events were posted. */
  requests: Record<string, number>;
  requestsWithEvents: number;
  events: number;
  cpuMs: number;
  /** kube-apiserver and etcd CPU time from the first create until everything was handled. */
  controlPlaneCpuMs: number;
  peakRssMiB: number;
}

interface FloorRun {
  ms: number;
  controlPlaneCpuMs: number;
}

const controlPlaneCpu = (cluster: BenchCluster): number => {
  const { apiServer, etcd } = cluster.controlPlaneCpuMs();
  return apiServer + etcd;
};

async function floorRun(cluster: BenchCluster, plural: string): Promise<FloorRun> {
  const cpuBefore = controlPlaneCpu(cluster);
  const ms = await createWidgets(cluster.client, plural, opts.objects, opts.parallel);
  return { ms, controlPlaneCpuMs: controlPlaneCpu(cluster) - cpuBefore };
}

async function replayRun(cluster: BenchCluster, plural: string, concurrency: number): Promise<FloorRun> {
  const cpuBefore = controlPlaneCpu(cluster);
  const ms = await replayOperatorWrites(cluster.client, plural, {
    objects: opts.objects,
    parallelCreates: opts.parallel,
    concurrency,
    // The fixture's handlers patch no status and return nothing: the operator sends no status write.
    statusWrite: false,
  });
  return { ms, controlPlaneCpuMs: controlPlaneCpu(cluster) - cpuBefore };
}

async function operatorRun(cluster: BenchCluster, plural: string): Promise<OperatorRun> {
  const operator = await startOperatorProcess({
    nodeFlags: nodeFlagsFromArgs(),
    kubeconfigPath: cluster.controlPlane.kubeconfigPath,
    plural,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  const watch = new AbortController();
  try {
    await operator.waitReady(60_000);
    const before = await operator.metrics();
    const cpuBefore = operator.cpuMs();
    const acceptedAt = new Map<string, number>();
    const handledAt = new Map<string, number>();
    let allHandled!: () => void;
    const done = new Promise<void>((resolve) => (allHandled = resolve));
    await cluster.client.watch(
      collectionPath(plural),
      (event) => {
        const { name } = event.object.metadata;
        if (event.type === 'MODIFIED' && !handledAt.has(name) && handledByOperator(event.object)) {
          handledAt.set(name, performance.now());
          if (handledAt.size === opts.objects) allHandled();
        }
      },
      watch.signal,
    );
    const controlPlaneBefore = controlPlaneCpu(cluster);
    const started = performance.now();
    const createsMs = await createWidgets(cluster.client, plural, opts.objects, opts.parallel, (name) =>
      acceptedAt.set(name, performance.now()),
    );
    await withTimeout(done, 300_000, () => `only ${handledAt.size} of ${opts.objects} handled after 300 s`);
    const handledMs = Math.max(...handledAt.values()) - started;
    const cpuMs = operator.cpuMs() - cpuBefore;
    const controlPlaneCpuMs = controlPlaneCpu(cluster) - controlPlaneBefore;
    const atHandled = await operator.metrics();
    // Events are posted by one background loop; let it finish to count its requests too.
    let withEvents = atHandled;
    for (let stable = 0, last = -1; stable < 3;) {
      await sleep(1000);
      withEvents = await operator.metrics();
      const total = metricSum(withEvents, 'opkit_api_requests_total');
      stable = total === last ? stable + 1 : 0;
      last = total;
    }
    const requests: Record<string, number> = {};
    for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete']) {
      const count =
        metricSum(atHandled, 'opkit_api_requests_total', `verb="${verb}"`) -
        metricSum(before, 'opkit_api_requests_total', `verb="${verb}"`);
      if (count) requests[verb] = count;
    }
    const perObject = [...handledAt].map(([name, at]) => at - (acceptedAt.get(name) ?? at));
    return {
      handledMs,
      createsMs,
      perObject: summarize(perObject),
      requests,
      requestsWithEvents:
        metricSum(withEvents, 'opkit_api_requests_total') - metricSum(before, 'opkit_api_requests_total'),
      events: metricSum(withEvents, 'opkit_events_total', 'outcome="created"'),
      cpuMs,
      controlPlaneCpuMs,
      peakRssMiB: operator.memory().peak / 2 ** 20,
    };
  } finally {
    watch.abort();
    await operator.stop();
  }
}

async function main(): Promise<void> {
  const concurrency = opts.concurrency || DEFAULT_CONCURRENCY;
  console.log(
    `throughput: ${opts.objects} creates (${opts.parallel} in flight), operator as a process with concurrency ` +
      `${concurrency}, ${opts.runs} run(s)`,
  );
  const cluster = await startBenchCluster();
  const floors: FloorRun[] = [];
  const replays: FloorRun[] = [];
  const runs: OperatorRun[] = [];
  try {
    for (let run = 1; run <= opts.runs; run += 1) {
      for (const kind of ['floor', 'replay', 'load']) await cluster.installCrd(`${kind}${run}widgets`);
      const steps = [
        async (): Promise<void> => void floors.push(await floorRun(cluster, `floor${run}widgets`)),
        async (): Promise<void> => void replays.push(await replayRun(cluster, `replay${run}widgets`, concurrency)),
        async (): Promise<void> => void runs.push(await operatorRun(cluster, `load${run}widgets`)),
      ];
      // Rotate the order, so a cluster that slows down as etcd grows favours no side.
      for (let i = 0; i < steps.length; i += 1) await steps[(i + run - 1) % steps.length]!();
      const [floor, replay, last] = [floors.at(-1), replays.at(-1), runs.at(-1)] as [FloorRun, FloorRun, OperatorRun];
      console.log(
        `run ${run}: floor ${fixed(floor.ms, 0)} ms, replay ${fixed(replay.ms, 0)} ms, handled ${fixed(last.handledMs, 0)} ms ` +
          `(creates accepted in ${fixed(last.createsMs, 0)} ms), operator CPU ${fixed(last.cpuMs, 0)} ms`,
      );
    }
  } finally {
    await cluster.stop();
  }

  const n = opts.objects;
  const floorMs = median(floors.map((f) => f.ms));
  const replayMs = median(replays.map((f) => f.ms));
  const handledMs = median(runs.map((r) => r.handledMs));
  // Ratios within each run first: the machine's load changes between runs more than within one.
  const ratio = (a: (i: number) => number, b: (i: number) => number): string =>
    `${fixed(median(runs.map((_, i) => a(i) / b(i))), 2)}x`;
  const handled = (i: number): number => runs[i]!.handledMs;
  const floor = (i: number): number => floors[i]!.ms;
  const replay = (i: number): number => replays[i]!.ms;
  const requestsPerObject = median(runs.map((r) => Object.values(r.requests).reduce((a, b) => a + b, 0))) / n;
  const withEventsPerObject = median(runs.map((r) => r.requestsWithEvents)) / n;
  const cpuPerObject = (values: FloorRun[] | OperatorRun[]): string =>
    fixed(median(values.map((v) => v.controlPlaneCpuMs)) / n, 2);
  printTable(
    `Throughput, ${n} objects, median of ${opts.runs} run(s); ratios are medians of the per-run ratios`,
    ['figure', 'median', 'unit', 'vs floor', 'vs replay'],
    [
      ['floor: API accepts the creates (no operator)', fixed(floorMs, 0), 'ms', '1.00x', ''],
      [
        `replay: the operator's writes sent directly, ${concurrency} at a time`,
        fixed(replayMs, 0),
        'ms',
        ratio(replay, floor),
        '1.00x',
      ],
      [
        'all handled (operator process, target < 10 s)',
        fixed(handledMs, 0),
        'ms',
        ratio(handled, floor),
        ratio(handled, replay),
      ],
      ['  creates accepted while the operator works', fixed(median(runs.map((r) => r.createsMs)), 0), 'ms', '', ''],
      [
        '  per object: accepted -> handled, median',
        fixed(median(runs.map((r) => r.perObject.median)), 0),
        'ms',
        '',
        '',
      ],
      ['  per object: accepted -> handled, p90', fixed(median(runs.map((r) => r.perObject.p90)), 0), 'ms', '', ''],
      ['handled objects per second', fixed((n / handledMs) * 1000, 0), '/s', '', ''],
      ['operator requests per object (until handled)', fixed(requestsPerObject, 2), 'req', '', ''],
      ['operator requests per object (with Events)', fixed(withEventsPerObject, 2), 'req', '', ''],
      ['operator CPU per object', fixed(median(runs.map((r) => r.cpuMs)) / n, 2), 'ms', '', ''],
      ['API server + etcd CPU per object: floor', cpuPerObject(floors), 'ms', '', ''],
      ['API server + etcd CPU per object: replay', cpuPerObject(replays), 'ms', '', ''],
      ['API server + etcd CPU per object: operator', cpuPerObject(runs), 'ms', '', ''],
      ['operator peak RSS', fixed(median(runs.map((r) => r.peakRssMiB)), 1), 'MiB', '', ''],
    ],
  );
  writeResults(
    'throughput',
    [
      figure(`${n} creates handled`, handledMs, 'ms', {
        target: { op: '<=', value: 10_000 },
        baseline: { name: 'API accepts', value: floorMs },
      }),
      figure(`${n} creates handled vs the same writes without framework`, handledMs, 'ms', {
        baseline: { name: 'replay', value: replayMs },
      }),
      figure('operator requests per created object', requestsPerObject, 'requests'),
    ],
    { options: { ...opts, concurrency }, floors, replays, runs },
  );
}

await main();
