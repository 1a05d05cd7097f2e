/**
 * Figure 4: route programming through netlink, per node, beside the kernel's own pace.
 *
 * All in a scratch namespace shaped like a test-bed node (lib/scratch-netns.ts), interleaved run by run:
 * - the operator's path: test/support/netlink-agent.mjs runs the compiled planner and netlink adapter (read the
 *   table, plan, pipelined apply) for ROUTES host routes, then removes them; with each Node.js runtime given;
 * - `ip -batch` with the same routes (one process, one socket: the kernel's pace), minus an empty batch's time;
 * - one `ip route add` process per route on a sample (what a shell-out operator would do), for the ratio.
 *
 * Calibration of the route monitor used by apply-latency.ts: a 2,000-destination gateway change (2,000 deletes,
 * then 2,000 adds, as the operator plans it) applied by the agent while `ip -ts monitor route` logs it. The time the
 * agent took, against the first-to-last span of the monitor's timestamps, shows whether the monitor keeps up; the
 * per-destination windows here are the operator's windows without a cluster competing for the CPU.
 *
 * Run (root, after `pnpm run build`):
 *   node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/netlink-throughput.ts
 *     [--routes=50000] [--runs=5] [--sample=500] [--window=2000] [--node24=PATH] [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { figure, fixed, numericOptions, printTable, stringOption, summarize } from '@opkit/testbed/bench';
import { AgentClient, type AgentBench } from './lib/agent-client.js';
import { runtimes, type Runtime } from './lib/operators.js';
import { grouped, printFigures, writeResults } from './lib/report.js';
import { RouteLog } from './lib/route-log.js';
import { benchAddress, ScratchNamespace } from './lib/scratch-netns.js';

const opts = numericOptions(
  { routes: 50_000, runs: 5, sample: 500, window: 2000 },
  { routes: 20_000, runs: 2, sample: 200 },
);
const PROTOCOL = 201;

async function main(): Promise<void> {
  const list = runtimes(stringOption('node24'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sr-bench-netlink-'));
  const scratch = ScratchNamespace.create();
  const [gatewayA, gatewayB] = scratch.gateways as [string, string];
  console.log(
    `netlink throughput: ${opts.routes} routes x ${opts.runs} runs; runtimes ${list.map((r) => r.version).join(', ')}`,
  );
  const adapter = new Map<string, AgentBench[]>(list.map((runtime) => [runtime.label, []]));
  const batchAddMs: number[] = [];
  const batchDeleteMs: number[] = [];
  const perProcessMs: number[] = [];
  try {
    const lines = (verb: string): string[] =>
      Array.from({ length: opts.routes }, (_, i) => `route ${verb} ${benchAddress(i)}/32 via ${gatewayA} proto 201`);
    const addLines = lines('add');
    const deleteLines = lines('del');
    for (let run = 0; run < opts.runs; run++) {
      for (const runtime of list) {
        const agent = await AgentClient.start(scratch, runtime.binary);
        try {
          const result = await agent.bench(opts.routes, gatewayA);
          if (result.addFailures + result.deleteFailures > 0 || result.listed !== opts.routes) {
            throw new Error(`adapter run failed: ${JSON.stringify(result)}`);
          }
          adapter.get(runtime.label)?.push(result);
        } finally {
          await agent.stop();
        }
      }
      const empty = await scratch.batch([], path.join(dir, 'empty'));
      batchAddMs.push((await scratch.batch(addLines, path.join(dir, 'add'))) - empty);
      batchDeleteMs.push((await scratch.batch(deleteLines, path.join(dir, 'del'))) - empty);
      let total = 0;
      for (let i = 0; i < opts.sample; i++) {
        total += await scratch.run(['route', 'add', `${benchAddress(i)}/32`, 'via', gatewayA, 'proto', '201']);
      }
      perProcessMs.push(total);
      scratch.flush(PROTOCOL);
      console.log(`run ${run + 1}/${opts.runs} done`);
    }
    const calibration = await monitorCalibration(scratch, list[0] as Runtime, dir, gatewayA, gatewayB);
    report(list, adapter, batchAddMs, batchDeleteMs, perProcessMs, calibration);
  } finally {
    scratch.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Calibration {
  applyMs: number[];
  spanMs: number[];
  windows: number[];
  notifications: number[];
}

async function monitorCalibration(
  scratch: ScratchNamespace,
  runtime: Runtime,
  dir: string,
  gatewayA: string,
  gatewayB: string,
): Promise<Calibration> {
  const destinations = Array.from({ length: opts.window }, (_, i) => `${benchAddress(i, 8192)}/32`);
  const wanted = new Set(destinations);
  const agent = await AgentClient.start(scratch, runtime.binary);
  const result: Calibration = { applyMs: [], spanMs: [], windows: [], notifications: [] };
  try {
    await agent.reconcile(destinations.map((destination) => ({ destination, gateways: [gatewayA] })));
    for (let run = 0; run < opts.runs; run++) {
      const from = run % 2 === 0 ? gatewayA : gatewayB;
      const to = run % 2 === 0 ? gatewayB : gatewayA;
      const log = await RouteLog.start(scratch, path.join(dir, `calibration-${run}.log`));
      const started = performance.now();
      const report = await agent.reconcile(destinations.map((destination) => ({ destination, gateways: [to] })));
      result.applyMs.push(performance.now() - started);
      if (report.failures.length > 0) throw new Error(`calibration failed: ${JSON.stringify(report.failures[0])}`);
      const countOf = (kind: string): number =>
        log.events.filter((e) => e.kind === kind && wanted.has(e.dst) && e.protocol === PROTOCOL).length;
      await log.waitUntil(() => countOf('add') >= wanted.size && countOf('delete') >= wanted.size, 'monitor');
      await log.stop();
      const deletedAt = new Map<string, number>();
      let first = Infinity;
      let last = 0;
      for (const event of log.events) {
        if (!wanted.has(event.dst) || event.protocol !== PROTOCOL) continue;
        first = Math.min(first, event.at);
        last = Math.max(last, event.at);
        if (event.kind === 'delete' && event.gateways[0] === from) deletedAt.set(event.dst, event.at);
        if (event.kind === 'add' && event.gateways[0] === to) {
          result.windows.push(event.at - (deletedAt.get(event.dst) ?? event.at));
        }
      }
      result.spanMs.push(last - first);
      result.notifications.push(log.events.length);
    }
  } finally {
    await agent.stop();
  }
  return result;
}

function report(
  list: Runtime[],
  adapter: Map<string, AgentBench[]>,
  batchAddMs: number[],
  batchDeleteMs: number[],
  perProcessMs: number[],
  calibration: Calibration,
): void {
  const rate = (count: number, ms: number): number => (count / ms) * 1000;
  const batchAdd = summarize(batchAddMs.map((ms) => rate(opts.routes, ms)));
  const batchDelete = summarize(batchDeleteMs.map((ms) => rate(opts.routes, ms)));
  const perProcess = summarize(perProcessMs.map((ms) => rate(opts.sample, ms)));
  const rows: (string | number)[][] = [];
  const figures = [];
  for (const runtime of list) {
    const runs = adapter.get(runtime.label) ?? [];
    const add = summarize(runs.map((r) => rate(r.count, r.addMs)));
    const del = summarize(runs.map((r) => rate(r.count, r.deleteMs)));
    const dump = summarize(runs.map((r) => r.listMs));
    const noop = summarize(runs.map((r) => r.noopMs));
    rows.push([`operator adapter, add (${runtime.version})`, grouped(add.median), grouped(add.min), grouped(add.max)]);
    rows.push([
      `operator adapter, delete (${runtime.version})`,
      grouped(del.median),
      grouped(del.min),
      grouped(del.max),
    ]);
    rows.push([`  dump of ${opts.routes} routes, ms`, fixed(dump.median), fixed(dump.min), fixed(dump.max)]);
    rows.push([`  no-op re-plan (dump + plan), ms`, fixed(noop.median), fixed(noop.min), fixed(noop.max)]);
    figures.push(
      figure(`netlink add rate, operator adapter (${runtime.label})`, add.median, 'routes/s', {
        target: { op: '>=', value: 50_000 },
        baseline: { name: 'ip -batch', value: batchAdd.median },
      }),
      figure(`netlink delete rate, operator adapter (${runtime.label})`, del.median, 'routes/s', {
        baseline: { name: 'ip -batch', value: batchDelete.median },
      }),
    );
  }
  rows.push(['ip -batch, add', grouped(batchAdd.median), grouped(batchAdd.min), grouped(batchAdd.max)]);
  rows.push(['ip -batch, delete', grouped(batchDelete.median), grouped(batchDelete.min), grouped(batchDelete.max)]);
  rows.push([
    `one \`ip route add\` process per route (${opts.sample} routes)`,
    grouped(perProcess.median),
    grouped(perProcess.min),
    grouped(perProcess.max),
  ]);
  printTable(
    `Figure 4: route programming, routes/s (${opts.routes} host routes, ${opts.runs} runs)`,
    ['', 'median', 'min', 'max'],
    rows,
  );
  const first = list[0] as Runtime;
  const firstAdd = summarize((adapter.get(first.label) ?? []).map((r) => rate(r.count, r.addMs))).median;
  figures.push(
    figure(`one ip route add process per route`, perProcess.median, 'routes/s'),
    figure(
      `operator adapter (${first.label}) vs one ip route add process per route`,
      firstAdd / perProcess.median,
      'x',
    ),
  );

  const apply = summarize(calibration.applyMs);
  const span = summarize(calibration.spanMs);
  const windows = summarize(calibration.windows);
  printTable(
    `Route monitor calibration: gateway change of ${opts.window} destinations by the adapter alone (${first.version})`,
    ['', 'median', 'max'],
    [
      ['adapter reconcile (read + plan + 4,000 ops), ms', fixed(apply.median), fixed(apply.max)],
      ['first -> last notification in ip monitor, ms', fixed(span.median), fixed(span.max)],
      ['window without a route per destination, ms', fixed(windows.median, 2), fixed(windows.max, 2)],
    ],
  );
  figures.push(
    figure(`no-route window, ${opts.window} destinations, adapter alone, median`, windows.median, 'ms'),
    figure(`no-route window, ${opts.window} destinations, adapter alone, max`, windows.max, 'ms'),
    figure('monitor span / adapter reconcile time', span.median / apply.median, 'x'),
  );
  printFigures('Figure 4', figures);
  writeResults('netlink-throughput', figures, {
    options: opts,
    runtimes: list,
    adapter: Object.fromEntries(adapter),
    batchAddMs,
    batchDeleteMs,
    perProcessMs,
    calibration: { ...calibration, windows: summarize(calibration.windows) },
  });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
