/**
 * Gateway health (ECMP): how long a failed gateway keeps its share of the traffic, and what probing costs.
 * `bash scripts/bench.sh gateway-health [--repetitions=5] [--quiet-s=60] [--timeout-s=120] [--keep-logs]`.
 *
 * Set-up: a real control plane with the release applied, 3 simulated nodes and the test bed's two gateways, one agent
 * per node with the release's environment (its default thresholds: nothing tuned for the benchmark), and
 * `ip monitor route` in every node (lib/route-log.ts: the kernel's notifications stamped by `ip` as it reads them).
 * One StaticRoute: 198.51.100.0/24 over both gateways (ECMP). Then, `--repetitions` times:
 * - withdrawal: gateway B is taken off the VPC (its `eth0` down, as a stopped machine); for each node, the time from
 *   then to the notification of its route having only gateway A;
 * - return: B back on the VPC; for each node, the time until its route has both gateways again.
 * Median and max over every node and repetition. Then a quiet minute with both gateways up: the neighbour probes
 * (ARP requests, nftables counters on the gateways' `eth0`) each gateway received, per node per minute. Those include
 * the kernel's own neighbour traffic for the routes (nothing sends traffic through them here, so it is small).
 * Results: bench/results/gateway-health.json and a table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { figure, fixed, flag, numericOptions, printTable, summarize } from '@opkit/testbed/bench';
import type { SimHost } from '@opkit/testbed';
import { BenchApi, STATIC_ROUTES_PATH } from './lib/api.js';
import { BenchCluster } from './lib/cluster.js';
import { OperatorProcess, runtimeOf, stopOperators } from './lib/operators.js';
import { sleep, writeResults } from './lib/report.js';
import { startRouteLogs, type RouteLog } from './lib/route-log.js';

const opts = numericOptions({ repetitions: 5, quietS: 60, timeoutS: 120 });
const keepLogs = flag('keep-logs');
const NODES = 3;
const GATEWAY_A = '10.116.0.5';
const GATEWAY_B = '10.116.0.12';
const DESTINATION = '198.51.100.0/24';
const BOTH = [GATEWAY_A, GATEWAY_B].sort().join(',');

/** Time from `since` until each log shows `DESTINATION` via exactly `gateways` (ms, per node, in log order). */
async function timeUntil(logs: RouteLog[], since: number, gateways: string, what: string): Promise<number[]> {
  return Promise.all(
    logs.map(async (log) => {
      let at: number | undefined;
      await log.waitUntil(
        () => {
          const last = log.events.filter((event) => event.dst === DESTINATION && event.at >= since).at(-1);
          if (last?.kind === 'add' && last.gateways.join(',') === gateways) at = last.at;
          return at !== undefined;
        },
        what,
        opts.timeoutS * 1000,
        5,
      );
      return (at as number) - since;
    }),
  );
}

async function arpRequests(host: SimHost): Promise<number> {
  return (await host.neighbourProbesReceived()).arp;
}

async function main(): Promise<void> {
  const runtime = runtimeOf(process.execPath);
  console.log(
    `gateway health: ${NODES} nodes, ${opts.repetitions} repetitions, agents on ${runtime.version}, load average ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-gateway-health-'));
  const cluster = await BenchCluster.start(NODES);
  const api = new BenchApi(cluster.controlPlane);
  let agents: OperatorProcess[] = [];
  let logs: RouteLog[] = [];
  const withdrawal: number[] = [];
  const recovery: number[] = [];
  let probes: { a: number; b: number; seconds: number } | undefined;
  const gateway = (address: string): SimHost => {
    const host = cluster.network.gateways.find((item) => item.address === address);
    if (!host) throw new Error(`no gateway ${address}`);
    return host;
  };
  try {
    const kubeconfigs = await cluster.agentKubeconfigsFor(cluster.nodes);
    agents = cluster.nodes.map((node) =>
      OperatorProcess.start(node, { runtime, kubeconfig: (n) => kubeconfigs.get(n.name) as string, dir }),
    );
    await Promise.all(agents.map((agent) => agent.waitReady(300_000)));
    logs = await startRouteLogs(cluster.nodes, dir);
    const created = await api.request('POST', STATIC_ROUTES_PATH, {
      apiVersion: 'networking.digitalocean.com/v1',
      kind: 'StaticRoute',
      metadata: { name: 'bench-ecmp' },
      spec: { destinations: [DESTINATION], gateways: [GATEWAY_A, GATEWAY_B] },
    });
    if (created.status !== 201) throw new Error(`create failed: ${created.status} ${JSON.stringify(created.body)}`);
    await timeUntil(logs, 0, BOTH, 'the ECMP route');
    // Both gateways Reachable on every node before the first failure (the prober's first verdicts).
    await sleep(10_000);
    const b = gateway(GATEWAY_B);
    for (let repetition = 1; repetition <= opts.repetitions; repetition++) {
      const failedAt = Date.now();
      await b.setOnline(false);
      const down = await timeUntil(logs, failedAt, GATEWAY_A, `${GATEWAY_B} withdrawn (repetition ${repetition})`);
      withdrawal.push(...down);
      const recoveredAt = Date.now();
      await b.setOnline(true);
      const up = await timeUntil(logs, recoveredAt, BOTH, `${GATEWAY_B} back (repetition ${repetition})`);
      recovery.push(...up);
      console.log(
        `repetition ${repetition}: withdrawn after ${down.map((ms) => fixed(ms / 1000, 2)).join(' / ')} s, back after ` +
          `${up.map((ms) => fixed(ms / 1000, 2)).join(' / ')} s`,
      );
      // Settled: a few rounds of probes before the next failure.
      await sleep(5_000);
    }
    const a = gateway(GATEWAY_A);
    const before = [await arpRequests(a), await arpRequests(b)];
    const started = Date.now();
    await sleep(opts.quietS * 1000);
    const seconds = (Date.now() - started) / 1000;
    const after = [await arpRequests(a), await arpRequests(b)];
    probes = { a: after[0]! - before[0]!, b: after[1]! - before[1]!, seconds };
  } finally {
    await Promise.all(logs.map((log) => log.stop().catch(() => undefined)));
    await stopOperators(agents).catch(() => undefined);
    await cluster.destroy();
    if (keepLogs) console.log(`logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  const down = summarize(withdrawal);
  const up = summarize(recovery);
  const perNodeMinute = (count: number) => (count / NODES) * (60 / (probes as { seconds: number }).seconds);
  const probeA = perNodeMinute((probes as { a: number }).a);
  const probeB = perNodeMinute((probes as { b: number }).b);
  printTable(
    `gateway health: ${NODES} nodes x ${opts.repetitions} repetitions (${withdrawal.length} samples each)`,
    ['figure', 'median', 'max', 'min'],
    [
      [
        'gateway offline -> withdrawn from the route on a node (s)',
        fixed(down.median / 1000, 2),
        fixed(down.max / 1000, 2),
        fixed(down.min / 1000, 2),
      ],
      [
        'gateway online -> back in the route on a node (s)',
        fixed(up.median / 1000, 2),
        fixed(up.max / 1000, 2),
        fixed(up.min / 1000, 2),
      ],
      [`ARP requests per node per minute at ${GATEWAY_A}`, fixed(probeA, 1), '', ''],
      [`ARP requests per node per minute at ${GATEWAY_B}`, fixed(probeB, 1), '', ''],
    ],
  );
  writeResults(
    'gateway-health',
    [
      figure('gateway offline -> withdrawn on a node, median', down.median / 1000, 's'),
      figure('gateway offline -> withdrawn on a node, max', down.max / 1000, 's'),
      figure('gateway online -> back on a node, median', up.median / 1000, 's'),
      figure('gateway online -> back on a node, max', up.max / 1000, 's'),
      figure('probe packets per node per minute (each gateway, mean of the two)', (probeA + probeB) / 2, 'packets'),
    ],
    { nodes: NODES, repetitions: opts.repetitions, withdrawalMs: withdrawal, recoveryMs: recovery, probes },
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
