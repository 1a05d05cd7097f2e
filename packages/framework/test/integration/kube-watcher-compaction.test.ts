/**
 * 410 Gone against a real etcd compaction. The API server runs without its watch cache here, so watches and list
 * pages are served by etcd directly and a compacted resourceVersion is really gone (with the cache, recent history
 * outlives compaction in memory and the server would not answer 410).
 */
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import type { KubeObject } from '../../src/kube/types.js';
import { ApiError, forwardingApi } from '../../src/kube/types.js';
import { Watcher, isGone, type WatcherEvent, type WatchRestartReason } from '../../src/kube/watcher.js';
import { CONFIGMAPS, TcpProxy, ensureNamespace, listVersions, waitFor } from './kube-fixtures.js';

let cp: ControlPlane;
let api: KubeClient;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  cp = await startControlPlane({ extraApiServerFlags: ['--watch-cache=false'] });
  api = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  api?.close();
  await cp?.stop();
});

describe('Watcher after etcd compaction', () => {
  it('answers 410 on a watch from a compacted resourceVersion (the premise)', async () => {
    await ensureNamespace(cp, 'premise');
    const old = (await api.list(CONFIGMAPS, { namespace: 'premise' })).metadata.resourceVersion;
    // A watch from X starts at revision X+1, so two writes are needed before X+1 can be compacted away.
    await api.create(CONFIGMAPS, { metadata: { name: 'bump-1' } }, 'premise');
    await api.create(CONFIGMAPS, { metadata: { name: 'bump-2' } }, 'premise');
    await cp.compactEtcd();
    const err = await api
      .watch(
        CONFIGMAPS,
        { namespace: 'premise', resourceVersion: old, timeoutSeconds: 5 },
        (event) => {
          if (event.type === 'ERROR')
            throw new ApiError((event.object as unknown as { code: number }).code, 'watch error');
        },
        new AbortController().signal,
      )
      .catch((e: unknown) => e);
    expect(isGone(err)).toBe(true);
  });

  it('relists after 410 and emits a delete for an object deleted while disconnected, and upserts for the rest', async () => {
    await ensureNamespace(cp, 'gone');
    await api.create(CONFIGMAPS, { metadata: { name: 'stays' }, data: { v: '1' } }, 'gone');
    await api.create(CONFIGMAPS, { metadata: { name: 'changes' }, data: { v: '1' } }, 'gone');
    const doomed = await api.create(CONFIGMAPS, { metadata: { name: 'doomed' } }, 'gone');
    const proxy = await TcpProxy.start(cp.server);
    cleanups.push(() => proxy.stop());
    const viaProxy = createKubeApi({ credentials: { server: proxy.url, ca: cp.caPem, token: cp.adminToken } });
    cleanups.push(() => viaProxy.close());
    const events: WatcherEvent<KubeObject>[] = [];
    const restarts: WatchRestartReason[] = [];
    const watcher = new Watcher(viaProxy, {
      ref: CONFIGMAPS,
      namespace: 'gone',
      backoff: { initialMs: 20, maxMs: 100 },
      onRestart: (reason) => restarts.push(reason),
    });
    watcher.start((event) => events.push(event));
    cleanups.push(() => watcher.stop());
    await waitFor(() => watcher.synced, 'sync');
    const syncedBefore = events.filter((e) => e.type === 'synced').length;

    // Disconnect; while away: delete one, change one, create one, then compact the history away.
    proxy.refuse(true);
    proxy.cutAll();
    await waitFor(() => restarts.includes('connection-error'), 'disconnect noticed');
    await api.delete(CONFIGMAPS, 'doomed', 'gone');
    const changed = await api.patch(CONFIGMAPS, 'changes', { data: { v: '2' } }, { namespace: 'gone' });
    const born = await api.create(CONFIGMAPS, { metadata: { name: 'born' } }, 'gone');
    await cp.compactEtcd();
    proxy.refuse(false);

    await waitFor(() => events.filter((e) => e.type === 'synced').length > syncedBefore, 'relist');
    expect(restarts).toContain('gone');
    const afterRelist = events.slice(events.findIndex((e) => e.type === 'synced') + 1);
    const deletes = afterRelist.filter((e): e is { type: 'delete'; object: KubeObject } => e.type === 'delete');
    expect(deletes.map((e) => e.object.metadata.uid)).toEqual([doomed.metadata.uid]);
    const upserts = afterRelist.filter((e): e is { type: 'upsert'; object: KubeObject } => e.type === 'upsert');
    expect(upserts.map((e) => `${e.object.metadata.name}@${e.object.metadata.resourceVersion}`).sort()).toEqual(
      [`born@${born.metadata.resourceVersion}`, `changes@${changed.metadata.resourceVersion}`].sort(),
    );
    // Deletes come before upserts, and 'synced' closes the relist.
    expect(afterRelist.map((e) => e.type)).toEqual(['delete', 'upsert', 'upsert', 'synced']);
    expect(new Map([...watcher.store.values()].map((o) => [o.metadata.name, o.metadata.resourceVersion]))).toEqual(
      await listVersions(api, CONFIGMAPS, 'gone'),
    );

    // And it keeps watching from the relist's resourceVersion.
    const later = await api.create(CONFIGMAPS, { metadata: { name: 'later' } }, 'gone');
    await waitFor(() => watcher.store.get('gone/later')?.metadata.uid === later.metadata.uid, 'watching again');
  });

  it('restarts a paginated list whose continue token expired', async () => {
    await ensureNamespace(cp, 'continue');
    for (let i = 0; i < 12; i += 1) await api.create(CONFIGMAPS, { metadata: { name: `p-${i}` } }, 'continue');
    // The real API, with a compaction between the first page and the next: the continue token then points at a
    // compacted revision.
    let compacted = false;
    const compactingApi = forwardingApi(api, {
      list: async (ref, options) => {
        const page = await api.list(ref, options);
        if (!compacted && page.metadata.continue) {
          compacted = true;
          await api.create(CONFIGMAPS, { metadata: { name: 'written-between-pages' } }, 'continue');
          await cp.compactEtcd();
        }
        return page as never;
      },
    });
    const expired = await api
      .list(CONFIGMAPS, { namespace: 'continue', limit: 5 })
      .then(async (first) => {
        await api.create(CONFIGMAPS, { metadata: { generateName: 'bump-' } }, 'default');
        await cp.compactEtcd();
        return api.list(CONFIGMAPS, { namespace: 'continue', limit: 5, continue: first.metadata.continue });
      })
      .catch((e: unknown) => e);
    expect(isGone(expired)).toBe(true); // the premise: an expired continue token is a 410

    const events: WatcherEvent<KubeObject>[] = [];
    const restarts: WatchRestartReason[] = [];
    const watcher = new Watcher(compactingApi, {
      ref: CONFIGMAPS,
      namespace: 'continue',
      pageSize: 5,
      onRestart: (reason) => restarts.push(reason),
    });
    watcher.start((event) => events.push(event));
    cleanups.push(() => watcher.stop());
    await waitFor(() => watcher.synced, 'sync');
    expect(restarts).toEqual(['list-expired']);
    expect(watcher.store.size).toBe(13);
    // The abandoned first page delivered nothing: each object arrives once.
    expect(events.filter((e) => e.type === 'upsert')).toHaveLength(13);
  });
});
