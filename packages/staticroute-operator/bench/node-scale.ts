/**
 * Node scale: what one change costs the API server, and how long it takes to reach every node, as the node count
 * grows. `bash scripts/bench.sh node-scale --nodes N`.
 *
 * Set-up: a real control plane with the release applied, N simulated nodes, one agent process per node as the
 * DaemonSet runs it (the release's environment, a token bound to a pod on that node), one aggregator as the
 * Deployment's replica runs it (the release's environment and timings, leader election), and `ip monitor route` in
 * every node (lib/route-log.ts). Then, one after the other:
 *   create          one StaticRoute (1 destination, gateway A)
 *   gatewayChange   its gateway patched to B
 *   delete          it deleted
 *   burst20         20 StaticRoutes created (8 requests in flight), then deleted (measured apart, in the JSON)
 *   burst200        200 likewise
 * For each phase:
 * - writes, conflicts, throttled: the API server's `apiserver_request_total` between a snapshot taken once the
 *   cluster is quiet before the change and one taken once it is quiet again after convergence (no write counted for
 *   2 s; lib/apiserver-metrics.ts), minus the benchmark's own requests (counted with the same labels). StaticRoute
 *   writes: mutating verbs on staticroutes and staticroutes/status. Total writes: every mutating request except the
 *   background ones that happen on a clock whatever the cluster does (Lease renewals: the aggregator's leader Lease
 *   every 2 s, the API server's identity Lease every 10 s; the API server's own Endpoints reconciliation), which the
 *   JSON counts apart. Conflicts: 409, and 422 on patches. Throttled: 429. Agents' report heartbeats (one per node
 *   per minute) fall into a window by chance and are included; `reportReads` in the JSON counts them (an agent reads
 *   its report before each heartbeat write), `expectedHeartbeats` says how many to expect on average.
 * - routesAllNodesMs: from the change accepted (the API response; for a burst, the last one) to the last expected
 *   kernel change on the slowest node, as `ip monitor` stamped it.
 * - readyAllNodesMs: from the same instant until the aggregator's `status.ready` is N/N for the current generation
 *   of every object of the phase (polled: 25 ms for one object, 100 ms for a burst); for a delete, until the objects
 *   are gone.
 * - watchBytes: `apiserver_watch_events_sizes` (bytes of watch events written to watchers) summed over resources
 *   (Leases aside), between the same two snapshots; by resource in the JSON.
 * At the end: agents' and the aggregator's RSS. The last line printed is the JSON of the phases' figures; the full
 * record goes to results/node-scale-<N>.json.
 *
 * Run (root; scripts/bench.sh builds first and runs it on the image's Node.js 24):
 *   bash scripts/bench.sh node-scale --nodes 10
 *     [--burst-concurrency=8] [--quiet-ms=2000] [--start-batch=10] [--phase-timeout-s=600] [--keep-logs]
 * `--start-batch`: agents started at once (each batch ready before the next); `--keep-logs`: keep the agents' and
 * the aggregator's logs (the folder is printed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { figure, fixed, flag, numericOptions, printTable, summarize } from '@opkit/testbed/bench';
import { GATEWAY_A, GATEWAY_B, runPhase, type PhaseContext, type PhaseResult } from './lib/node-scale-phase.js';
import { BenchApi, NODE_REPORTS_PATH, type NodeReport } from './lib/api.js';
import { waitForQuiet } from './lib/apiserver-metrics.js';
import { BenchCluster } from './lib/cluster.js';
import { AggregatorProcess, OperatorProcess, runtimeOf, stopOperators, type Memory } from './lib/operators.js';
import { agentContainer } from './lib/release.js';
import { sleep, writeResults } from './lib/report.js';
import { startRouteLogs, type RouteLog } from './lib/route-log.js';
import { benchAddress } from './lib/scratch-netns.js';

const opts = numericOptions({
  nodes: 3,
  burstConcurrency: 8,
  quietMs: 2_000,
  startBatch: 10,
  phaseTimeoutS: 600,
});
const keepLogs = flag('keep-logs');
const PHASES = ['create', 'gatewayChange', 'delete', 'burst20', 'burst200'] as const;
type PhaseName = (typeof PHASES)[number];
const MB = 1024 * 1024;

/** Starts the agents in batches (each batch ready before the next starts), as a DaemonSet's pods come up. */
async function startAgents(cluster: BenchCluster, context: { dir: string; runtime: ReturnType<typeof runtimeOf> }) {
  const kubeconfigs = await cluster.agentKubeconfigsFor(cluster.nodes);
  const agents: OperatorProcess[] = [];
  for (let index = 0; index < cluster.nodes.length; index += opts.startBatch) {
    const batch = cluster.nodes.slice(index, index + opts.startBatch).map((node) =>
      OperatorProcess.start(node, {
        runtime: context.runtime,
        kubeconfig: (n) => kubeconfigs.get(n.name) as string,
        dir: context.dir,
      }),
    );
    agents.push(...batch);
    await Promise.all(batch.map((agent) => agent.waitReady(300_000)));
  }
  return agents;
}

/** Waits until every node's agent has written its report. */
async function waitForReports(api: BenchApi, nodes: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { body } = await api.call<{ items: NodeReport[] }>('GET', NODE_REPORTS_PATH);
    if (body.items.filter((report) => report.status?.heartbeatTime).length >= nodes) return;
    if (Date.now() > deadline) throw new Error(`only ${body.items.length} of ${nodes} node reports after 120 s`);
    await sleep(500);
  }
}

/** RSS of processes, in MB. */
interface MemorySummary {
  rssMedianMB: number;
  rssMaxMB: number;
  peakMaxMB: number;
}

function memorySummary(memories: Memory[]): MemorySummary {
  const rss = summarize(memories.map((m) => m.rss / MB));
  const peak = summarize(memories.map((m) => m.peak / MB));
  return { rssMedianMB: rss.median, rssMaxMB: rss.max, peakMaxMB: peak.max };
}

/** Agents once ready (idle) and at the end, and the aggregator at the end. */
interface MemoryFigures {
  agentsIdle: MemorySummary;
  agents: MemorySummary;
  aggregator: Memory;
}

async function main(): Promise<void> {
  const started = Date.now();
  const N = opts.nodes;
  const runtime = runtimeOf(process.execPath);
  const heartbeatMs = Number(agentContainer().env.REPORT_HEARTBEAT_SECONDS ?? 60) * 1000;
  console.log(
    `node scale: ${N} nodes, agents and aggregator on ${runtime.version}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), `sr-bench-node-scale-${N}-`));
  const cluster = await BenchCluster.start(N);
  const api = new BenchApi(cluster.controlPlane);
  const agents: OperatorProcess[] = [];
  let aggregator: AggregatorProcess | undefined;
  const logs: RouteLog[] = [];
  const phases = {} as Record<PhaseName, PhaseResult>;
  const cleanups: Record<string, PhaseResult> = {};
  let memory: MemoryFigures | undefined;
  let setupMs = 0;
  try {
    aggregator = await AggregatorProcess.start({ runtime, kubeconfig: await cluster.aggregatorKubeconfig(), dir });
    await aggregator.waitReady();
    agents.push(...(await startAgents(cluster, { dir, runtime })));
    logs.push(...(await startRouteLogs(cluster.nodes, dir)));
    await waitForReports(api, N);
    const agentsIdle = memorySummary(agents.map((agent) => agent.memory()));
    setupMs = Date.now() - started;
    console.log(`set-up (control plane, ${N} nodes, aggregator, agents ready): ${(setupMs / 1000).toFixed(1)} s`);

    const context: PhaseContext = {
      api,
      logs,
      nodes: N,
      timeoutMs: opts.phaseTimeoutS * 1000,
      quiet: {
        quietMs: opts.quietMs,
        // Heartbeats expected within the quiet window (0 below 30 nodes with the release's 60 s).
        reportWritesAllowed: Math.floor((N * opts.quietMs) / heartbeatMs),
      },
      heartbeatMs,
    };
    let quiet = await waitForQuiet(api, context.quiet);
    const one = { name: 'scale-one', dst: `${benchAddress(0)}/32` };
    const burst = (size: number, base: number) =>
      Array.from({ length: size }, (_, i) => ({ name: `scale-b${size}-${i}`, dst: `${benchAddress(base + i)}/32` }));

    let outcome = await runPhase(context, quiet, 'create', { kind: 'create', objects: [one], gateway: GATEWAY_A });
    phases.create = outcome.result;
    outcome = await runPhase(context, outcome.quiet, 'gatewayChange', {
      kind: 'gateway',
      objects: [one],
      from: GATEWAY_A,
      gateway: GATEWAY_B,
    });
    phases.gatewayChange = outcome.result;
    outcome = await runPhase(context, outcome.quiet, 'delete', { kind: 'delete', objects: [one], gateway: GATEWAY_B });
    phases.delete = outcome.result;
    quiet = outcome.quiet;
    for (const [name, objects] of [
      ['burst20', burst(20, 256)],
      ['burst200', burst(200, 1024)],
    ] as const) {
      outcome = await runPhase(context, quiet, name, {
        kind: 'create',
        objects,
        gateway: GATEWAY_A,
        concurrency: opts.burstConcurrency,
      });
      phases[name] = outcome.result;
      outcome = await runPhase(context, outcome.quiet, `${name} deletion`, {
        kind: 'delete',
        objects,
        gateway: GATEWAY_A,
        concurrency: opts.burstConcurrency,
      });
      cleanups[`${name}Delete`] = outcome.result;
      quiet = outcome.quiet;
    }
    memory = {
      agentsIdle,
      agents: memorySummary(agents.map((agent) => agent.memory())),
      aggregator: aggregator.memory(),
    };
  } finally {
    api.close();
    await stopOperators([...agents, ...(aggregator ? [aggregator] : [])]);
    await Promise.all(logs.map((log) => log.stop().catch(() => undefined)));
    await cluster.destroy();
    if (!keepLogs) rmSync(dir, { recursive: true, force: true });
  }
  const runMs = Date.now() - started;
  if (!memory) throw new Error('no memory figures');
  report(N, runtime.version, phases, cleanups, memory, { setupMs, runMs, dir: keepLogs ? dir : undefined });
}

/** The figures of the last line: integers, in the order the brief of the benchmark gives. */
function headline(result: PhaseResult): Record<string, number> {
  return {
    staticRouteWrites: result.staticRouteWrites,
    totalWrites: result.totalWrites,
    conflicts: result.conflicts,
    throttled: result.throttled,
    routesAllNodesMs: Math.round(result.routesAllNodesMs),
    readyAllNodesMs: Math.round(result.readyAllNodesMs),
    watchBytes: Math.round(result.watchBytes),
  };
}

function report(
  N: number,
  runtimeVersion: string,
  phases: Record<PhaseName, PhaseResult>,
  cleanups: Record<string, PhaseResult>,
  memory: MemoryFigures,
  run: { setupMs: number; runMs: number; dir: string | undefined },
): void {
  const all: Array<[string, PhaseResult]> = [...PHASES.map((name) => [name, phases[name]] as [string, PhaseResult])];
  for (const [name, result] of Object.entries(cleanups)) all.push([name, result]);
  printTable(
    `Node scale: ${N} nodes (agents and aggregator on ${runtimeVersion}); writes counted by the API server`,
    [
      'phase',
      'SR writes',
      'total writes',
      'reports',
      'events',
      '409/422',
      '429',
      'routes all nodes ms',
      'ready ms',
      'watch KB',
      'window s',
    ],
    all.map(([name, r]) => [
      name,
      r.staticRouteWrites,
      r.totalWrites,
      r.detail.byCategory['node reports'] ?? 0,
      r.detail.byCategory.events ?? 0,
      r.conflicts,
      r.throttled,
      fixed(r.routesAllNodesMs, 0),
      fixed(r.readyAllNodesMs, 0),
      fixed(r.watchBytes / 1024, 1),
      fixed(r.detail.windowMs / 1000, 1),
    ]),
  );
  console.log(
    `RSS: agents idle median ${fixed(memory.agentsIdle.rssMedianMB)} MB; at the end median ${fixed(memory.agents.rssMedianMB)} MB, ` +
      `max ${fixed(memory.agents.rssMaxMB)} MB (peak ${fixed(memory.agents.peakMaxMB)} MB); aggregator ` +
      `${fixed(memory.aggregator.rss / MB)} MB (peak ${fixed(memory.aggregator.peak / MB)} MB)`,
  );
  console.log(`run: ${(run.runMs / 1000).toFixed(0)} s (set-up ${(run.setupMs / 1000).toFixed(0)} s)`);
  if (run.dir) console.log(`logs kept in ${run.dir}`);
  const figures = PHASES.flatMap((name) => [
    figure(`${name}: StaticRoute writes`, phases[name].staticRouteWrites, 'writes'),
    figure(`${name}: total writes`, phases[name].totalWrites, 'writes'),
    figure(`${name}: accepted -> READY ${N}/${N}`, phases[name].readyAllNodesMs, 'ms'),
  ]);
  figures.push(
    figure('agent RSS at the end, max', memory.agents.rssMaxMB, 'MB'),
    figure('aggregator RSS at the end', memory.aggregator.rss / MB, 'MB'),
  );
  writeResults(`node-scale-${N}`, figures, {
    nodes: N,
    runtime: runtimeVersion,
    options: opts,
    phases,
    cleanups,
    memory: {
      agents: memory.agents,
      agentsIdle: memory.agentsIdle,
      aggregatorRssMB: memory.aggregator.rss / MB,
      aggregatorPeakMB: memory.aggregator.peak / MB,
    },
    setupMs: run.setupMs,
    runMs: run.runMs,
  });
  const line = { nodes: N, phases: Object.fromEntries(PHASES.map((name) => [name, headline(phases[name])])) };
  console.log(JSON.stringify(line));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
