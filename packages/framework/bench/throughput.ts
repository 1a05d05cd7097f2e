/**
 * Figure 1, throughput: 1,000 objects of a cluster-scoped CRD created at once, handled by the operator running as
 * a separate process (the real CLI, `fixtures/widget-operator.mjs`: one create handler, one delete handler, so the
 * finalizer is written too). Measured from the first create sent until the driver's own watch has seen every object
 * carry the finalizer, the diff-base annotation and the handler's success in status.
 *
 * Baseline, in the same run: the time the API server takes to accept the same 1,000 creates with no operator
 * (the floor). Each run uses fresh CRDs; floor and operator alternate their order between runs.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/throughput.ts
 *        [--runs=3] [--objects=1000] [--parallel=8 (creates in flight)] [--concurrency=N (operator)]
 *        [--node-flags="--cpu-prof --cpu-prof-dir=/tmp/prof" (operator process)] [--quick]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  collectionPath,
  createWidgets,
  handledByOperator,
  startBenchCluster,
  type BenchCluster,
} from './lib/cluster.js';
import { metricSum, nodeFlagsFromArgs, startOperatorProcess } from './lib/operator-process.js';
import { figure, fixed, median, options, printTable, summarize, writeResults } from './lib/report.js';

const opts = options({ runs: 3, objects: 1000, parallel: 8, concurrency: 0 }, { runs: 1 });

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
        if (event.type === 'MODIFIED' && !handledAt.has(name) && handledByOperator(event.object, 'created')) {
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
    const timeout = sleep(180_000).then(() => {
      throw new Error(`only ${handledAt.size} of ${opts.objects} handled after 180 s`);
    });
    await Promise.race([done, timeout]);
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
  console.log(
    `throughput: ${opts.objects} creates (${opts.parallel} in flight), operator as a process, ${opts.runs} run(s)`,
  );
  const cluster = await startBenchCluster();
  const floors: FloorRun[] = [];
  const runs: OperatorRun[] = [];
  try {
    for (let run = 1; run <= opts.runs; run += 1) {
      await cluster.installCrd(`floor${run}widgets`);
      await cluster.installCrd(`load${run}widgets`);
      const floor = async (): Promise<void> => {
        floors.push(await floorRun(cluster, `floor${run}widgets`));
      };
      const load = async (): Promise<void> => {
        runs.push(await operatorRun(cluster, `load${run}widgets`));
      };
      // Alternate the order, so a cluster that slows down as etcd grows does not favour one side.
      for (const step of run % 2 ? [floor, load] : [load, floor]) await step();
      const last = runs.at(-1) as OperatorRun;
      console.log(
        `run ${run}: floor ${fixed((floors.at(-1) as FloorRun).ms, 0)} ms, handled ${fixed(last.handledMs, 0)} ms ` +
          `(creates accepted in ${fixed(last.createsMs, 0)} ms), operator CPU ${fixed(last.cpuMs, 0)} ms`,
      );
    }
  } finally {
    await cluster.stop();
  }

  const floorMs = median(floors.map((f) => f.ms));
  const handledMs = median(runs.map((r) => r.handledMs));
  const requestsPerObject =
    median(runs.map((r) => Object.values(r.requests).reduce((a, b) => a + b, 0))) / opts.objects;
  const withEventsPerObject = median(runs.map((r) => r.requestsWithEvents)) / opts.objects;
  const n = opts.objects;
  printTable(
    `Throughput, ${n} objects, median of ${opts.runs} run(s)`,
    ['figure', 'median', 'unit', 'vs floor'],
    [
      ['floor: API accepts the creates (no operator)', fixed(floorMs, 0), 'ms', '1.00x'],
      ['all handled (operator process, target < 10 s)', fixed(handledMs, 0), 'ms', `${fixed(handledMs / floorMs, 2)}x`],
      ['  creates accepted while the operator works', fixed(median(runs.map((r) => r.createsMs)), 0), 'ms', ''],
      ['  per object: accepted -> handled, median', fixed(median(runs.map((r) => r.perObject.median)), 0), 'ms', ''],
      ['  per object: accepted -> handled, p90', fixed(median(runs.map((r) => r.perObject.p90)), 0), 'ms', ''],
      ['handled objects per second', fixed((n / handledMs) * 1000, 0), '/s', ''],
      ['operator requests per object (until handled)', fixed(requestsPerObject, 2), 'req', ''],
      ['operator requests per object (with Events)', fixed(withEventsPerObject, 2), 'req', ''],
      ['operator CPU per object', fixed(median(runs.map((r) => r.cpuMs)) / n, 2), 'ms', ''],
      [
        'API server + etcd CPU per object: floor / operator',
        `${fixed(median(floors.map((f) => f.controlPlaneCpuMs)) / n, 2)} / ${fixed(median(runs.map((r) => r.controlPlaneCpuMs)) / n, 2)}`,
        'ms',
        '',
      ],
      ['operator peak RSS', fixed(median(runs.map((r) => r.peakRssMiB)), 1), 'MiB', ''],
    ],
  );
  writeResults(
    'throughput',
    [
      figure(
        `${n} creates handled`,
        handledMs,
        'ms',
        { op: '<=', value: 10_000 },
        { name: 'API accepts', value: floorMs },
      ),
      figure('operator requests per created object', requestsPerObject, 'requests'),
    ],
    { options: opts, floors, runs },
  );
}

await main();
