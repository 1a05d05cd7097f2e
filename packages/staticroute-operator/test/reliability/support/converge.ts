/**
 * End-state checks shared by the fault scenarios, and a small results log for docs/RELIABILITY.md.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { RouteMonitor } from '@opkit/testbed';
import { describeRoute, eventually, OURS, waitForRoutes, type E2eCluster } from '../../e2e/support/cluster.js';
import type { Churn } from './churn.js';
import { appliedProblems, listReports, listStaticRoutes, orphanEntries } from './reports.js';

/** Whether the long forms run (`CHAOS_LONG=1`, set by scripts/chaos.sh --long). */
export const LONG = process.env.CHAOS_LONG === '1';

/** Where measured figures are appended, one JSON object per line. */
export const RESULTS_FILE =
  process.env.RELIABILITY_RESULTS ?? path.join(tmpdir(), 'opkit-reliability', 'results.jsonl');

/** Records a figure set for the docs (and prints it). Figures are reported, never asserted. */
export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  const line = { scenario, long: LONG, at: new Date().toISOString(), ...figures };
  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  appendFileSync(RESULTS_FILE, `${JSON.stringify(line)}\n`);
  console.log(`[reliability] ${JSON.stringify(line)}`);
}

/**
 * Waits until the cluster matches the churn model: every node's table equals the desired routes exactly (nothing
 * missing, no orphan), every deleted object is gone, and every live object holds the aggregator's finalizer alone,
 * READY N/N for its generation, and every node's report says Applied for its uid and generation. Resolves with the
 * time it took.
 */
export async function expectConverged(cluster: E2eCluster, churn: Churn, timeoutMs = 180_000): Promise<number> {
  return (await expectConvergedPhases(cluster, churn, timeoutMs)).totalMs;
}

/** Time each part of {@link expectConverged} took, in its order. */
export interface ConvergencePhases {
  /** Until every table equals the model. */
  tablesMs: number;
  /** Then until every deleted object is gone (the aggregator released it). */
  goneMs: number;
  /** Then until every live object is reported Applied by every node and summarized so by the aggregator. */
  statusMs: number;
  totalMs: number;
}

/** {@link expectConverged}, telling how long each part took. */
export async function expectConvergedPhases(
  cluster: E2eCluster,
  churn: Churn,
  timeoutMs = 180_000,
): Promise<ConvergencePhases> {
  const started = Date.now();
  await waitForRoutes(cluster.nodes, churn.expectedRoutes(), timeoutMs);
  const tablesAt = Date.now();
  for (const name of churn.deleted) await cluster.waitGone(name, timeoutMs);
  const goneAt = Date.now();
  const nodes = cluster.nodes.map((node) => node.name).sort();
  await eventually(
    async () => {
      const [objects, reports] = await Promise.all([listStaticRoutes(cluster), listReports(cluster)]);
      const problems = [...churn.live.keys()].flatMap((name) =>
        appliedProblems(objects.get(name), name, nodes, reports),
      );
      // Thrown: the last problems are the failure message.
      if (problems.length > 0) throw new Error(problems.slice(0, 10).join('; '));
      return true;
    },
    'every live object to hold the aggregator finalizer alone, be Applied on every node and READY N/N',
    timeoutMs,
  );
  const done = Date.now();
  return { tablesMs: tablesAt - started, goneMs: goneAt - tablesAt, statusMs: done - goneAt, totalMs: done - started };
}

/** Every node's report holds entries of live objects only (a deleted object's entry is dropped by every node). */
export async function expectNoOrphanEntries(cluster: E2eCluster, timeoutMs = 60_000): Promise<void> {
  const nodes = cluster.nodes.map((node) => node.name);
  await eventually(
    async () => {
      const [objects, reports] = await Promise.all([listStaticRoutes(cluster), listReports(cluster)]);
      const orphans = orphanEntries(objects, reports, nodes);
      if (orphans.length > 0) throw new Error(`entries of deleted objects: ${orphans.slice(0, 10).join(', ')}`);
      return true;
    },
    'every report to hold entries of live objects only',
    timeoutMs,
  );
}

/** Route operations one node made, per route line of the churn model. */
export interface AppliedOnce {
  adds: number;
  deletes: number;
  /** Lines added more often than they became wanted, or deleted more often than they stopped being wanted. */
  excess: string[];
}

/**
 * Each change of the model was applied at most once on every node, whatever the faults: per route (`dst via gw`), the
 * node added it at most as often as it became wanted and deleted it at most as often as it stopped being wanted (a
 * change handled twice, a stale copy of an object applied after a newer one, or a route that flapped shows as one
 * operation too many). `monitors` watched every node's table from before the churn until after convergence.
 */
export function expectEachChangeAppliedOnce(
  monitors: ReadonlyMap<string, RouteMonitor>,
  churn: Churn,
): Record<string, AppliedOnce> {
  const perNode: Record<string, AppliedOnce> = {};
  for (const [node, monitor] of monitors) {
    const adds = new Map<string, number>();
    const deletes = new Map<string, number>();
    for (const event of monitor.events()) {
      if (event.route.protocol !== OURS || !churn.everDesired.has(event.route.dst)) continue;
      const line = describeRoute(event.route);
      const counts = event.kind === 'add' ? adds : deletes;
      counts.set(line, (counts.get(line) ?? 0) + 1);
    }
    const excess: string[] = [];
    for (const [line, count] of adds) {
      const entered = churn.transitions.get(line)?.entered ?? 0;
      if (count > entered) excess.push(`added ${count}x, wanted ${entered}x: ${line}`);
    }
    for (const [line, count] of deletes) {
      const left = churn.transitions.get(line)?.left ?? 0;
      if (count > left) excess.push(`deleted ${count}x, unwanted ${left}x: ${line}`);
    }
    const sum = (counts: Map<string, number>) => [...counts.values()].reduce((total, count) => total + count, 0);
    perNode[node] = { adds: sum(adds), deletes: sum(deletes), excess };
    // Soft: every node's figures are checked (and the caller records them) before the test fails.
    expect.soft(excess, `${node}: route operations beyond the changes made`).toEqual([]);
    expect.soft(sum(adds), `${node}: no route added at all (the monitor saw nothing?)`).toBeGreaterThan(0);
  }
  return perNode;
}
