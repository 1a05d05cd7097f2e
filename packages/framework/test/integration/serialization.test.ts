/**
 * Per-object serialization and coalescing, and parallelism across objects, with a real watch feeding the queue.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnEvent, OnUpdate, Operator, type EventContext, type HandlerContext } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { ResourceRef } from '../../src/kube/types.js';
import { Gate, GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

interface Spec {
  v: number;
}

const updates: Array<{ name: string; old: number | undefined; new: number | undefined }> = [];
const gates = new Map<string, Gate>();
const active = new Map<string, number>();
let maxActivePerObject = 0;
let activeTotal = 0;
let maxActiveTotal = 0;
/** Latest spec.v the watch delivered per object (raw events arrive independently of the queue). */
const seenVersion = new Map<string, number>();

@Operator({ group: GROUP, version: 'v1', plural: 'slowpokes', kind: 'Slowpoke' })
class SlowOperator {
  @OnEvent()
  observe(ctx: EventContext<Spec>) {
    if (ctx.type === 'upsert') seenVersion.set(ctx.name, ctx.spec.v);
  }

  @OnCreate()
  created() {}

  @OnUpdate()
  async updated(ctx: HandlerContext<Spec>) {
    const running = (active.get(ctx.name) ?? 0) + 1;
    active.set(ctx.name, running);
    maxActivePerObject = Math.max(maxActivePerObject, running);
    activeTotal += 1;
    maxActiveTotal = Math.max(maxActiveTotal, activeTotal);
    updates.push({ name: ctx.name, old: ctx.old?.spec?.v, new: ctx.new?.spec?.v });
    try {
      await gates.get(ctx.name)?.wait();
    } finally {
      active.set(ctx.name, (active.get(ctx.name) ?? 1) - 1);
      activeTotal -= 1;
    }
  }
}

let cluster: TestCluster;
let ref: ResourceRef;
let operator: OperatorHandle;

const createSlowpoke = async (name: string): Promise<void> => {
  await cluster.api.create(ref, testObject('Slowpoke', name, { v: 0 }));
};
const setV = (name: string, v: number) => cluster.api.patch(ref, name, { spec: { v } }, { type: 'merge' });
const queueDepth = async (): Promise<number> => {
  const metric = await operator.metrics.queueDepth.get();
  return metric.values[0]?.value ?? 0;
};

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('slowpokes', 'Slowpoke');
  operator = await startOperator({ classes: [SlowOperator], kubeconfigPath: cluster.kubeconfigPath, concurrency: 3 });
});
afterAll(async () => {
  for (const gate of gates.values()) gate.open();
  await operator?.stop();
  await cluster?.stop();
});

describe('serialization', () => {
  test('a slow handler never overlaps itself; changes made meanwhile coalesce into one run with the latest', async () => {
    gates.set('s1', new Gate());
    await createSlowpoke('s1');
    await setV('s1', 1);
    await waitFor(() => updates.some((u) => u.name === 's1' && u.new === 1));
    for (const v of [2, 3, 4]) await setV('s1', v);
    // Wait until the watch delivered the last change while the first run is still blocked.
    await waitFor(() => seenVersion.get('s1') === 4);
    const second = new Gate();
    const first = gates.get('s1') as Gate;
    gates.set('s1', second);
    first.open();
    await waitFor(() => updates.filter((u) => u.name === 's1').length === 2);
    second.open();
    expect(updates.filter((u) => u.name === 's1')).toEqual([
      { name: 's1', old: 0, new: 1 },
      { name: 's1', old: 1, new: 4 },
    ]);
    expect(maxActivePerObject).toBe(1);
  });
});

describe('parallelism', () => {
  test('different objects run in parallel, up to the concurrency limit; the rest wait in the queue', async () => {
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
    const gate = new Gate();
    for (const name of names) gates.set(name, gate);
    for (const name of names) await createSlowpoke(name);
    await waitFor(() => names.every((name) => seenVersion.get(name) === 0));
    await waitFor(async () => (await queueDepth()) === 0);
    maxActiveTotal = 0;
    for (const name of names) await setV(name, 1);
    await waitFor(() => names.every((name) => seenVersion.get(name) === 1));
    // Three run at once (the limit); the other two are queued, not running.
    await waitFor(() => activeTotal === 3);
    await waitFor(async () => (await queueDepth()) === 2);
    expect(maxActiveTotal).toBe(3);
    gate.open();
    await waitFor(() => names.every((name) => updates.some((u) => u.name === name && u.new === 1)));
    expect(maxActiveTotal).toBe(3);
  });
});
