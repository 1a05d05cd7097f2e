import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { forwardingApi, type KubeObject, type ListOptions, type WatchEvent } from '../../src/kube/types.js';
import { Watcher, type WatcherEvent, type WatchRestartReason } from '../../src/kube/watcher.js';
import { CONFIGMAPS, TcpProxy, ensureNamespace, listVersions, waitFor } from './kube-fixtures.js';

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

/** Starts a watcher and records what it delivers and why it restarted. */
function startWatcher(
  client: KubeClient,
  options: Partial<ConstructorParameters<typeof Watcher>[1]> & { namespace: string },
): { watcher: Watcher; events: WatcherEvent<KubeObject>[]; restarts: WatchRestartReason[] } {
  const events: WatcherEvent<KubeObject>[] = [];
  const restarts: WatchRestartReason[] = [];
  const watcher = new Watcher(client, {
    ref: CONFIGMAPS,
    backoff: { initialMs: 20, maxMs: 200 },
    onRestart: (reason) => restarts.push(reason),
    ...options,
  });
  watcher.start((event) => events.push(event));
  cleanups.push(() => watcher.stop());
  return { watcher, events, restarts };
}

const describeEvent = (e: WatcherEvent<KubeObject>): string =>
  e.type === 'synced' ? 'synced' : `${e.type}:${e.object.metadata.name}@${e.object.metadata.resourceVersion}`;

describe('KubeApi.watch (one stream)', () => {
  it('delivers ADDED, MODIFIED and DELETED in order, then ends at the server timeout', async () => {
    await ensureNamespace(cp, 'raw-watch');
    const start = await api.list(CONFIGMAPS, { namespace: 'raw-watch' });
    const seen: string[] = [];
    const ended = api.watch(
      CONFIGMAPS,
      { namespace: 'raw-watch', resourceVersion: start.metadata.resourceVersion, timeoutSeconds: 3 },
      (event: WatchEvent) => seen.push(`${event.type}:${event.object.metadata.name}`),
      new AbortController().signal,
    );
    await api.create(CONFIGMAPS, { metadata: { name: 'r1' }, data: { a: '1' } }, 'raw-watch');
    await api.patch(CONFIGMAPS, 'r1', { data: { a: '2' } }, { namespace: 'raw-watch' });
    await api.delete(CONFIGMAPS, 'r1', 'raw-watch');
    await ended; // resolves (does not reject) when the server closes the stream normally
    expect(seen).toEqual(['ADDED:r1', 'MODIFIED:r1', 'DELETED:r1']);
  });

  it('rejects when aborted', async () => {
    const controller = new AbortController();
    const start = await api.list(CONFIGMAPS, { namespace: 'default' });
    const watching = api.watch(
      CONFIGMAPS,
      { namespace: 'default', resourceVersion: start.metadata.resourceVersion },
      () => undefined,
      controller.signal,
    );
    controller.abort(new Error('test abort'));
    await expect(watching).rejects.toThrow('test abort');
  });
});

describe('Watcher', () => {
  it('lists, reports synced, then delivers upserts and deletes in order with a consistent store', async () => {
    await ensureNamespace(cp, 'order');
    await api.create(CONFIGMAPS, { metadata: { name: 'pre' } }, 'order');
    const { watcher, events } = startWatcher(api, { namespace: 'order' });
    await waitFor(() => watcher.synced, 'initial sync');
    expect(events.map((e) => e.type)).toEqual(['upsert', 'synced']);
    expect(watcher.state).toBe('watching');

    const a1 = await api.create(CONFIGMAPS, { metadata: { name: 'a' }, data: { v: '1' } }, 'order');
    const a2 = await api.patch(CONFIGMAPS, 'a', { data: { v: '2' } }, { namespace: 'order' });
    const a3 = await api.patch(CONFIGMAPS, 'a', { data: { v: '3' } }, { namespace: 'order' });
    await api.delete(CONFIGMAPS, 'a', 'order');
    await api.delete(CONFIGMAPS, 'pre', 'order');
    await waitFor(() => events.filter((e) => e.type === 'delete').length === 2, 'both deletes');

    const rv = (o: KubeObject): string => o.metadata.resourceVersion;
    expect(events.slice(2).map(describeEvent).slice(0, 3)).toEqual([
      `upsert:a@${rv(a1)}`,
      `upsert:a@${rv(a2)}`,
      `upsert:a@${rv(a3)}`,
    ]);
    expect(events.slice(5).map((e) => (e.type === 'synced' ? e.type : `${e.type}:${e.object.metadata.name}`))).toEqual([
      'delete:a',
      'delete:pre',
    ]);
    expect(watcher.store.size).toBe(0);
    // Watch events carry type metadata; list items were given the same.
    const first = events[0] as { object: KubeObject };
    expect([first.object.apiVersion, first.object.kind]).toEqual(['v1', 'ConfigMap']);
  });

  it('reads the initial state from the watch cache, in one answer whatever the page size', async () => {
    await ensureNamespace(cp, 'paged');
    for (let i = 0; i < 23; i += 1) await api.create(CONFIGMAPS, { metadata: { name: `cm-${i}` } }, 'paged');
    const lists: ListOptions[] = [];
    const recording = forwardingApi(api, {
      list: (ref, options = {}) => {
        lists.push(options);
        return api.list(ref, options);
      },
    });
    const events: WatcherEvent<KubeObject>[] = [];
    const watcher = new Watcher(recording, { ref: CONFIGMAPS, namespace: 'paged', pageSize: 10 });
    watcher.start((event) => events.push(event));
    cleanups.push(() => watcher.stop());
    await waitFor(() => watcher.synced, 'sync');
    // resourceVersion 0: any version the API server has cached, which costs etcd nothing; the cache ignores limits.
    expect(lists.map((options) => [options.resourceVersion, options.limit])).toEqual([['0', 10]]);
    expect(watcher.store.size).toBe(23);
    expect(events.filter((e) => e.type === 'upsert')).toHaveLength(23);
    expect(events.at(-1)?.type).toBe('synced');
  });

  it('resumes after the server timeout from the last resourceVersion, advanced by bookmarks, without relisting', async () => {
    await ensureNamespace(cp, 'bookmarks');
    const verbs: string[] = [];
    const counting = createKubeApi({
      credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken },
      onRequest: (verb) => verbs.push(verb),
    });
    cleanups.push(() => counting.close());
    // A selector no object matches: the stream itself stays empty, only bookmarks can move the resourceVersion.
    const { watcher, events, restarts } = startWatcher(counting, {
      namespace: 'bookmarks',
      labelSelector: 'never=matches',
      timeoutSeconds: 4,
    });
    await waitFor(() => watcher.synced, 'sync');
    const listed = BigInt(watcher.resourceVersion);
    // Changes elsewhere advance the global resourceVersion that bookmarks report.
    const writer = setInterval(() => {
      void api.create(CONFIGMAPS, { metadata: { generateName: 'bump-' } }, 'bookmarks').catch(() => undefined);
    }, 200);
    try {
      await waitFor(() => restarts.includes('stream-ended'), 'server timeout', 30_000);
    } finally {
      clearInterval(writer);
    }
    expect(BigInt(watcher.resourceVersion)).toBeGreaterThan(listed);
    expect(events.map((e) => e.type)).toEqual(['synced']);
    // It resumed with a new watch, not a new list.
    await waitFor(() => verbs.filter((v) => v === 'watch').length >= 2, 'second watch');
    expect(verbs.filter((v) => v === 'list')).toHaveLength(1);
  });

  it('restarts a stalled stream when the inactivity watchdog fires, and misses nothing', async () => {
    await ensureNamespace(cp, 'stall');
    const proxy = await TcpProxy.start(cp.server);
    cleanups.push(() => proxy.stop());
    const viaProxy = createKubeApi({ credentials: { server: proxy.url, ca: cp.caPem, token: cp.adminToken } });
    cleanups.push(() => viaProxy.close());
    const { watcher, events, restarts } = startWatcher(viaProxy, {
      namespace: 'stall',
      timeoutSeconds: 300,
      inactivityTimeoutMs: 1500,
    });
    await waitFor(() => watcher.synced, 'sync');
    await waitFor(() => watcher.state === 'watching', 'watching');
    // The network goes quiet without an error: without the watchdog this stream would wait forever.
    expect(proxy.stallExisting()).toBeGreaterThan(0);
    const created = await api.create(CONFIGMAPS, { metadata: { name: 'during-stall' } }, 'stall');
    await waitFor(
      () => events.some((e) => e.type === 'upsert' && e.object.metadata.uid === created.metadata.uid),
      'the object created during the stall',
    );
    expect(restarts).toContain('inactivity');
    expect(restarts).not.toContain('gone');
  });

  it('ends streams after 70 to 90 s by default, so that the watchdog finds a half-open stream within 2 minutes', () => {
    const at = (random: number): number => new Watcher(api, { ref: CONFIGMAPS, random: () => random }).watchdogMs;
    // The watchdog is the stream's server-side timeout (spread between watchers) plus 30 s.
    expect([at(0), at(0.5), at(0.999)]).toEqual([100_000, 110_000, 119_000]);
    expect(new Watcher(api, { ref: CONFIGMAPS, timeoutSeconds: 300 }).watchdogMs).toBe(330_000);
    expect(new Watcher(api, { ref: CONFIGMAPS, inactivityTimeoutMs: 5_000 }).watchdogMs).toBe(5_000);
  });

  it('reconnects after connections are reset and refused, without losing or repeating changes', async () => {
    await ensureNamespace(cp, 'resets');
    const proxy = await TcpProxy.start(cp.server);
    cleanups.push(() => proxy.stop());
    const viaProxy = createKubeApi({ credentials: { server: proxy.url, ca: cp.caPem, token: cp.adminToken } });
    cleanups.push(() => viaProxy.close());
    const { watcher, events, restarts } = startWatcher(viaProxy, { namespace: 'resets' });
    await waitFor(() => watcher.synced, 'sync');
    await api.create(CONFIGMAPS, { metadata: { name: 'x' }, data: { v: '0' } }, 'resets');
    await waitFor(() => watcher.store.has('resets/x'), 'x seen');
    proxy.refuse(true);
    proxy.cutAll();
    await waitFor(() => restarts.includes('connection-error'), 'connection error noticed');
    for (let i = 1; i <= 3; i += 1)
      await api.patch(CONFIGMAPS, 'x', { data: { v: String(i) } }, { namespace: 'resets' });
    proxy.refuse(false);
    const fresh = await listVersions(api, CONFIGMAPS, 'resets');
    await waitFor(() => watcher.store.get('resets/x')?.metadata.resourceVersion === fresh.get('x'), 'caught up');
    const versions = events
      .filter((e) => e.type === 'upsert')
      .map((e) => (e as { object: KubeObject }).object.metadata.resourceVersion);
    expect(new Set(versions).size).toBe(versions.length);
    expect(watcher.restarts).toBeGreaterThan(0);
  });

  it('survives an API server restart while objects change: final store equals a fresh list, each object’s updates in order, no duplicates', async () => {
    await ensureNamespace(cp, 'restart');
    const names = ['o1', 'o2', 'o3', 'o4'];
    for (const name of names) await api.create(CONFIGMAPS, { metadata: { name }, data: { v: '0' } }, 'restart');
    const { watcher, events, restarts } = startWatcher(api, { namespace: 'restart' });
    await waitFor(() => watcher.synced, 'sync');

    // The writer retries through the outage; merge patches are idempotent, so a retried write changes nothing twice.
    const writer = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
    cleanups.push(() => writer.close());
    const written = new Map<string, Set<string>>(names.map((name) => [name, new Set<string>()]));
    const write = async (name: string, v: number): Promise<void> => {
      for (;;) {
        try {
          const result = await writer.patch(CONFIGMAPS, name, { data: { v: String(v) } }, { namespace: 'restart' });
          written.get(name)!.add(result.metadata.resourceVersion);
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const writes = (async () => {
      for (let v = 1; v <= 40; v += 1) for (const name of names) await write(name, v);
    })();
    await waitFor(() => events.length > 20, 'some updates before the restart');
    await cp.restartApiServer();
    await writes;

    const fresh = await listVersions(api, CONFIGMAPS, 'restart');
    await waitFor(
      () => names.every((name) => watcher.store.get(`restart/${name}`)?.metadata.resourceVersion === fresh.get(name)),
      'store equal to a fresh list',
    );
    expect(new Map([...watcher.store.values()].map((o) => [o.metadata.name, o.metadata.resourceVersion]))).toEqual(
      fresh,
    );
    for (const name of names) {
      const seen = events
        .filter(
          (e): e is { type: 'upsert'; object: KubeObject } => e.type === 'upsert' && e.object.metadata.name === name,
        )
        .map((e) => BigInt(e.object.metadata.resourceVersion));
      for (let i = 1; i < seen.length; i += 1) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
      expect(watcher.store.get(`restart/${name}`)?.data).toEqual({ v: '40' });
      // Resuming from the last resourceVersion replays everything; only a relist (410) may legitimately skip
      // intermediate versions, never the latest.
      if (!restarts.includes('gone')) {
        const delivered = new Set(seen.map(String));
        for (const version of written.get(name)!) expect(delivered.has(version)).toBe(true);
      }
    }
    expect(events.some((e) => e.type === 'delete')).toBe(false);
    expect(restarts.length).toBeGreaterThan(0);
    expect(restarts.every((r) => r !== 'stream-ended')).toBe(true);
  });

  it('stops while a list hangs on a black-holed API server', async () => {
    const proxy = await TcpProxy.start(cp.server);
    cleanups.push(() => proxy.stop());
    proxy.stallNew(true);
    // No request timeout to save the day: only stop() can end this list.
    const hanging = createKubeApi({
      credentials: { server: proxy.url, ca: cp.caPem, token: cp.adminToken },
      requestTimeoutMs: 3_600_000,
    });
    cleanups.push(() => hanging.close());
    const events: WatcherEvent<KubeObject>[] = [];
    const watcher = new Watcher(hanging, { ref: CONFIGMAPS, namespace: 'default' });
    watcher.start((event) => events.push(event));
    await waitFor(() => proxy.connections > 0, 'the list to connect');
    expect(watcher.state).toBe('listing');
    await watcher.stop();
    expect(watcher.state).toBe('stopped');
    expect(events).toEqual([]);
  });

  it('stops: no more events, state stopped, and stop() is idempotent', async () => {
    await ensureNamespace(cp, 'stopping');
    const { watcher, events } = startWatcher(api, { namespace: 'stopping' });
    await waitFor(() => watcher.synced, 'sync');
    await watcher.stop();
    expect(watcher.state).toBe('stopped');
    expect(watcher.healthy()).toBe(false);
    const count = events.length;
    await api.create(CONFIGMAPS, { metadata: { name: 'after-stop' } }, 'stopping');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.length).toBe(count);
    await watcher.stop();
  });
});
