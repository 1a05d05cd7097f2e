/**
 * Figures 1 and 2: how fast a change reaches every node's routing table, and how long a destination goes without a
 * route during a gateway change.
 *
 * Set-up: the e2e fixture (real API server with the release applied, 3 simulated nodes), one agent per node started
 * with the image's entry point and a token bound to a pod on its node, the aggregator (`main.js aggregator`, the
 * release's settings), and `ip -ts monitor route` in every node (lib/route-log.ts).
 *
 * - Create: POST a 1-destination StaticRoute; latency = the route's add notification on a node minus the instant the
 *   API's response arrived ("accepted"); "all nodes" is the slowest node. Each sample then waits until every node's
 *   report holds the object's entry for its generation (20 ms polls of the reports) and the aggregator wrote READY
 *   3/3 for it (20 ms polls), and the cluster is quiet again.
 * - Gateway change of a 1-destination object (merge patch of spec.gateway, alternating A/B): converged = the later
 *   of "new route added" and "old route deleted", on the slowest node. The window without a route = the new route's
 *   add minus the old route's delete, per node.
 * - Gateway change of a 2,000-destination object: the window of every destination on every node (median and max per
 *   node), and the time until all 4,000 kernel changes were seen on every node.
 * - Baselines in the same run: the patch's own API round trip (same requests), and the kernel time of one
 *   `ip route replace` (a scratch namespace: `ip -batch` of 2,000 replaces minus an empty batch, per replace; and
 *   one `ip route replace` process, wall time).
 *
 * Run (root, after `pnpm run build`):
 *   node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/apply-latency.ts
 *     [--samples=30] [--window-runs=5] [--destinations=2000] [--profile] [--quick] [--node=PATH] [--nodes=3]
 * `--nodes=1` (results in apply-latency-1node.json) shows the latency with a single agent.
 * `--profile` runs the agents and the aggregator with LOG_LEVEL=debug and `--cpu-prof` (profiles land in the printed
 * folder).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flag, numericOptions, stringOption } from '@opkit/testbed/bench';
import { E2eCluster, GATEWAY_A, GATEWAY_B } from '../test/e2e/support/cluster.js';
import {
  BenchApi,
  isReadyEverywhere,
  NODE_REPORTS_PATH,
  STATIC_ROUTES_PATH,
  type NodeReport,
  type StaticRouteStatus,
} from './lib/api.js';
import {
  nodeFlagsOption,
  runtimeOf,
  startAggregator,
  startOperators,
  stopOperators,
  type AggregatorProcess,
  type OperatorProcess,
} from './lib/operators.js';
import { reportLatency, type Sample, type WindowRun } from './lib/latency-report.js';
import { sleep } from './lib/report.js';
import { startRouteLogs, type RouteLog, type RouteNotification } from './lib/route-log.js';
import { benchAddress, ScratchNamespace } from './lib/scratch-netns.js';

const opts = numericOptions(
  {
    samples: 30,
    warmup: 3,
    windowRuns: 5,
    destinations: 2000,
    settleMs: 250,
    replaceBatch: 2000,
    nodes: 3,
  },
  { samples: 10, windowRuns: 2 },
);
const profile = flag('profile');
const OURS = 201;

const isOurs = (event: RouteNotification, dst: string): boolean => event.protocol === OURS && event.dst === dst;

/** Waits until the aggregator wrote READY N/N for the object's current generation; returns when that was seen. */
async function waitStatus(api: BenchApi, name: string, nodes: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await api.request<StaticRouteStatus>('GET', `${STATIC_ROUTES_PATH}/${name}`);
    if (isReadyEverywhere(response.body, nodes)) return response.acceptedAt;
    if (Date.now() > deadline) {
      throw new Error(`${name}: status not READY ${nodes}/${nodes}: ${JSON.stringify(response.body.status)}`);
    }
    await sleep(20);
  }
}

/** Waits until every node's report holds the object's entry, Applied, for `generation`; returns when that was seen. */
async function waitReports(api: BenchApi, name: string, generation: number, nodes: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await api.call<{ items: NodeReport[] }>('GET', NODE_REPORTS_PATH);
    const applied = response.body.items.filter((report) => {
      const entry = report.status?.staticRoutes?.[name];
      return entry?.state === 'Applied' && entry.generation === generation;
    });
    if (applied.length >= nodes) return response.acceptedAt;
    if (Date.now() > deadline)
      throw new Error(`${name}: ${applied.length}/${nodes} reports hold generation ${generation}`);
    await sleep(20);
  }
}

/** accepted -> every report holds the entry, and accepted -> READY N/N, measured side by side. */
async function waitReportsAndStatus(
  api: BenchApi,
  name: string,
  generation: number,
  nodes: number,
  acceptedAt: number,
): Promise<{ reportMs: number; statusMs: number }> {
  const [reportedAt, readyAt] = await Promise.all([
    waitReports(api, name, generation, nodes),
    waitStatus(api, name, nodes),
  ]);
  return { reportMs: reportedAt - acceptedAt, statusMs: readyAt - acceptedAt };
}

/** Kernel time of one `ip route replace`, in a scratch namespace shaped like a node. */
async function replaceBaseline(count: number): Promise<{ perReplaceUs: number[]; oneProcessMs: number[] }> {
  const scratch = ScratchNamespace.create();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-replace-'));
  try {
    const perReplaceUs: number[] = [];
    const oneProcessMs: number[] = [];
    const lines = (gateway: string): string[] =>
      Array.from({ length: count }, (_, i) => `route replace ${benchAddress(i)}/32 via ${gateway} proto 250`);
    await scratch.batch(lines(scratch.gateways[0] as string), path.join(dir, 'seed'));
    for (let run = 0; run < 5; run++) {
      const empty = await scratch.batch([], path.join(dir, 'empty'));
      const full = await scratch.batch(lines(scratch.gateways[(run + 1) % 2] as string), path.join(dir, 'batch'));
      perReplaceUs.push(((full - empty) / count) * 1000);
    }
    for (let run = 0; run < 20; run++) {
      const gateway = scratch.gateways[run % 2] as string;
      oneProcessMs.push(await scratch.run(['route', 'replace', '198.19.0.1/32', 'via', gateway, 'proto', '250']));
    }
    return { perReplaceUs, oneProcessMs };
  } finally {
    scratch.destroy();
  }
}

/** What the API and the kernels say when a wait times out: the object's gateway and status, routes per gateway. */
async function diagnose(api: BenchApi, cluster: E2eCluster, name: string): Promise<string> {
  const { body } = await api.request<StaticRouteStatus & { spec?: unknown }>('GET', `${STATIC_ROUTES_PATH}/${name}`);
  const tables = await Promise.all(
    cluster.nodes.map(async (node) => {
      const counts: Record<string, number> = {};
      for (const route of await node.routes({ table: 254 })) {
        if (route.protocol !== OURS) continue;
        const via = route.gateway ?? 'multipath';
        counts[via] = (counts[via] ?? 0) + 1;
      }
      return `${node.name}: ${JSON.stringify(counts)}`;
    }),
  );
  const spec = JSON.stringify(body.spec).slice(0, 200);
  return `object: generation ${body.metadata?.generation}, spec ${spec}, status ${JSON.stringify(body.status)}\nkernel: ${tables.join('; ')}`;
}

const pickTimes = (response: { acceptedAt: number; roundTripMs: number }) => ({
  acceptedAt: response.acceptedAt,
  roundTripMs: response.roundTripMs,
});

async function main(): Promise<void> {
  const nodeBinary = stringOption('node') ?? process.execPath;
  const runtime = runtimeOf(nodeBinary);
  console.log(`apply latency: ${runtime.version} operators, ${opts.samples} samples, ${os.loadavg()[0]} load`);
  const baseline = await replaceBaseline(opts.replaceBatch);
  const cluster = await E2eCluster.start(opts.nodes);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-latency-'));
  let operators: OperatorProcess[] = [];
  let aggregator: AggregatorProcess | undefined;
  const logs: RouteLog[] = [];
  const api = new BenchApi(cluster.controlPlane);
  try {
    const nodes = cluster.nodes;
    const kubeconfigs = new Map<string, string>();
    for (const node of nodes) kubeconfigs.set(node.name, await cluster.serviceAccountKubeconfig(node));
    const common = {
      runtime,
      dir,
      ...(profile ? { logLevel: 'debug' } : {}),
      nodeFlags: [...nodeFlagsOption(), ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [])],
    };
    aggregator = await startAggregator({ ...common, kubeconfig: await cluster.aggregatorKubeconfig() });
    operators = await startOperators(nodes, { ...common, kubeconfig: (node) => kubeconfigs.get(node.name) as string });
    logs.push(...(await startRouteLogs(nodes, dir)));
    const marks = (): number[] => logs.map((log) => (log.poll(), log.events.length));
    const since = (mark: number[], index: number): RouteNotification[] =>
      (logs[index] as RouteLog).events.slice(mark[index]);

    // Figure 1a: create -> route on every node.
    const creates: Sample[] = [];
    for (let i = 0; i < opts.warmup + opts.samples; i++) {
      const name = `latency-create-${i}`;
      const dst = `${benchAddress(i + 1)}/32`;
      const mark = marks();
      const response = await api.createStaticRoute(name, {
        destinations: [dst],
        gateway: GATEWAY_A,
      });
      const sample: Sample = {
        name,
        cause: 'create',
        ...pickTimes(response),
        allNodesMs: 0,
        reportMs: 0,
        statusMs: 0,
        nodes: {},
      };
      await Promise.all(
        logs.map((log, n) =>
          log.waitUntil(() => since(mark, n).some((e) => e.kind === 'add' && isOurs(e, dst)), `${dst} added`),
        ),
      );
      nodes.forEach((node, n) => {
        const added = since(mark, n).find((e) => e.kind === 'add' && isOurs(e, dst)) as RouteNotification;
        sample.nodes[node.name] = { routeMs: added.at - response.acceptedAt };
      });
      sample.allNodesMs = Math.max(...Object.values(sample.nodes).map((s) => s.routeMs));
      Object.assign(sample, await waitReportsAndStatus(api, name, 1, nodes.length, response.acceptedAt));
      if (i >= opts.warmup) creates.push(sample);
      await sleep(opts.settleMs);
    }

    // Figures 1b and 2 (1 destination): gateway change.
    const gatewayName = 'latency-gateway';
    const gatewayDst = `${benchAddress(0, 4096)}/32`;
    await api.createStaticRoute(gatewayName, {
      destinations: [gatewayDst],
      gateway: GATEWAY_A,
    });
    await waitStatus(api, gatewayName, nodes.length);
    const changes: Sample[] = [];
    let current = GATEWAY_A;
    for (let i = 0; i < opts.warmup + opts.samples; i++) {
      const next = current === GATEWAY_A ? GATEWAY_B : GATEWAY_A;
      const mark = marks();
      const response = await api.patchSpec(gatewayName, { gateway: next });
      const sample: Sample = {
        name: gatewayName,
        cause: 'update',
        ...pickTimes(response),
        allNodesMs: 0,
        reportMs: 0,
        statusMs: 0,
        nodes: {},
      };
      const find = (n: number) => ({
        added: since(mark, n).find((e) => e.kind === 'add' && isOurs(e, gatewayDst) && e.gateways[0] === next),
        deleted: since(mark, n).find((e) => e.kind === 'delete' && isOurs(e, gatewayDst) && e.gateways[0] === current),
      });
      await Promise.all(
        logs.map((log, n) =>
          log.waitUntil(() => {
            const { added, deleted } = find(n);
            return added !== undefined && deleted !== undefined;
          }, `${gatewayDst} moved to ${next}`),
        ),
      );
      nodes.forEach((node, n) => {
        const { added, deleted } = find(n) as {
          added: RouteNotification;
          deleted: RouteNotification;
        };
        sample.nodes[node.name] = {
          routeMs: Math.max(added.at, deleted.at) - response.acceptedAt,
          windowMs: added.at - deleted.at,
        };
      });
      sample.allNodesMs = Math.max(...Object.values(sample.nodes).map((s) => s.routeMs));
      const generation = response.body.metadata.generation;
      Object.assign(
        sample,
        await waitReportsAndStatus(api, gatewayName, generation, nodes.length, response.acceptedAt),
      );
      current = next;
      if (i >= opts.warmup) changes.push(sample);
      await sleep(opts.settleMs);
    }

    // Figure 2 (many destinations): every destination's window during a gateway change.
    const bigName = 'latency-window';
    const bigDestinations = Array.from({ length: opts.destinations }, (_, i) => `${benchAddress(i, 8192)}/32`);
    const bigSet = new Set(bigDestinations);
    let bigMark = marks();
    const bigCreate = await api.createStaticRoute(bigName, {
      destinations: bigDestinations,
      gateway: GATEWAY_A,
    });
    const countSince = (mark: number[], n: number, kind: 'add' | 'delete', gateway: string): number =>
      since(mark, n).filter(
        (e) => e.kind === kind && e.protocol === OURS && e.gateways[0] === gateway && bigSet.has(e.dst),
      ).length;
    await Promise.all(
      logs.map((log, n) =>
        log.waitUntil(() => countSince(bigMark, n, 'add', GATEWAY_A) >= bigSet.size, `${bigSet.size} routes`, 120_000),
      ),
    );
    const bigCreateMs =
      Math.max(...logs.map((_, n) => Math.max(...since(bigMark, n).map((e) => e.at)))) - bigCreate.acceptedAt;
    await waitStatus(api, bigName, nodes.length);
    await sleep(1000);
    current = GATEWAY_A;
    const windowRuns: WindowRun[] = [];
    for (let run = 0; run < opts.windowRuns; run++) {
      const next = current === GATEWAY_A ? GATEWAY_B : GATEWAY_A;
      bigMark = marks();
      const response = await api.patchSpec(bigName, { gateway: next });
      await Promise.all(
        logs.map((log, n) =>
          log.waitUntil(
            () =>
              countSince(bigMark, n, 'add', next) >= bigSet.size &&
              countSince(bigMark, n, 'delete', current) >= bigSet.size,
            `${bigSet.size} routes moved`,
            120_000,
          ),
        ),
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}\n${await diagnose(api, cluster, bigName)}`);
      });
      const result: WindowRun = {
        ...pickTimes(response),
        convergedMs: 0,
        nodes: {},
      };
      nodes.forEach((node, n) => {
        const deletedAt = new Map<string, number>();
        const windows: number[] = [];
        let first = Infinity;
        let last = 0;
        for (const e of since(bigMark, n)) {
          if (e.protocol !== OURS || !bigSet.has(e.dst)) continue;
          first = Math.min(first, e.at);
          last = Math.max(last, e.at);
          if (e.kind === 'delete' && e.gateways[0] === current) deletedAt.set(e.dst, e.at);
          if (e.kind === 'add' && e.gateways[0] === next) windows.push(e.at - (deletedAt.get(e.dst) ?? e.at));
        }
        result.nodes[node.name] = {
          windows,
          convergedMs: last - response.acceptedAt,
          spanMs: last - first,
        };
      });
      result.convergedMs = Math.max(...Object.values(result.nodes).map((n) => n.convergedMs));
      windowRuns.push(result);
      current = next;
      await waitStatus(api, bigName, nodes.length);
      await sleep(1000);
    }

    // What one write of an object costs the API server (validation included), without changing anything.
    const writeCost = {
      smallMs: [] as number[],
      bigMs: [] as number[],
      statusSmallMs: [] as number[],
      statusBigMs: [] as number[],
    };
    for (let i = 0; i < 5; i++) {
      for (const [name, list] of [
        [gatewayName, writeCost.statusSmallMs],
        [bigName, writeCost.statusBigMs],
      ] as const) {
        const body = { status: { ready: `probe-${i}` } };
        list.push((await api.call('PATCH', `${STATIC_ROUTES_PATH}/${name}/status?dryRun=All`, body)).roundTripMs);
      }
      for (const [name, list] of [
        [gatewayName, writeCost.smallMs],
        [bigName, writeCost.bigMs],
      ] as const) {
        const body = {
          metadata: { labels: { 'bench.opkit.dev/probe': String(i) } },
        };
        list.push((await api.call('PATCH', `${STATIC_ROUTES_PATH}/${name}?dryRun=All`, body)).roundTripMs);
      }
    }

    // The API server's own account of those writes (CEL evaluation and request durations), for the JSON.
    const metrics = await api.request<string>('GET', '/metrics');
    const apiServerMetrics = String(metrics.body)
      .split('\n')
      .filter(
        (line) =>
          /^apiserver_cel_\w+(_sum|_count)/.test(line) ||
          (/^apiserver_request_duration_seconds_(sum|count)\{/.test(line) && line.includes('resource="staticroutes"')),
      );

    reportLatency({
      options: { ...opts, profile, nodeFlags: nodeFlagsOption() },
      runtime,
      nodes: nodes.map((n) => n.name),
      creates,
      changes,
      windowRuns,
      destinations: opts.destinations,
      bigCreate: {
        roundTripMs: bigCreate.roundTripMs,
        allRoutesMs: bigCreateMs,
      },
      writeCost,
      apiServerMetrics,
      baseline,
    });
    if (profile) console.log(`\nagent and aggregator logs and CPU profiles: ${dir}`);
  } finally {
    api.close();
    await stopOperators([...operators, ...(aggregator ? [aggregator] : [])]);
    await Promise.all(logs.map((log) => log.stop()));
    await cluster.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
