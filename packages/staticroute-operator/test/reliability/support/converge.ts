/**
 * End-state checks shared by the fault scenarios, and a small results log for docs/RELIABILITY.md.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { SimNode } from '@opkit/testbed';
import { eventually, waitForRoutes, type E2eCluster } from '../../e2e/support/cluster.js';
import type { Churn } from './churn.js';
import {
  completionsByUid,
  handlerSuccesses,
  handlerSuccessesByUid,
  PREFIX,
  scrapeOperator,
  stateFileUids,
  type LogEntry,
  type Metrics,
} from './observe.js';

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

/** Scrapes every node's operator. */
export async function scrapeAll(nodes: readonly SimNode[]): Promise<Map<string, Metrics>> {
  const entries = await Promise.all(nodes.map(async (node) => [node.name, await scrapeOperator(node)] as const));
  return new Map(entries);
}

/**
 * Waits until the cluster matches the churn model: every node's table equals the desired routes exactly (nothing
 * missing, no orphan), every deleted object is gone, and every live object carries exactly one finalizer per node
 * and reports Applied for its current generation on every node. Resolves with the time it took.
 */
export async function expectConverged(cluster: E2eCluster, churn: Churn, timeoutMs = 180_000): Promise<number> {
  return (await expectConvergedPhases(cluster, churn, timeoutMs)).totalMs;
}

/** Time each part of {@link expectConverged} took, in its order. */
export interface ConvergencePhases {
  /** Until every table equals the model. */
  tablesMs: number;
  /** Then until every deleted object is gone. */
  goneMs: number;
  /** Then until every live object has its finalizers and Applied entries. */
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
  const wantFinalizers = nodes.map((node) => `${PREFIX}/${node}`).sort();
  await eventually(
    async () => {
      for (const name of churn.live.keys()) {
        const object = await cluster.getStaticRoute(name);
        if (!object) return undefined;
        const finalizers = (object.metadata.finalizers ?? []).filter((item) => item.startsWith(`${PREFIX}/`)).sort();
        if (JSON.stringify(finalizers) !== JSON.stringify(wantFinalizers)) return undefined;
        for (const node of nodes) {
          const entry = object.status?.nodes?.[node];
          if (entry?.state !== 'Applied' || entry.observedGeneration !== object.metadata.generation) return undefined;
        }
      }
      return true;
    },
    'every live object to carry one finalizer per node and report Applied for its generation',
    timeoutMs,
  );
  const done = Date.now();
  return { tablesMs: tablesAt - started, goneMs: goneAt - tablesAt, statusMs: done - goneAt, totalMs: done - started };
}

/** Uids of the live StaticRoutes. */
export async function liveUids(cluster: E2eCluster): Promise<string[]> {
  const response = await cluster.controlPlane.request<{ items: Array<{ metadata: { uid: string } }> }>(
    'GET',
    '/apis/networking.digitalocean.com/v1/staticroutes',
  );
  return response.body.items.map((item) => item.metadata.uid).sort();
}

/** Every node keeps state files for live objects only (objects deleted meanwhile leave nothing behind). */
export async function expectNoOrphanState(cluster: E2eCluster, timeoutMs = 60_000): Promise<void> {
  for (const node of cluster.nodes) {
    await eventually(
      async () => {
        const live = new Set(await liveUids(cluster));
        const files = stateFileUids(cluster, node.name);
        return files.every((uid) => live.has(uid)) ? true : undefined;
      },
      `${node.name} to keep state files of live objects only (has ${stateFileUids(cluster, node.name).length})`,
      timeoutMs,
    );
  }
}

/**
 * No handler ran twice for one change, per node, within one operator process's lifetime: successful runs (metrics
 * delta) never exceed the changes made (creates, spec patches, deletes), no resume ran (no restart happened), and
 * no object completed its create or its delete more than once (logs, by uid).
 */
export function expectEachChangeHandledOnce(
  before: Map<string, Metrics>,
  after: Map<string, Metrics>,
  churn: Churn,
  logs: Map<string, LogEntry[]>,
): Record<string, Record<string, number>> {
  const perNode: Record<string, Record<string, number>> = {};
  for (const [node, metrics] of after) {
    const now = handlerSuccesses(metrics);
    const then = handlerSuccesses(before.get(node) ?? new Map());
    const delta = {
      create: now.create - then.create,
      update: now.update - then.update,
      delete: now.delete - then.delete,
      resume: now.resume - then.resume,
    };
    perNode[node] = delta;
    // Soft: every node's figures are checked (and the caller records them) before the test fails.
    expect
      .soft(delta.create, `${node}: create handlers ran more often than objects were created`)
      .toBeLessThanOrEqual(churn.counts.create);
    expect
      .soft(delta.create, `${node}: create handlers`)
      .toBeGreaterThanOrEqual(churn.counts.create - churn.counts.delete);
    expect
      .soft(delta.update, `${node}: update handlers ran more often than specs were changed`)
      .toBeLessThanOrEqual(churn.changes);
    expect
      .soft(delta.delete, `${node}: delete handlers ran more often than objects were deleted`)
      .toBeLessThanOrEqual(churn.counts.delete);
    expect.soft(delta.resume, `${node}: resume handlers without a restart`).toBe(0);
    for (const [uid, counts] of completionsByUid(logs.get(node) ?? [])) {
      expect.soft(counts.create ?? 0, `${node}: creates completed for ${uid}`).toBeLessThanOrEqual(1);
      expect.soft(counts.delete ?? 0, `${node}: deletes completed for ${uid}`).toBeLessThanOrEqual(1);
    }
    // Handler log lines are bound to their object (B5); without it the per-object counts below would count nothing.
    const successLines = (logs.get(node) ?? []).filter((entry) => entry.msg === 'handler succeeded');
    expect.soft(successLines.length, `${node}: 'handler succeeded' log lines`).toBeGreaterThan(0);
    expect
      .soft(
        successLines.filter((entry) => typeof entry.uid !== 'string' || typeof entry.object !== 'string').length,
        `${node}: 'handler succeeded' lines without object and uid`,
      )
      .toBe(0);
    // Per object: its create and delete handlers succeeded at most once, and no resume ran.
    for (const [uid, counts] of handlerSuccessesByUid(logs.get(node) ?? [])) {
      expect.soft(counts.create ?? 0, `${node}: create handler successes for ${uid}`).toBeLessThanOrEqual(1);
      expect.soft(counts.delete ?? 0, `${node}: delete handler successes for ${uid}`).toBeLessThanOrEqual(1);
      expect.soft(counts.resume ?? 0, `${node}: resume handler successes for ${uid}`).toBe(0);
    }
  }
  return perNode;
}
