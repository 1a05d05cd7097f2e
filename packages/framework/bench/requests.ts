/**
 * Figure 3, API requests per handled change in the steady state, cluster scope and node scope, counted with the
 * runtime's `onApiRequest` hook (every HTTP request the operator's client sends), operator in this process.
 *
 * Per scope: `--objects` objects are created and handled (requests per create reported too: the create handler
 * returns nothing, so handling is detected by the operator's `opkit_handler_runs_total` and then by its going
 * quiet, its Events posted), then every object's spec is changed `--rounds` times, one change at a time, each waiting
 * until the cycle's last write (the update handler's return value in status) is seen by the driver's watch, so no two
 * changes coalesce. Finally another writer patches only the status of every object: that must cost nothing.
 * The baseline is the minimum the design allows: per change, one status write (the update handler returns a value;
 * node scope keeps its state in a node-local file), plus one metadata write in cluster scope (the diff-base
 * annotation); per create, the finalizer plus the diff-base annotation in cluster scope and no status write (a plain
 * success with nothing else to write is not recorded).
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/requests.ts
 *        [--objects=50] [--rounds=2] [--quick]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { figure, fixed, numericOptions, printTable, type Figure } from '@opkit/testbed/bench';
import { OnCreate, OnDelete, OnUpdate, Operator, type HandlerContext, type ResourceRef } from 'opkit';
import { startOperator } from 'opkit/testing';
import type { BenchObject } from './lib/api.js';
import {
  collectionPath,
  GROUP,
  handlerSuccesses,
  kindOf,
  objectPath,
  startBenchCluster,
  widget,
  type BenchCluster,
} from './lib/cluster.js';
import { writeResults } from './lib/report.js';

const opts = numericOptions({ objects: 50, rounds: 2 }, { objects: 20, rounds: 1 });
const INSTANCE = 'bench-node';

interface WidgetSpec {
  seq: number;
}

/**
 * The same handlers for both scopes: create (returns nothing: no status write), update (returns spec.seq, so the
 * driver sees the cycle end), delete.
 */
class WidgetHandlers {
  @OnCreate({ id: 'created' })
  created(): void {}

  @OnUpdate({ id: 'updated' })
  updated(ctx: HandlerContext<WidgetSpec>): number {
    return ctx.spec.seq;
  }

  @OnDelete({ id: 'removed' })
  removed(): void {}
}

@Operator({ group: GROUP, version: 'v1', plural: 'clusterwidgets', kind: kindOf('clusterwidgets') })
class ClusterScoped extends WidgetHandlers {}

@Operator({ group: GROUP, version: 'v1', plural: 'nodewidgets', kind: kindOf('nodewidgets'), scope: 'node' })
class NodeScoped extends WidgetHandlers {}

/** Where this scope's own part of the status lives. */
const ownStatus = (object: BenchObject, scope: 'cluster' | 'node'): Record<string, unknown> | undefined =>
  scope === 'cluster'
    ? object.status
    : ((object.status?.nodes as Record<string, Record<string, unknown>> | undefined)?.[INSTANCE] ?? undefined);

interface Counts {
  total: number;
  events: number;
  /** `<verb> <plural>` -> requests. */
  byRequest: Record<string, number>;
}

interface ScopeResult {
  scope: 'cluster' | 'node';
  create: Counts;
  change: Counts;
  changes: number;
  foreignStatus: Counts;
}

async function measureScope(cluster: BenchCluster, scope: 'cluster' | 'node'): Promise<ScopeResult> {
  const plural = `${scope}widgets`;
  const cls = scope === 'cluster' ? ClusterScoped : NodeScoped;
  await cluster.installCrd(plural);
  const requests: string[] = [];
  const latest = new Map<string, BenchObject>();
  const stopWatch = new AbortController();
  await cluster.client.watch(
    collectionPath(plural),
    (event) => latest.set(event.object.metadata.name, event.object),
    stopWatch.signal,
  );
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'opkit-bench-state-'));
  const operator = await startOperator({
    classes: [cls],
    kubeconfigPath: cluster.controlPlane.kubeconfigPath,
    instanceId: INSTANCE,
    stateDir,
    onApiRequest: (verb: string, ref: ResourceRef) => requests.push(`${verb} ${ref.plural}`),
  });
  /** Polls `check` every 5 ms until it holds, for up to 60 s. */
  const until = async (check: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    for (const deadline = performance.now() + 60_000; !(await check()); await sleep(5)) {
      if (performance.now() > deadline) throw new Error(`${scope}: ${what} not observed within 60 s`);
    }
  };
  /** Waits until the operator sent nothing for 1.5 s (its Events are posted by a background loop). */
  const quiet = async (): Promise<void> => {
    for (let seen = -1; seen !== requests.length;) {
      seen = requests.length;
      await sleep(1500);
    }
  };
  const countSince = (start: number): Counts => {
    const byRequest: Record<string, number> = {};
    for (const request of requests.slice(start)) byRequest[request] = (byRequest[request] ?? 0) + 1;
    const events = Object.entries(byRequest)
      .filter(([key]) => key.endsWith(' events'))
      .reduce((sum, [, n]) => sum + n, 0);
    return { total: requests.length - start, events, byRequest };
  };
  const names = Array.from({ length: opts.objects }, (_, i) => `w-${i}`);
  try {
    if (scope === 'node') await cluster.client.request('POST', '/api/v1/nodes', { metadata: { name: INSTANCE } });
    await quiet();
    let start = requests.length;
    for (let i = 0; i < opts.objects; i += 1)
      await cluster.client.ok('POST', collectionPath(plural), widget(plural, i));
    // The create handler writes nothing observable in node scope (its state goes to the node-local file), so count
    // its successful runs; quiet() then waits for the cycles' remaining writes and the Events.
    await until(
      async () => handlerSuccesses(await operator.metricsText(), 'created') >= opts.objects,
      `${opts.objects} creates handled`,
    );
    await quiet();
    const create = countSince(start);

    start = requests.length;
    for (let round = 1; round <= opts.rounds; round += 1) {
      for (const name of names) {
        await cluster.client.ok('PATCH', objectPath(plural, name), { spec: { seq: round } });
        await until(() => ownStatus(latest.get(name) as BenchObject, scope)?.updated === round, `${name} seq ${round}`);
      }
    }
    await quiet();
    const change = countSince(start);

    start = requests.length;
    for (const name of names) {
      await cluster.client.ok('PATCH', `${objectPath(plural, name)}/status`, { status: { foreign: Date.now() } });
    }
    await quiet();
    const foreignStatus = countSince(start);
    return { scope, create, change, changes: opts.objects * opts.rounds, foreignStatus };
  } finally {
    stopWatch.abort();
    await operator.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`requests: ${opts.objects} objects, ${opts.rounds} change round(s) per scope, operator in-process`);
  const cluster = await startBenchCluster();
  const results: ScopeResult[] = [];
  try {
    for (const scope of ['cluster', 'node'] as const) results.push(await measureScope(cluster, scope));
  } finally {
    await cluster.stop();
  }
  const per = (counts: Counts, n: number, withEvents: boolean): string =>
    fixed((withEvents ? counts.total : counts.total - counts.events) / n, 2);
  const breakdown = (counts: Counts, n: number): string =>
    Object.entries(counts.byRequest)
      .map(([key, count]) => `${key} ${fixed(count / n, 2)}`)
      .join(', ');
  const rows: string[][] = [];
  const figures: Figure[] = [];
  for (const r of results) {
    // Per change: the status write (+ the diff-base annotation in cluster scope). Per create: the finalizer (+ the
    // diff-base annotation in cluster scope); the create handler returns nothing, so no status write.
    const baseline = r.scope === 'cluster' ? 2 : 1;
    const createBaseline = baseline;
    rows.push(
      [
        `${r.scope}: per change (target <= 2)`,
        per(r.change, r.changes, false),
        per(r.change, r.changes, true),
        `${baseline}`,
        breakdown(r.change, r.changes),
      ],
      [
        `${r.scope}: per create`,
        per(r.create, opts.objects, false),
        per(r.create, opts.objects, true),
        `${createBaseline}`,
        breakdown(r.create, opts.objects),
      ],
      [
        `${r.scope}: per status-only change by another writer`,
        per(r.foreignStatus, opts.objects, false),
        per(r.foreignStatus, opts.objects, true),
        '0',
        breakdown(r.foreignStatus, opts.objects),
      ],
    );
    figures.push(
      figure(`${r.scope} scope: requests per change`, (r.change.total - r.change.events) / r.changes, 'requests', {
        target: { op: '<=', value: 2 },
        baseline: { name: 'design minimum', value: baseline },
      }),
      figure(`${r.scope} scope: requests per change incl. Events`, r.change.total / r.changes, 'requests'),
    );
  }
  printTable(
    `API requests per handled change, steady state (${opts.objects} objects x ${opts.rounds} round(s) per scope)`,
    ['figure', 'w/o Events', 'w/ Events', 'minimum', 'by request'],
    rows,
  );
  writeResults('requests', figures, { options: opts, results });
}

await main();
