/**
 * Node scope with three instances against one API server: every instance handles every change exactly once with its
 * own finalizer, diff-base (node-local) and status entry; the object goes only after all three released it; and the
 * survivors release what the instance of a deleted Node held (deleted while they ran, or while they were down).
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnUpdate, Operator, type HandlerContext, type KubeObject } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { ResourceRef } from '../../src/kube/types.js';
import { Gate, GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

const PREFIX = 'routes.test.opkit.dev';
const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const ids = ['node-a', 'node-b', 'node-c'] as const;
type Id = (typeof ids)[number];

const calls: Array<{ instance: string; cause: string; name: string; old: unknown; new: unknown }> = [];
const deleteGates = new Map<string, Gate>();

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'routes',
  kind: 'Route',
  scope: 'node',
  instanceStatusField: 'nodes',
  persistencePrefix: PREFIX,
})
class RouteOperator {
  @OnCreate() created(ctx: HandlerContext<{ via: string }>) {
    calls.push({ instance: ctx.instanceId, cause: 'create', name: ctx.name, old: ctx.old, new: ctx.new });
    ctx.patch.instanceStatus.state = `applied via ${ctx.spec.via}`;
  }
  @OnUpdate() updated(ctx: HandlerContext<{ via: string }>) {
    calls.push({ instance: ctx.instanceId, cause: 'update', name: ctx.name, old: ctx.old, new: ctx.new });
    ctx.patch.instanceStatus.state = `applied via ${ctx.spec.via}`;
  }
  @OnDelete() async deleted(ctx: HandlerContext) {
    calls.push({ instance: ctx.instanceId, cause: 'delete', name: ctx.name, old: ctx.old, new: ctx.new });
    await deleteGates.get(`${ctx.instanceId}/${ctx.name}`)?.wait();
  }
}

let cluster: TestCluster;
let ref: ResourceRef;
const instances = new Map<Id, OperatorHandle>();
const stateDirs = new Map<Id, string>();

const finalizer = (id: Id): string => `${PREFIX}/${id}`;
const count = (instance: string, cause: string, name: string): number =>
  calls.filter((call) => call.instance === instance && call.cause === cause && call.name === name).length;
const get = (name: string) => cluster.api.get<KubeObject>(ref, name);
const gone = async (name: string): Promise<boolean> => (await get(name).catch(() => 'gone')) === 'gone';
const statusEntries = (
  object: KubeObject,
): Record<string, { state?: string; handlers?: Record<string, { outcome: string }> }> =>
  ((object.status as { nodes?: Record<string, never> } | undefined)?.nodes ?? {}) as never;

async function startInstance(id: Id): Promise<void> {
  instances.set(
    id,
    await startOperator({
      classes: [RouteOperator],
      kubeconfigPath: cluster.kubeconfigPath,
      instanceId: id,
      stateDir: stateDirs.get(id) as string,
    }),
  );
}
async function stopInstance(id: Id): Promise<void> {
  await instances.get(id)?.stop();
  instances.delete(id);
}
/** Waits until every listed instance handled `cause` for `name` (per its status entry). */
async function handledBy(name: string, handler: string, who: readonly Id[]): Promise<KubeObject> {
  return waitFor(async () => {
    const object = await get(name);
    const entries = statusEntries(object);
    return who.every((id) => entries[id]?.handlers?.[handler]?.outcome === 'success') && object;
  });
}

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('routes', 'Route');
  for (const id of ids) {
    await cluster.api.create(NODES, { apiVersion: 'v1', kind: 'Node', metadata: { name: id } });
    stateDirs.set(id, await cluster.tempDir(id));
  }
  for (const id of ids) await startInstance(id);
});
afterAll(async () => {
  for (const gate of deleteGates.values()) gate.open();
  await Promise.all([...instances.keys()].map((id) => stopInstance(id)));
  await cluster?.stop();
});

describe('node scope', () => {
  test('create and update run exactly once per instance, each with its own finalizer and status entry', async () => {
    await cluster.api.create(ref, testObject('Route', 'r1', { via: 'gw1' }));
    let object = await handledBy('r1', 'created', ids);
    expect([...(object.metadata.finalizers ?? [])].sort()).toEqual(ids.map(finalizer));
    // Node-local state: nothing of it on the object.
    expect(object.metadata.annotations ?? {}).toEqual({});
    await cluster.api.patch(ref, 'r1', { spec: { via: 'gw2' } }, { type: 'merge' });
    object = await handledBy('r1', 'updated', ids);
    for (const id of ids) {
      expect(count(id, 'create', 'r1')).toBe(1);
      expect(count(id, 'update', 'r1')).toBe(1);
      expect(statusEntries(object)[id]?.state).toBe('applied via gw2');
      expect(calls.find((c) => c.instance === id && c.cause === 'update')).toMatchObject({
        old: { spec: { via: 'gw1' } },
        new: { spec: { via: 'gw2' } },
      });
    }
  });

  test('the object is deleted only after every instance released its finalizer', async () => {
    const slow = new Gate();
    deleteGates.set('node-c/r1', slow);
    await cluster.api.delete(ref, 'r1');
    const held = await waitFor(async () => {
      const object = await get('r1');
      return object.metadata.finalizers?.length === 1 && object;
    });
    expect(held.metadata.finalizers).toEqual([finalizer('node-c')]);
    expect(held.metadata.deletionTimestamp).toBeDefined();
    expect(count('node-a', 'delete', 'r1')).toBe(1);
    expect(count('node-b', 'delete', 'r1')).toBe(1);
    slow.open();
    await waitFor(() => gone('r1'));
    for (const id of ids) expect(count(id, 'delete', 'r1')).toBe(1);
  });

  test('deleting a Node makes the survivors release its finalizer and status entry', async () => {
    await cluster.api.create(ref, testObject('Route', 'r2', { via: 'gw1' }));
    await handledBy('r2', 'created', ids);
    // node-c's operator dies with its node.
    await stopInstance('node-c');
    await cluster.api.delete(NODES, 'node-c');
    const object = await waitFor(async () => {
      const current = await get('r2');
      return current.metadata.finalizers?.length === 2 && !statusEntries(current)['node-c'] && current;
    });
    expect([...(object.metadata.finalizers ?? [])].sort()).toEqual([finalizer('node-a'), finalizer('node-b')]);
    expect(Object.keys(statusEntries(object)).sort()).toEqual(['node-a', 'node-b']);
    await cluster.api.delete(ref, 'r2');
    await waitFor(() => gone('r2'));
  });

  test('a Node deleted while the survivors were down is cleaned up when they start', async () => {
    await cluster.api.create(ref, testObject('Route', 'r3', { via: 'gw1' }));
    await handledBy('r3', 'created', ['node-a', 'node-b']);
    await stopInstance('node-a');
    await stopInstance('node-b');
    await cluster.api.delete(NODES, 'node-b');
    await startInstance('node-a');
    const object = await waitFor(async () => {
      const current = await get('r3');
      return current.metadata.finalizers?.length === 1 && !statusEntries(current)['node-b'] && current;
    });
    expect(object.metadata.finalizers).toEqual([finalizer('node-a')]);
    // The restart itself handled nothing again: node-a's diff-base survived in its state directory.
    expect(count('node-a', 'create', 'r3')).toBe(1);
  });

  test('lost node-local state makes the object new again for that instance (handlers are idempotent)', async () => {
    await stopInstance('node-a');
    const dir = stateDirs.get('node-a') as string;
    for (const entry of await readdir(dir, { recursive: true })) {
      if (entry.endsWith('.json')) await rm(join(dir, entry));
    }
    await startInstance('node-a');
    await waitFor(() => count('node-a', 'create', 'r3') === 2);
    await cluster.api.delete(ref, 'r3');
    await waitFor(() => gone('r3'));
  });
});
