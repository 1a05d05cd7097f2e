/**
 * What contexts offer beyond the object: the Nodes view (node scope, backed by the runtime's one Nodes watch), the
 * runtime's Event recorder for code outside handlers, and the operator-level logger for long-lived components.
 * Real API server; the Nodes are plain Node objects.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  OnCreate,
  OnEvent,
  OnStartup,
  Operator,
  type ActivityContext,
  type EventContext,
  type HandlerContext,
  type KubeObject,
  type NodeChange,
  type ResourceRef,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };
const SELF = 'node-a';

/** What the node-scope operator saw, for the assertions. */
const seen = {
  startup: undefined as ActivityContext | undefined,
  startupNodes: [] as string[],
  startupOwn: undefined as string | undefined,
  anyChanges: [] as NodeChange[],
  ownChanges: [] as NodeChange[],
  unsubscribedChanges: [] as NodeChange[],
  handlerZoneOfB: undefined as string | undefined,
  handlerOperatorBindings: undefined as Record<string, unknown> | undefined,
  eventHandlerSawNodes: false,
};

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'gadgets',
  kind: 'Gadget',
  scope: 'node',
  persistencePrefix: 'ctx.test',
})
class GadgetOperator {
  @OnStartup()
  async start(ctx: ActivityContext): Promise<void> {
    seen.startup = ctx;
    const nodes = ctx.nodes;
    if (!nodes) throw new Error('no Nodes view in node scope');
    await nodes.whenSynced(ctx.signal);
    seen.startupNodes = nodes
      .list()
      .map((node) => node.metadata.name)
      .sort();
    seen.startupOwn = nodes.own()?.metadata.name;
    // A throwing listener is logged and keeps neither the watch nor the other listeners from going on.
    nodes.onChange(() => {
      throw new Error('a broken listener');
    });
    nodes.onChange((change) => seen.anyChanges.push(change));
    nodes.onChange((change) => seen.ownChanges.push(change), { ownOnly: true });
    const unsubscribe = nodes.onChange((change) => seen.unsubscribedChanges.push(change));
    unsubscribe();
  }

  @OnCreate()
  created(ctx: HandlerContext): void {
    seen.handlerZoneOfB = ctx.nodes?.get('node-b')?.metadata.labels?.zone;
    seen.handlerOperatorBindings = ctx.operatorLogger.bindings();
  }

  @OnEvent()
  observed(ctx: EventContext): void {
    if (ctx.nodes?.synced) seen.eventHandlerSawNodes = true;
  }
}

let clusterScopeStartup: ActivityContext | undefined;

@Operator({ group: GROUP, version: 'v1', plural: 'gizmos', kind: 'Gizmo' })
class GizmoOperator {
  @OnStartup()
  start(ctx: ActivityContext): void {
    clusterScopeStartup = ctx;
  }
}

let cluster: TestCluster;
let gadgets: ResourceRef;
let operator: OperatorHandle;
const nodeRequests: string[] = [];

const eventsAbout = async (name: string) =>
  (
    await cluster.api.list<
      KubeObject & {
        type: string;
        reason: string;
        message: string;
        count?: number;
        involvedObject: KubeObject['metadata'] & { kind: string; apiVersion: string };
      }
    >(EVENTS, { namespace: 'default', fieldSelector: `involvedObject.name=${name}` })
  ).items;

const labelNode = (name: string, zone: string) =>
  cluster.api.patch(NODES, name, { metadata: { labels: { zone } } }, { type: 'merge' });

beforeAll(async () => {
  cluster = await startCluster();
  gadgets = await cluster.installCrd('gadgets', 'Gadget');
  await cluster.installCrd('gizmos', 'Gizmo');
  for (const [name, zone] of [
    [SELF, 'a'],
    ['node-b', 'b'],
  ] as const) {
    await cluster.api.create(NODES, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { zone } } });
  }
  operator = await startOperator({
    classes: [GadgetOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    instanceId: SELF,
    stateDir: await cluster.tempDir('ctx'),
    onApiRequest: (verb, ref) => {
      if (ref.plural === 'nodes') nodeRequests.push(verb);
    },
  });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('the Nodes view (node scope)', () => {
  test('startup handlers can wait for the first list of Nodes; own() is the Node named like the instance', () => {
    expect(seen.startupNodes).toEqual(['node-a', 'node-b']);
    expect(seen.startupOwn).toBe(SELF);
  });

  test('handlers and event handlers read the same cache', async () => {
    await cluster.api.create(gadgets, testObject('Gadget', 'g1', { size: 1 }));
    await waitFor(() => seen.handlerZoneOfB !== undefined);
    expect(seen.handlerZoneOfB).toBe('b');
    expect(seen.eventHandlerSawNodes).toBe(true);
  });

  test('subscribers get upserts with the previous copy; ownOnly gets only the own Node', async () => {
    seen.anyChanges.length = 0;
    seen.ownChanges.length = 0;
    await labelNode('node-b', 'b2');
    await labelNode(SELF, 'a2');
    await waitFor(() => seen.ownChanges.length > 0 && seen.anyChanges.length >= 2);
    const upserts = seen.anyChanges.filter((change) => change.type === 'upsert');
    expect(
      upserts.map((change) => [change.node.metadata.name, change.previous?.metadata.labels?.zone, change.own]),
    ).toEqual([
      ['node-b', 'b', false],
      [SELF, 'a', true],
    ]);
    expect(seen.ownChanges).toHaveLength(1);
    expect(seen.ownChanges[0]).toMatchObject({ type: 'upsert', own: true, node: { metadata: { name: SELF } } });
    expect(seen.startup?.nodes?.own()?.metadata.labels?.zone).toBe('a2');
    expect(seen.unsubscribedChanges).toEqual([]);
  });

  test('a deleted Node is delivered as delete and leaves the cache', async () => {
    seen.anyChanges.length = 0;
    seen.ownChanges.length = 0;
    await cluster.api.delete(NODES, 'node-b');
    await waitFor(() => seen.anyChanges.some((change) => change.type === 'delete'));
    expect(seen.anyChanges).toContainEqual(expect.objectContaining({ type: 'delete', own: false }));
    expect(seen.ownChanges).toEqual([]);
    expect(seen.startup?.nodes?.get('node-b')).toBeUndefined();
    expect(seen.startup?.nodes?.list().map((node) => node.metadata.name)).toEqual([SELF]);
  });

  test('one Nodes watch serves the handlers and the dead-instance janitor: Nodes were listed and watched once', () => {
    expect(nodeRequests.filter((verb) => verb === 'list')).toHaveLength(1);
    expect(nodeRequests.filter((verb) => verb === 'watch')).toHaveLength(1);
  });
});

describe('events and the operator logger outside handlers', () => {
  test("the startup context's recorder posts, deduplicates and fills in the operator's resource type", async () => {
    const events = seen.startup?.events;
    expect(events).toBeDefined();
    const object = await cluster.api.get<KubeObject>(gadgets, 'g1');
    // No apiVersion/kind, as objects built by hand often are: the operator's resource type is assumed.
    const bare: KubeObject = { metadata: object.metadata };
    events?.record(bare, 'Warning', 'DriftRepaired', 'node-a: a route was restored');
    events?.record(bare, 'Warning', 'DriftRepaired', 'node-a: a route was restored');
    events?.about(object).normal('Converged', 'node-a: all routes applied');
    const posted = await waitFor(async () => {
      const found = await eventsAbout('g1');
      const drift = found.find((event) => event.reason === 'DriftRepaired');
      return drift?.count === 2 && found.some((event) => event.reason === 'Converged') && found;
    });
    const drift = posted.find((event) => event.reason === 'DriftRepaired');
    expect(drift).toMatchObject({ type: 'Warning', message: 'node-a: a route was restored', count: 2 });
    expect(drift?.involvedObject).toMatchObject({
      kind: 'Gadget',
      apiVersion: `${GROUP}/v1`,
      uid: object.metadata.uid,
    });
    expect(posted.find((event) => event.reason === 'Converged')).toMatchObject({ type: 'Normal' });
  });

  test('operatorLogger is bound to the operator only; logger to the activity', () => {
    const startup = seen.startup as ActivityContext;
    expect(startup.logger.bindings()).toMatchObject({ operator: 'GadgetOperator', handler: 'start' });
    expect(startup.operatorLogger.bindings()).toMatchObject({ operator: 'GadgetOperator' });
    expect(startup.operatorLogger.bindings()).not.toHaveProperty('handler');
    expect(startup.operatorLogger.bindings()).not.toHaveProperty('activity');
    expect(seen.handlerOperatorBindings).toMatchObject({ operator: 'GadgetOperator' });
    expect(seen.handlerOperatorBindings).not.toHaveProperty('handler');
  });
});

describe('cluster scope', () => {
  test('has no Nodes view and runs no Nodes watch', async () => {
    const requests: string[] = [];
    const clusterScoped = await startOperator({
      classes: [GizmoOperator],
      kubeconfigPath: cluster.kubeconfigPath,
      onApiRequest: (verb, ref) => {
        if (ref.plural === 'nodes') requests.push(verb);
      },
    });
    try {
      expect(clusterScopeStartup).toBeDefined();
      expect(clusterScopeStartup?.nodes).toBeUndefined();
      expect(clusterScopeStartup?.events).toBeDefined();
      expect(requests).toEqual([]);
    } finally {
      await clusterScoped.stop();
    }
  });
});

describe('the Nodes view across an API server restart', () => {
  // Last in this file: the restart drops every watch.
  test('streaming is true while the Nodes watch is open, false while it reconnects, then true again', async () => {
    const nodes = seen.startup?.nodes;
    if (!nodes) throw new Error('no Nodes view');
    expect(nodes.streaming).toBe(true);
    const observed = new Set<boolean>();
    const sampler = setInterval(() => observed.add(nodes.streaming), 10);
    try {
      await cluster.cp.restartApiServer();
      await waitFor(() => nodes.streaming, { timeoutMs: 60_000 });
    } finally {
      clearInterval(sampler);
    }
    expect([...observed].sort()).toEqual([false, true]);
  });
});
