/**
 * Where the watcher's lists come from, against a real API server: the watch cache (`resourceVersion=0`), also for the
 * relist after the 410 that follows an API server restart (every node relists then: from etcd that is a thundering
 * herd); etcd (a quorum read) only when the cache's answer is older than what the watcher saw, or after a continue
 * token expired.
 *
 * The lists go through the real client; a thin wrapper records their options and, to stand in for a lagging API
 * server behind a load balancer, can answer one cache list with an earlier real answer.
 */
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { forwardingApi, type KubeApi, type KubeList, type KubeObject } from '../../src/kube/types.js';
import { Watcher, type WatcherEvent, type WatchRestartReason } from '../../src/kube/watcher.js';
import { CONFIGMAPS, ensureNamespace, listVersions, waitFor } from './kube-fixtures.js';

/** The options of one list request. */
interface ListCall {
  resourceVersion: string | undefined;
  continue: string | undefined;
}

/** `api`, with its lists recorded; `afterPage` runs after each page the server answered. */
function recording(
  api: KubeApi,
  afterPage?: (page: KubeList) => Promise<void>,
): { api: KubeApi; lists: ListCall[]; answerNextCacheListWith(page: KubeList): void } {
  const lists: ListCall[] = [];
  let replay: KubeList | undefined;
  const wrapped = forwardingApi(api, {
    list: async (ref, options = {}) => {
      lists.push({ resourceVersion: options.resourceVersion, continue: options.continue });
      if (replay && options.resourceVersion === '0') {
        const page = replay;
        replay = undefined;
        return structuredClone(page) as never;
      }
      const page = await api.list(ref, options);
      await afterPage?.(page);
      return page as never;
    },
  });
  return {
    api: wrapped,
    lists,
    answerNextCacheListWith(page) {
      replay = page;
    },
  };
}

/** Starts a watcher and records what it delivers and why it restarted. */
function watch(
  api: KubeApi,
  namespace: string,
  cleanups: (() => Promise<void> | void)[],
  pageSize?: number,
): { watcher: Watcher; events: WatcherEvent<KubeObject>[]; restarts: WatchRestartReason[] } {
  const events: WatcherEvent<KubeObject>[] = [];
  const restarts: WatchRestartReason[] = [];
  const watcher = new Watcher(api, {
    ref: CONFIGMAPS,
    namespace,
    ...(pageSize ? { pageSize } : {}),
    backoff: { initialMs: 20, maxMs: 200 },
    onRestart: (reason) => restarts.push(reason),
  });
  watcher.start((event) => events.push(event));
  cleanups.push(() => watcher.stop());
  return { watcher, events, restarts };
}

const synced = (events: WatcherEvent<KubeObject>[]): number => events.filter((e) => e.type === 'synced').length;
const storeVersions = (watcher: Watcher): Map<string, string> =>
  new Map([...watcher.store.values()].map((o) => [o.metadata.name, o.metadata.resourceVersion]));

describe('Watcher lists with the watch cache on', () => {
  let cp: ControlPlane;
  let api: KubeClient;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    cp = await startControlPlane();
    api = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    api?.close();
    await cp?.stop();
  });

  it('relists from the watch cache after the 410 that follows an API server restart, and misses nothing', async () => {
    await ensureNamespace(cp, 'restart-relist');
    for (const name of ['a', 'b', 'c']) await api.create(CONFIGMAPS, { metadata: { name } }, 'restart-relist');
    const recorded = recording(api);
    const { watcher, events, restarts } = watch(recorded.api, 'restart-relist', cleanups);
    await waitFor(() => watcher.synced, 'sync');

    await cp.restartApiServer({ expireWatches: true });
    await api.patch(CONFIGMAPS, 'a', { data: { v: '1' } }, { namespace: 'restart-relist' });
    await api.delete(CONFIGMAPS, 'b', 'restart-relist');
    const fresh = await listVersions(api, CONFIGMAPS, 'restart-relist');
    await waitFor(() => restarts.includes('gone') && synced(events) === 2, 'the relist after 410');
    const same = (): boolean =>
      JSON.stringify([...storeVersions(watcher)].sort()) === JSON.stringify([...fresh].sort());
    await waitFor(same, 'the store to catch up');
    expect(storeVersions(watcher)).toEqual(fresh);

    expect(recorded.lists.length).toBeGreaterThanOrEqual(2);
    expect(recorded.lists.map((call) => call.resourceVersion)).toEqual(recorded.lists.map(() => '0'));
    const deletes = events.filter((e): e is { type: 'delete'; object: KubeObject } => e.type === 'delete');
    expect(deletes.map((e) => e.object.metadata.name)).toEqual(['b']);
  });

  it('does not apply a cache list older than what the watch saw, and lists from etcd instead', async () => {
    await ensureNamespace(cp, 'lagging');
    await api.create(CONFIGMAPS, { metadata: { name: 'a' }, data: { v: '0' } }, 'lagging');
    await api.create(CONFIGMAPS, { metadata: { name: 'b' } }, 'lagging');
    const recorded = recording(api);
    const { watcher, events, restarts } = watch(recorded.api, 'lagging', cleanups);
    await waitFor(() => watcher.synced, 'sync');

    // What a lagging API server would still answer a moment later: the state before `c` and the change of `a`.
    const lagging = await api.list(CONFIGMAPS, { namespace: 'lagging', resourceVersion: '0' });
    const c = await api.create(CONFIGMAPS, { metadata: { name: 'c' } }, 'lagging');
    const a = await api.patch(CONFIGMAPS, 'a', { data: { v: '1' } }, { namespace: 'lagging' });
    await waitFor(
      () =>
        watcher.store.get('lagging/c')?.metadata.uid === c.metadata.uid &&
        watcher.store.get('lagging/a')?.metadata.resourceVersion === a.metadata.resourceVersion,
      'the watch to deliver c and the change of a',
    );
    const afterWatch = events.length;
    const listsBefore = recorded.lists.length;
    recorded.answerNextCacheListWith(lagging);

    await cp.restartApiServer({ expireWatches: true });
    await waitFor(() => synced(events) === 2, 'the relist after 410');
    expect(restarts).toContain('gone');
    expect(restarts).toContain('stale-list');
    // The cache's answer first (the lagging one), then etcd until a list is applied.
    const relists = recorded.lists.slice(listsBefore).map((call) => call.resourceVersion);
    expect(relists[0]).toBe('0');
    expect(relists.slice(1).length).toBeGreaterThan(0);
    expect(relists.slice(1).every((version) => version === undefined)).toBe(true);
    // Nothing deleted, nothing older than what was delivered before.
    const later = events.slice(afterWatch);
    expect(later.filter((e) => e.type === 'delete')).toEqual([]);
    expect(later.filter((e) => e.type === 'upsert')).toEqual([]);
    expect(storeVersions(watcher)).toEqual(await listVersions(api, CONFIGMAPS, 'lagging'));
  });
});

describe('Watcher lists with the watch cache off', () => {
  let cp: ControlPlane;
  let api: KubeClient;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    cp = await startControlPlane({ watchCache: false });
    api = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    api?.close();
    await cp?.stop();
  });

  it('restarts a list whose continue token expired as a quorum read', async () => {
    await ensureNamespace(cp, 'expiring');
    for (let i = 0; i < 12; i += 1) await api.create(CONFIGMAPS, { metadata: { name: `p-${i}` } }, 'expiring');
    let compacted = false;
    const recorded = recording(api, async (page) => {
      if (compacted || !page.metadata.continue) return;
      compacted = true;
      // Between two pages: a write, then a compaction past the first page's version expires its continue token.
      await api.create(CONFIGMAPS, { metadata: { name: 'between-pages' } }, 'expiring');
      await cp.compactEtcd();
    });
    const { watcher, restarts } = watch(recorded.api, 'expiring', cleanups, 5);
    await waitFor(() => watcher.synced, 'sync');
    expect(restarts).toContain('list-expired');
    const [first, second, restart] = recorded.lists;
    expect(first).toEqual({ resourceVersion: '0', continue: undefined });
    expect(second?.continue).toBeDefined();
    expect(restart).toEqual({ resourceVersion: undefined, continue: undefined });
    expect(watcher.store.size).toBe(13);
  });
});
