/**
 * The watch cache transform against a real API server: the default drops `metadata.managedFields` from every listed
 * and watched object (store, events, handlers, `ctx.cache`), a custom transform (Watcher option, `@Operator`
 * `cacheTransform`) replaces it, a transform that breaks an object's identity is refused, and the framework's own
 * writes (finalizer, diff-base, status) work on stripped objects.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnEvent, OnUpdate, Operator, type EventContext, type HandlerContext } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { Watcher, type WatcherEvent, type WatcherOptions } from '../../src/kube/watcher.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';
import { CONFIGMAPS, ensureNamespace } from './kube-fixtures.js';

let cluster: TestCluster;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  cluster = await startCluster();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await cluster?.stop();
});

const hasManagedFields = (object: KubeObject | undefined): boolean =>
  Array.isArray(object?.metadata.managedFields) && object.metadata.managedFields.length > 0;

/** Starts a watcher of ConfigMaps in `namespace` that records what it delivers. */
function watchConfigMaps(
  namespace: string,
  options: Partial<WatcherOptions> = {},
): { watcher: Watcher; events: WatcherEvent<KubeObject>[] } {
  const events: WatcherEvent<KubeObject>[] = [];
  const watcher = new Watcher(cluster.api, { ref: CONFIGMAPS, namespace, ...options });
  watcher.start((event) => events.push(event));
  cleanups.push(() => watcher.stop());
  return { watcher, events };
}

/** Object events for `name`, in order. */
const eventsFor = (events: WatcherEvent<KubeObject>[], name: string) =>
  events.filter(
    (event): event is Exclude<WatcherEvent<KubeObject>, { type: 'synced' }> =>
      event.type !== 'synced' && event.object.metadata.name === name,
  );

const configMap = (name: string) => ({
  metadata: { name, labels: { tier: 'cache' }, annotations: { 'example.com/note': name } },
  data: { key: `value-of-${name}` },
});

describe('Watcher cache transform', () => {
  test('by default, listed and watched objects are stored and delivered without managedFields', async () => {
    await ensureNamespace(cluster.cp, 'strip-default');
    await cluster.api.create(CONFIGMAPS, configMap('listed'), 'strip-default');
    // The server does keep managedFields: the test is only meaningful if there is something to strip.
    expect(hasManagedFields(await cluster.api.get(CONFIGMAPS, 'listed', 'strip-default'))).toBe(true);

    const { watcher, events } = watchConfigMaps('strip-default');
    await waitFor(() => watcher.synced);
    await cluster.api.create(CONFIGMAPS, configMap('watched'), 'strip-default');
    await cluster.api.patch(CONFIGMAPS, 'watched', { data: { key: 'changed' } }, { namespace: 'strip-default' });
    await waitFor(
      () => watcher.store.get('strip-default/watched')?.data !== undefined && eventsFor(events, 'watched').length === 2,
    );
    await cluster.api.delete(CONFIGMAPS, 'watched', 'strip-default');
    await waitFor(() => eventsFor(events, 'watched').some((event) => event.type === 'delete'));

    // List path.
    const listed = watcher.store.get('strip-default/listed');
    expect(hasManagedFields(listed)).toBe(false);
    expect(listed?.metadata).not.toHaveProperty('managedFields');
    expect(listed).toMatchObject(configMap('listed'));
    expect(listed?.metadata.uid).toBeTruthy();
    expect(eventsFor(events, 'listed').map((event) => event.object)).toEqual([listed]);
    // Watch path: ADDED, MODIFIED and DELETED.
    const watched = eventsFor(events, 'watched');
    expect(watched.map((event) => event.type)).toEqual(['upsert', 'upsert', 'delete']);
    for (const event of watched) {
      expect(event.object.metadata).not.toHaveProperty('managedFields');
      expect(event.object.metadata.labels).toEqual({ tier: 'cache' });
      expect(event.object.metadata.annotations).toEqual({ 'example.com/note': 'watched' });
    }
    expect(watched[1]?.object.data).toEqual({ key: 'changed' });
  });

  test('a custom transform replaces the default on both paths', async () => {
    await ensureNamespace(cluster.cp, 'strip-custom');
    await cluster.api.create(CONFIGMAPS, configMap('listed'), 'strip-custom');
    // Drops the data and keeps managedFields: proves it runs instead of the default.
    const { watcher, events } = watchConfigMaps('strip-custom', {
      transform: ({ data: _data, ...rest }) => rest as KubeObject,
    });
    await waitFor(() => watcher.synced);
    await cluster.api.create(CONFIGMAPS, configMap('watched'), 'strip-custom');
    await waitFor(() => watcher.store.has('strip-custom/watched'));

    for (const name of ['listed', 'watched']) {
      const cached = watcher.store.get(`strip-custom/${name}`);
      expect(cached).not.toHaveProperty('data');
      expect(hasManagedFields(cached)).toBe(true);
      expect(cached?.metadata.labels).toEqual({ tier: 'cache' });
      expect(eventsFor(events, name).map((event) => event.object)).toEqual([cached]);
    }
  });

  test('a transform that changes an object identity is refused: the object is cached as received', async () => {
    await ensureNamespace(cluster.cp, 'strip-broken');
    await cluster.api.create(CONFIGMAPS, configMap('listed'), 'strip-broken');
    const { watcher } = watchConfigMaps('strip-broken', {
      transform: (object) => ({ ...object, metadata: { ...object.metadata, resourceVersion: '1' } }),
    });
    await waitFor(() => watcher.synced);
    await cluster.api.create(CONFIGMAPS, configMap('watched'), 'strip-broken');
    await waitFor(() => watcher.store.has('strip-broken/watched'));

    for (const name of ['listed', 'watched']) {
      const cached = watcher.store.get(`strip-broken/${name}`);
      const server = await cluster.api.get(CONFIGMAPS, name, 'strip-broken');
      expect(cached?.metadata.resourceVersion).toBe(server.metadata.resourceVersion);
      expect(hasManagedFields(cached)).toBe(true);
    }
  });
});

interface Spec {
  size?: number;
}

/** What the handlers saw, per operator and object name. */
const seen = new Map<
  string,
  {
    created?: KubeObject;
    cachedAtCreate?: KubeObject;
    updated?: KubeObject;
    deleted?: KubeObject;
    events: KubeObject[];
  }
>();
function record(operator: string, name: string): NonNullable<ReturnType<typeof seen.get>> {
  const key = `${operator}/${name}`;
  let entry = seen.get(key);
  if (!entry) seen.set(key, (entry = { events: [] }));
  return entry;
}

@Operator({ group: GROUP, version: 'v1', plural: 'slimwidgets', kind: 'Slimwidget' })
class SlimOperator {
  @OnCreate()
  created(ctx: HandlerContext<Spec>): void {
    record('slim', ctx.name).created = ctx.body;
    record('slim', ctx.name).cachedAtCreate = ctx.cache.get(ctx.name);
  }

  @OnUpdate()
  updated(ctx: HandlerContext<Spec>): void {
    record('slim', ctx.name).updated = ctx.body;
  }

  // Makes the framework hold a finalizer: its guarded patches are built from the stripped cache copies.
  @OnDelete()
  deleted(ctx: HandlerContext<Spec>): void {
    record('slim', ctx.name).deleted = ctx.body;
  }

  @OnEvent()
  observed(ctx: EventContext): void {
    record('slim', ctx.name).events.push(ctx.body);
  }
}

/** kubectl's copy of the applied manifest: not part of the essence, so a transform may drop it. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Keeps managedFields (replacing the default) and drops the last-applied annotation. */
@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'customwidgets',
  kind: 'Customwidget',
  cacheTransform: (object) => {
    const { [LAST_APPLIED]: _lastApplied, ...annotations } = object.metadata.annotations ?? {};
    return { ...object, metadata: { ...object.metadata, annotations } };
  },
})
class CustomOperator {
  @OnCreate()
  created(ctx: HandlerContext<Spec>): void {
    record('custom', ctx.name).cachedAtCreate = ctx.cache.get(ctx.name);
  }

  @OnUpdate()
  updated(ctx: HandlerContext<Spec>): void {
    record('custom', ctx.name).updated = ctx.body;
  }

  @OnEvent()
  observed(ctx: EventContext): void {
    record('custom', ctx.name).events.push(ctx.body);
  }
}

describe('operator cache transform', () => {
  let slimRef: ResourceRef;
  let customRef: ResourceRef;
  let operator: OperatorHandle | undefined;

  const withStatus = async (ref: ResourceRef, kind: string, name: string): Promise<void> => {
    await cluster.api.create(
      ref,
      testObject(
        kind,
        name,
        { size: 1 },
        {
          labels: { app: 'demo' },
          annotations: { 'example.com/note': 'n', [LAST_APPLIED]: JSON.stringify({ spec: { size: 1 } }) },
        },
      ),
    );
    await cluster.api.patch(ref, name, { status: { phase: 'Provisioned' } }, { subresource: 'status' });
  };
  /** Handled: the diff-base is on the object (no delete handlers here, so no finalizer). */
  const handled = async (ref: ResourceRef, name: string): Promise<KubeObject> => {
    const object = await cluster.api.get<KubeObject>(ref, name);
    if (object.metadata.annotations?.['opkit.dev/last-handled-configuration'] === undefined) {
      throw new Error(`${name} not handled yet`);
    }
    return object;
  };

  beforeAll(async () => {
    slimRef = await cluster.installCrd('slimwidgets', 'Slimwidget');
    customRef = await cluster.installCrd('customwidgets', 'Customwidget');
    // Before the operator starts: these come through the initial list.
    await withStatus(slimRef, 'Slimwidget', 'listed');
    await withStatus(customRef, 'Customwidget', 'listed');
    operator = await startOperator({ classes: [SlimOperator, CustomOperator], kubeconfigPath: cluster.kubeconfigPath });
    // After: through the watch.
    await withStatus(slimRef, 'Slimwidget', 'watched');
    await withStatus(customRef, 'Customwidget', 'watched');
  });
  afterAll(async () => {
    await operator?.stop();
  });

  test('by default handlers and the cache see no managedFields, and labels, annotations, spec and status', async () => {
    for (const name of ['listed', 'watched']) {
      const server = await waitFor(() => handled(slimRef, name));
      expect(hasManagedFields(server)).toBe(true);
      // The finalizer went on through a guarded JSON patch built from the stripped copy.
      expect(server.metadata.finalizers).toEqual(['opkit.dev/finalizer']);
      const entry = await waitFor(() => {
        const current = record('slim', name);
        return current.created && current.events.some((body) => body.status !== undefined) && current;
      });
      const cached = entry.cachedAtCreate;
      expect(cached).toBeDefined();
      expect(cached?.metadata).not.toHaveProperty('managedFields');
      // The create handler got the response of the patch that added the finalizer: transformed like the cache.
      expect(entry.created?.metadata.finalizers).toEqual(['opkit.dev/finalizer']);
      expect(entry.created?.metadata).not.toHaveProperty('managedFields');
      for (const body of [cached, entry.created, ...entry.events]) {
        expect(body?.metadata.labels).toEqual({ app: 'demo' });
        expect(body?.metadata.annotations).toMatchObject({
          'example.com/note': 'n',
          [LAST_APPLIED]: expect.any(String),
        });
        expect(body?.spec).toEqual({ size: 1 });
      }
      // Every watch event, list and watch path alike, went through the transform.
      for (const body of entry.events) expect(body.metadata).not.toHaveProperty('managedFields');
      expect(entry.events.at(-1)?.status).toMatchObject({ phase: 'Provisioned' });
      // The listed object had its status before the operator started; the watched one may be handled before its
      // status patch arrives.
      if (name === 'listed') expect(cached?.status).toMatchObject({ phase: 'Provisioned' });
    }
  });

  test('an update is handled from the stripped cache copy, with the diff-base intact', async () => {
    await cluster.api.patch(slimRef, 'listed', { spec: { size: 2 } });
    const updated = await waitFor(() => record('slim', 'listed').updated);
    expect(updated.metadata).not.toHaveProperty('managedFields');
    expect(updated.spec).toEqual({ size: 2 });
    expect(updated.metadata.labels).toEqual({ app: 'demo' });
    expect(updated.metadata.annotations).toMatchObject({ 'example.com/note': 'n' });
    expect(updated.status).toMatchObject({ phase: 'Provisioned' });
    await waitFor(async () => {
      const object = await cluster.api.get<KubeObject>(slimRef, 'listed');
      const base = object.metadata.annotations?.['opkit.dev/last-handled-configuration'];
      return base !== undefined && (JSON.parse(base) as { spec?: Spec }).spec?.size === 2;
    });
  });

  test('a delete is handled and the finalizer released from the stripped cache copy', async () => {
    await cluster.api.delete(slimRef, 'watched');
    const deleted = await waitFor(() => record('slim', 'watched').deleted);
    expect(deleted.metadata).not.toHaveProperty('managedFields');
    expect(deleted.metadata.deletionTimestamp).toBeTruthy();
    await waitFor(async () => {
      try {
        await cluster.api.get(slimRef, 'watched');
        return false;
      } catch (error) {
        return (error as { statusCode?: number }).statusCode === 404;
      }
    });
  });

  test('an operator cacheTransform replaces the default on the list and watch paths', async () => {
    for (const name of ['listed', 'watched']) {
      const server = await waitFor(() => handled(customRef, name));
      // The annotation the transform hides stays on the object: the framework's patches never touch it.
      expect(server.metadata.annotations?.[LAST_APPLIED]).toBe(JSON.stringify({ spec: { size: 1 } }));
      const entry = await waitFor(() => {
        const current = record('custom', name);
        return current.cachedAtCreate && current.events.length > 0 && current;
      });
      for (const body of [entry.cachedAtCreate, ...entry.events]) {
        // managedFields kept: the operator's transform runs instead of the default, not after it.
        expect(hasManagedFields(body)).toBe(true);
        expect(body?.metadata.annotations).not.toHaveProperty(LAST_APPLIED);
        expect(body?.metadata.annotations).toMatchObject({ 'example.com/note': 'n' });
        expect(body?.metadata.labels).toEqual({ app: 'demo' });
        expect(body?.spec).toEqual({ size: 1 });
      }
      // The dropped annotation is not part of the essence: the framework's own writes caused no update.
      expect(entry.updated).toBeUndefined();
    }
  });
});
