/**
 * Figures 3 and 5: cold start of 3 node agents facing 1,000 StaticRoutes x 10 destinations, and the agents' memory.
 *
 * Each run uses a fresh e2e fixture (API server with the release, 3 nodes) and the aggregator (`main.js aggregator`,
 * the release's settings), which runs throughout, as its Deployment does:
 * 1. Idle: the agents start with no StaticRoute; once ready and after `--idle-settle-ms`, VmRSS of each.
 * 2. The agents are stopped; OBJECTS StaticRoutes with DESTINATIONS host routes each are created (the aggregator puts
 *    its finalizer on them; no node applies them yet).
 * 3. `ip -ts monitor route` in every node, then the agents start. Per node: spawn -> the last of the
 *    OBJECTS x DESTINATIONS routes in the kernel (target < 10 s); VmRSS then ("busy": reports still being written);
 *    spawn -> `ready` (the table converged), spawn -> the node's report holds every object Applied (1 s polls), and
 *    until the aggregator shows every object READY 3/3, all within `--converge-timeout-s` of the spawn (how many
 *    objects each report held by then is recorded).
 * 4. VmRSS and VmHWM (peak) of each agent holding those routes once done or at the time limit, after
 *    `--steady-settle-ms` (target < 100 MB), with the V8 heap figures of its /metrics; the aggregator's too.
 * Runs alternate between the runtimes (this process's Node.js, and Node 24 with `--node24=PATH` / `$NODE24`).
 *
 * The operators' info-level log lines date the start-up steps (where the time goes); `--profile` adds debug lines
 * and `--cpu-prof` (the folder is printed); `--heap-snapshot` writes a V8 heap snapshot of each operator at step 4
 * (after the memory figures are taken) and prints what holds the memory (heap-summary.ts).
 *
 * Run (root, after `pnpm run build`):
 *   node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/cold-start.ts
 *     [--objects=1000] [--destinations=10] [--runs=2] [--converge-timeout-s=300] [--node24=PATH]
 *     [--node-flags="--max-semi-space-size=1"] [--profile] [--heap-snapshot] [--quick]
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SimNode } from '@opkit/testbed';
import { flag, numericOptions, printTable, stringOption } from '@opkit/testbed/bench';
import { E2eCluster, GATEWAY_A } from '../test/e2e/support/cluster.js';
import {
  BenchApi,
  inParallel,
  isReadyEverywhere,
  NODE_REPORTS_PATH,
  STATIC_ROUTES_PATH,
  type NodeReport,
  type StaticRouteStatus,
} from './lib/api.js';
import { reportColdStart, type ColdRun, type NodeColdStart } from './lib/cold-start-report.js';
import {
  nodeFlagsOption,
  OperatorProcess,
  runtimes,
  startAggregator,
  startOperators,
  stopOperators,
  type AggregatorProcess,
  type Runtime,
} from './lib/operators.js';
import { sleep } from './lib/report.js';
import { summarizeHeap } from './heap-summary.js';
import { startRouteLogs, type RouteLog } from './lib/route-log.js';
import { benchAddress } from './lib/scratch-netns.js';

const opts = numericOptions(
  { objects: 1000, destinations: 10, runs: 2, idleSettleMs: 5000, steadySettleMs: 30_000, convergeTimeoutS: 300 },
  { runs: 1 },
);
const profile = flag('profile');
const heapSnapshot = flag('heap-snapshot');
const OURS = 201;
/** Start-up steps logged at info level, in order. */
const MILESTONES = ['starting the route agent', 'routing table reconciled', 'operators started', 'ready'];

/** StaticRoutes the aggregator shows READY N/N for their current generation. */
async function countReady(api: BenchApi, nodes: number): Promise<number> {
  const { body } = await api.call<{ items: StaticRouteStatus[] }>('GET', STATIC_ROUTES_PATH);
  return body.items.filter((item) => isReadyEverywhere(item, nodes)).length;
}

/** Entries Applied in a node's report (the bench's objects have generation 1). */
async function countReported(api: BenchApi, node: string): Promise<number> {
  const response = await api.request<NodeReport>('GET', `${NODE_REPORTS_PATH}/${node}`);
  if (response.status !== 200) return 0;
  const entries = Object.values(response.body.status?.staticRoutes ?? {});
  return entries.filter((entry) => entry.state === 'Applied' && entry.generation === 1).length;
}

async function oneRun(runtime: Runtime, run: number): Promise<ColdRun> {
  const cluster = await E2eCluster.start(3);
  const dir = mkdtempSync(path.join(os.tmpdir(), `sr-bench-cold-${runtime.label}-`));
  const api = new BenchApi(cluster.controlPlane);
  let operators: OperatorProcess[] = [];
  let aggregator: AggregatorProcess | undefined;
  const logs: RouteLog[] = [];
  try {
    const nodes: SimNode[] = cluster.nodes;
    const kubeconfigs = new Map<string, string>();
    for (const node of nodes) kubeconfigs.set(node.name, await cluster.serviceAccountKubeconfig(node));
    const common = {
      runtime,
      dir,
      ...(profile ? { logLevel: 'debug' } : {}),
      nodeFlags: [
        ...nodeFlagsOption(),
        ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
        ...(heapSnapshot ? ['--heapsnapshot-signal=SIGUSR2'] : []),
      ],
    };
    const options = { ...common, kubeconfig: (node: SimNode) => kubeconfigs.get(node.name) as string };
    aggregator = await startAggregator({ ...common, kubeconfig: await cluster.aggregatorKubeconfig() });
    // 1. Idle.
    operators = await startOperators(nodes, options);
    await sleep(opts.idleSettleMs);
    const idle = operators.map((operator) => operator.memory());
    const idleHeap = await Promise.all(operators.map((operator) => operator.heap()));
    const aggregatorIdle = aggregator.memory();
    await stopOperators(operators);

    // 2. The objects, created while no operator runs.
    const destinations = (object: number): string[] =>
      Array.from({ length: opts.destinations }, (_, j) => `${benchAddress(object * opts.destinations + j, 16384)}/32`);
    const created = performance.now();
    const indexes = Array.from({ length: opts.objects }, (_, i) => i);
    await inParallel(indexes, 8, async (i) => {
      await api.createStaticRoute(`cold-${i}`, { destinations: destinations(i), gateway: GATEWAY_A });
    });
    const createMs = performance.now() - created;
    const wanted = new Set(indexes.flatMap(destinations));

    // 3. Cold start.
    logs.push(...(await startRouteLogs(nodes, dir)));
    operators = nodes.map((node) => OperatorProcess.start(node, options));
    const perNode: NodeColdStart[] = await Promise.all(
      operators.map(async (operator, n) => {
        const log = logs[n] as RouteLog;
        let count = 0;
        let lastAt = 0;
        let firstAt = Infinity;
        await log.waitUntil(
          () => {
            // Count incrementally: the log grows to tens of thousands of lines.
            for (const event of log.events.splice(0)) {
              if (event.kind !== 'add' || event.protocol !== OURS || !wanted.has(event.dst)) continue;
              count++;
              firstAt = Math.min(firstAt, event.at);
              lastAt = Math.max(lastAt, event.at);
            }
            return count >= wanted.size;
          },
          `${wanted.size} routes`,
          opts.convergeTimeoutS * 1000,
          20,
        );
        return {
          node: operator.node.name,
          allRoutesMs: lastAt - operator.startedAt,
          firstRouteMs: firstAt - operator.startedAt,
          programmingMs: lastAt - firstAt,
          readyMs: Number.NaN,
          reportMs: Number.NaN,
          milestones: {},
          cpuMsAtReady: Number.NaN,
          reported: 0,
          busyRss: { rss: 0, peak: 0, anon: 0, file: 0 },
          rss: { rss: 0, peak: 0, anon: 0, file: 0 },
          heap: {},
        } satisfies NodeColdStart;
      }),
    );
    // Memory with the routes in place while the agents may still be writing their reports.
    await sleep(opts.idleSettleMs);
    operators.forEach((operator, n) => ((perNode[n] as NodeColdStart).busyRss = operator.memory()));

    // Until every agent is ready and its report holds every object, within the time limit.
    const startedAt = Math.min(...operators.map((o) => o.startedAt));
    const deadline = startedAt + opts.convergeTimeoutS * 1000;
    await Promise.all(
      operators.map(async (operator, n) => {
        const entry = perNode[n] as NodeColdStart;
        try {
          entry.readyMs = (await operator.waitReady(Math.max(1, deadline - Date.now()))) - operator.startedAt;
        } catch (error) {
          if (operator.child.exitCode !== null) throw error;
        }
        entry.cpuMsAtReady = operator.cpuMs();
        entry.milestones = milestonesOf(operator);
        for (;;) {
          entry.reported = await countReported(api, operator.node.name);
          if (entry.reported >= opts.objects) {
            entry.reportMs = Date.now() - operator.startedAt;
            break;
          }
          if (Date.now() > deadline) break;
          await sleep(1000);
        }
      }),
    );
    let applied = await countReady(api, nodes.length);
    while (applied < opts.objects && Date.now() < deadline) {
      await sleep(1000);
      applied = await countReady(api, nodes.length);
    }
    const allAppliedMs = Date.now() - startedAt;

    // 4. Memory holding the routes, once the operators are done (or at the time limit) and quiet for a while (V8
    // gives memory back after idle GCs).
    await sleep(opts.steadySettleMs);
    operators.forEach((operator, n) => ((perNode[n] as NodeColdStart).rss = operator.memory()));
    const heaps = await Promise.all(operators.map((operator) => operator.heap()));
    heaps.forEach((heap, n) => ((perNode[n] as NodeColdStart).heap = heap));
    const aggregatorLoaded = aggregator.memory();
    if (heapSnapshot) await snapshotHeaps(operators, dir);
    const result: ColdRun = {
      runtime: runtime.version,
      run,
      createMs,
      idle,
      idleHeap,
      nodes: perNode,
      allAppliedMs: applied >= opts.objects ? allAppliedMs : Number.NaN,
      appliedObjects: applied,
      aggregator: { idle: aggregatorIdle, loaded: aggregatorLoaded },
    };
    console.log(
      `${runtime.version} run ${run + 1}: all routes ${perNode.map((p) => `${p.allRoutesMs} ms`).join(', ')}; ` +
        `ready ${perNode.map((p) => `${p.readyMs} ms`).join(', ')}; ` +
        `reports ${perNode.map((p) => `${p.reportMs} ms (${p.reported} Applied)`).join(', ')}; ` +
        `${applied}/${opts.objects} READY 3/3`,
    );
    if (profile) console.log(`logs and CPU profiles: ${dir}`);
    return result;
  } finally {
    api.close();
    await stopOperators([...operators, ...(aggregator ? [aggregator] : [])]);
    await Promise.all(logs.map((log) => log.stop()));
    await cluster.destroy();
  }
}

/** Has every operator write a heap snapshot (into its working directory, `dir`) and prints what holds the memory. */
async function snapshotHeaps(operators: OperatorProcess[], dir: string): Promise<void> {
  for (const operator of operators) {
    const before = new Set(readdirSync(dir));
    operator.child.kill('SIGUSR2');
    let file: string | undefined;
    for (let waited = 0; !file && waited < 60_000; waited += 500) {
      await sleep(500);
      file = readdirSync(dir).find((name) => name.endsWith('.heapsnapshot') && !before.has(name));
    }
    if (!file) {
      console.log(`${operator.node.name}: no heap snapshot within 60 s`);
      continue;
    }
    // Complete once it ends the JSON document (taking the snapshot can pause the writes for seconds, with an empty
    // file meanwhile).
    const path = `${dir}/${file}`;
    const complete = (): boolean =>
      statSync(path).size > 0 && readFileSync(path).subarray(-8).toString().trimEnd().endsWith('}');
    for (let waited = 0; !complete() && waited < 120_000; waited += 1000) await sleep(1000);
    let rows: ReturnType<typeof summarizeHeap>;
    try {
      rows = summarizeHeap(path);
    } catch (error) {
      console.log(`${operator.node.name}: cannot read the heap snapshot ${path}: ${String(error)}`);
      continue;
    }
    const total = rows.reduce((sum, row) => sum + row.bytes, 0);
    printTable(
      `${operator.node.name}: heap snapshot ${path}, ${(total / 1e6).toFixed(1)} MB`,
      ['what', 'count', 'MB'],
      rows.slice(0, 20).map((row) => [row.name, row.count, (row.bytes / 1e6).toFixed(2)]),
    );
  }
}

/** ms after spawn of each start-up step's first log line. */
function milestonesOf(operator: OperatorProcess): Record<string, number> {
  const lines = operator.logLines();
  const result: Record<string, number> = {};
  for (const milestone of MILESTONES) {
    const line = lines.find((l) => l.msg === milestone);
    if (line?.time) result[milestone] = Date.parse(line.time) - operator.startedAt;
  }
  return result;
}

async function main(): Promise<void> {
  const list = runtimes(stringOption('node24'));
  console.log(
    `cold start: ${opts.objects} objects x ${opts.destinations} destinations, 3 nodes, ${opts.runs} run(s) per ` +
      `runtime (${list.map((r) => r.version).join(', ')})`,
  );
  const runs: ColdRun[] = [];
  for (let run = 0; run < opts.runs; run++) {
    for (const runtime of list) runs.push(await oneRun(runtime, run));
  }
  reportColdStart(runs, list, { ...opts, profile, nodeFlags: nodeFlagsOption(), milestones: MILESTONES });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
