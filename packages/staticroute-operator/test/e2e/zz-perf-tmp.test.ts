// TEMPORARY profiling harness (not to be committed): one StaticRoute with 2,000 destinations on 3 nodes.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, ourRoutes } from './support/cluster.js';

let cluster: E2eCluster;
const N = Number(process.env.PERF_N ?? 2000);
const dests = (offset: number) => Array.from({ length: N }, (_, i) => `198.18.${(i + offset) >> 8}.${(i + offset) & 255}`);
const PROFILE = process.env.PERF_PROFILE;

beforeAll(async () => {
  cluster = await E2eCluster.start(3);
  await cluster.startOperators(PROFILE ? { env: { NODE_OPTIONS: `--import=/tmp/prof/profiler.mjs`, PROF_DIR: PROFILE } } : {});
});
afterAll(async () => {
  await cluster?.destroy();
});

function timeline(logs: string, label: string) {
  const lines = logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const rel = lines.filter((l) => l.object === 'perf' || l.msg === 'routing table reconciled');
  const out: string[] = [];
  for (const l of rel) out.push(`${l.time} ${l.msg} ${l.cause ?? ''} ${l.handler ?? ''} ${l.durationMs ?? ''}`);
  console.log(`--- ${label}\n${out.join('\n')}`);
  return lines;
}

it('2000 destinations', async () => {
  const t0 = Date.now();
  await cluster.apply(cluster.staticRoute('perf', { destinations: dests(0), gateway: GATEWAY_A }));
  console.log('created at', Date.now(), 'took', Date.now() - t0);
  for (const node of cluster.nodes) await eventually(async () => (await ourRoutes(node)).length === N, 'routes', 120_000);
  const ready = await eventually(async () => (await cluster.getStaticRoute('perf'))?.status?.ready === '3/3', 'ready', 120_000);
  console.log('create converged after', Date.now() - t0, ready);
  const quiet = await cluster.kubectl(['get', 'staticroute', 'perf', '--watch-only', '-o', 'jsonpath={.metadata.resourceVersion}{"\\n"}', '--request-timeout=20s']);
  console.log('writes to the object in a 20 s quiet period after convergence:', quiet.stdout.split('\n').filter(Boolean).length);
  const t1 = Date.now();
  await cluster.kubectl(['patch', 'staticroute', 'perf', '--type=merge', '-p', JSON.stringify({ spec: { destinations: dests(1) } })]);
  console.log('patched at', Date.now());
  for (const node of cluster.nodes) await eventually(async () => (await ourRoutes(node)).some((r) => r.startsWith(`198.18.${N >> 8}.${N & 255}/32`)), 'routes2', 120_000);
  console.log('update converged after', Date.now() - t1);
  await new Promise((r) => setTimeout(r, 3000));
  const t2 = Date.now();
  await cluster.deleteStaticRoute('perf');
  await cluster.waitGone('perf', 120_000);
  console.log('delete converged after', Date.now() - t2, 'at', Date.now());
  await new Promise((r) => setTimeout(r, 1000));
  for (const [name, op] of cluster.operators) timeline(op.logs(), name);
  await cluster.stopOperators();
  if (PROFILE) console.log(readdirSync(PROFILE));
  expect(true).toBe(true);
}, 600_000);
