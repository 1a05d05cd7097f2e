/**
 * The node-scale primitives against a real API server: the coalescing ReportWriter (one writer per report, writes
 * coalesced, self-healing) and the level-based Reconciler with secondary watches.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reconciler, type ReconcileContext } from '../../src/reconcile/reconciler.js';
import { ReportWriter } from '../../src/reports/report-writer.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { GROUP, startCluster, testObject, until, type TestCluster } from './helpers.js';

interface Entry {
  state: string;
  message?: string;
}

const logger = pino({ level: 'silent' });
let cluster: TestCluster;
let reports: ResourceRef;
let things: ResourceRef;

beforeAll(async () => {
  cluster = await startCluster();
  // Reports have no status subresource: the writer owns the whole object.
  reports = await cluster.installCrd('reports', 'Report', { statusSubresource: false });
  things = await cluster.installCrd('things', 'Thing');
});

afterAll(async () => {
  await cluster?.stop();
});

function writer(name: string, options: { minIntervalMs?: number; heartbeatMs?: number } = {}): ReportWriter<Entry> {
  return new ReportWriter<Entry>({
    api: cluster.api,
    resource: reports,
    name,
    entriesField: 'entries',
    summarize: (entries) => ({ count: entries.size }),
    template: () => ({ apiVersion: `${GROUP}/v1`, kind: 'Report', metadata: { labels: { role: 'report' } } }),
    logger,
    minIntervalMs: options.minIntervalMs ?? 200,
    heartbeatMs: options.heartbeatMs ?? 0,
  });
}

async function stored(name: string): Promise<{ entries?: Record<string, Entry>; count?: number } | undefined> {
  try {
    const object = await cluster.api.get<KubeObject>(reports, name);
    return object.status as { entries?: Record<string, Entry>; count?: number };
  } catch {
    return undefined;
  }
}

describe('ReportWriter', () => {
  it('creates the report, then writes a burst of changes in a few coalesced writes', async () => {
    const report = writer('burst', { minIntervalMs: 500 });
    report.start();
    for (let i = 0; i < 200; i++) report.set(`object-${i}`, { state: 'Applied' });
    await report.flush();
    const status = await stored('burst');
    expect(Object.keys(status?.entries ?? {})).toHaveLength(200);
    expect(status?.count).toBe(200);
    // One create, at most a couple of patches: never one write per entry.
    expect(report.writes).toBeLessThanOrEqual(3);
    // The client says which server it talks to (agents keep its host off gateways).
    expect(cluster.api.server).toBe(cluster.cp.server);
    const before = report.writes;
    report.set('object-1', { state: 'Applied' });
    await report.flush();
    expect(report.writes).toBe(before);
    report.stop();
  });

  it('replaces an entry whole (no stale keys) and removes deleted entries', async () => {
    const report = writer('replace');
    report.start();
    report.set('a', { state: 'Failed', message: 'gateway unreachable' });
    report.set('b', { state: 'Applied' });
    await report.flush();
    report.set('a', { state: 'Applied' });
    report.delete('b');
    await report.flush();
    expect((await stored('replace'))?.entries).toEqual({ a: { state: 'Applied' } });
    report.stop();
  });

  it('brings back a report deleted by someone else, and drops entries left over from before a restart', async () => {
    const first = writer('heal');
    first.start();
    first.set('old', { state: 'Applied' });
    await first.flush();
    first.stop();
    // A restart: the new writer never set `old`, so its first write removes it.
    const second = writer('heal');
    second.start();
    second.set('new', { state: 'Applied' });
    await second.flush();
    expect((await stored('heal'))?.entries).toEqual({ new: { state: 'Applied' } });
    await cluster.api.delete(reports, 'heal');
    second.set('newer', { state: 'Applied' });
    await until(async () => Object.keys((await stored('heal'))?.entries ?? {}).length === 2);
    expect((await stored('heal'))?.entries).toEqual({ new: { state: 'Applied' }, newer: { state: 'Applied' } });
    second.stop();
  });

  it('refreshSummary writes a summary that changed without any entry, once, and nothing when it did not', async () => {
    let health = 'Reachable';
    const report = new ReportWriter<Entry>({
      api: cluster.api,
      resource: reports,
      name: 'summary-only',
      entriesField: 'entries',
      summarize: (entries) => ({ count: entries.size, health }),
      template: () => ({ apiVersion: `${GROUP}/v1`, kind: 'Report', metadata: {} }),
      logger,
      minIntervalMs: 100,
      heartbeatMs: 0,
    });
    report.start();
    report.set('x', { state: 'Applied' });
    await report.flush();
    const afterFirst = report.writes;
    report.refreshSummary();
    await report.flush();
    expect(report.writes).toBe(afterFirst);
    health = 'Unreachable';
    report.refreshSummary();
    await report.flush();
    expect(report.writes).toBe(afterFirst + 1);
    expect(((await stored('summary-only')) as { health?: string } | undefined)?.health).toBe('Unreachable');
    report.stop();
  });

  it('the heartbeat repairs an entry someone else edited', async () => {
    const report = writer('edited', { heartbeatMs: 300 });
    report.start();
    report.set('x', { state: 'Applied' });
    await report.flush();
    await cluster.api.patch(reports, 'edited', { status: { entries: { x: { state: 'Forged' } } } }, { type: 'merge' });
    await until(async () => (await stored('edited'))?.entries?.x?.state === 'Applied');
    report.stop();
  });
});

describe('Reconciler', () => {
  it('reconciles every primary object once all sources listed, and again when a mapped secondary changes', async () => {
    await cluster.api.create(things, testObject('Thing', 'thing-1', { watches: 'r1' }));
    await cluster.api.create(things, testObject('Thing', 'thing-2', { watches: 'r2' }));
    const runs: Array<{ key: string; secondary: number }> = [];
    const reconciler = new Reconciler({
      name: 'test',
      primary: { resource: things },
      secondary: {
        reports: {
          resource: reports,
          // A report named r1 concerns the things whose spec.watches is r1.
          map: (change, view) =>
            [...view.primary.values()]
              .filter((thing) => (thing.spec as { watches?: string }).watches === change.object.metadata.name)
              .map((thing) => thing.metadata.name),
        },
      },
      reconcile: async (key: string, context: ReconcileContext) => {
        runs.push({ key, secondary: context.cache('reports').size });
      },
    });
    reconciler.start({ api: cluster.api, logger });
    await until(() => reconciler.isReady());
    expect(runs.map((run) => run.key).sort()).toEqual(['thing-1', 'thing-2']);
    // Complete caches from the first run on.
    const reportCount = (await cluster.api.list(reports)).items.length;
    expect(runs.every((run) => run.secondary === reportCount)).toBe(true);

    runs.length = 0;
    const r1 = writer('r1');
    r1.start();
    r1.set('e', { state: 'Applied' });
    await r1.flush();
    await until(() => runs.some((run) => run.key === 'thing-1'));
    expect(runs.some((run) => run.key === 'thing-2')).toBe(false);
    r1.stop();
    await reconciler.stop();
  });

  it('a watch event that changes nothing the cache keeps triggers no run', async () => {
    const runs: string[] = [];
    const reconciler = new Reconciler({
      name: 'labels-only',
      primary: {
        resource: things,
        // Keep the labels only: a status write then changes nothing the reconciler sees.
        transform: (object) => ({ metadata: { ...object.metadata, annotations: undefined } }) as never,
      },
      reconcile: async (key: string) => {
        runs.push(key);
      },
    });
    await cluster.api.create(things, testObject('Thing', 'quiet', {}));
    reconciler.start({ api: cluster.api, logger });
    await until(() => reconciler.isReady());
    runs.length = 0;
    await cluster.api.patch(things, 'quiet', { status: { noise: 1 } }, { type: 'merge', subresource: 'status' });
    await cluster.api.patch(things, 'quiet', { metadata: { labels: { changed: 'yes' } } }, { type: 'merge' });
    await until(() => runs.includes('quiet'));
    // The label change ran it once; the status write before it did not.
    expect(runs).toEqual(['quiet']);
    await reconciler.stop();
  });

  it('retries a failing key with backoff and honours requeueAfterMs', async () => {
    let attempts = 0;
    let requeued = 0;
    const reconciler = new Reconciler({
      name: 'retry',
      primary: { resource: things, fieldSelector: 'metadata.name=thing-1' },
      backoff: { initialMs: 50, maxMs: 100 },
      reconcile: async (_key: string, context: ReconcileContext) => {
        attempts++;
        if (attempts < 3) throw new Error(`not yet (${context.retries})`);
        requeued++;
        return requeued < 3 ? { requeueAfterMs: 20 } : undefined;
      },
    });
    reconciler.start({ api: cluster.api, logger });
    await until(() => requeued === 3);
    expect(attempts).toBe(5);
    await reconciler.stop();
  });
});
