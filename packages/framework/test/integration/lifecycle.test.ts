/**
 * Causes and finalizers against a real API server: create, update (with field handlers), delete, resume, "update sees
 * the right old across a restart", no cycles from status-only or own writes, and a failing delete handler that keeps
 * its finalizer and retries.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnField, OnResume, OnUpdate, Operator, type HandlerContext } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

interface Spec {
  gateway?: string;
  destinations?: string[];
}
interface Call {
  handler: string;
  cause: string;
  name: string;
  old: unknown;
  new: unknown;
  diff: unknown;
  retry: number;
}

const calls: Call[] = [];
const stubborn = new Set<string>();

function record(handler: string, ctx: HandlerContext<Spec, unknown, unknown>): void {
  calls.push({
    handler,
    cause: ctx.cause,
    name: ctx.name,
    old: ctx.old,
    new: ctx.new,
    diff: ctx.diff,
    retry: ctx.retry,
  });
}
const callsFor = (name: string, handler?: string): Call[] =>
  calls.filter((call) => call.name === name && (handler === undefined || call.handler === handler));

@Operator({ group: GROUP, version: 'v1', plural: 'widgets', kind: 'Widget' })
class WidgetOperator {
  @OnCreate()
  created(ctx: HandlerContext<Spec>) {
    record('created', ctx);
    return { gatewayAtCreate: ctx.spec.gateway ?? null };
  }

  @OnUpdate()
  updated(ctx: HandlerContext<Spec>) {
    record('updated', ctx);
  }

  @OnField('spec.gateway')
  gatewayChanged(ctx: HandlerContext<Spec, unknown, string>) {
    record('gateway', ctx);
  }

  @OnDelete()
  deleted(ctx: HandlerContext<Spec>) {
    record('deleted', ctx);
    if (stubborn.has(ctx.name)) throw new Error('cleanup failed');
  }

  @OnResume()
  resumed(ctx: HandlerContext<Spec>) {
    record('resumed', ctx);
  }
}

let cluster: TestCluster;
let ref: ResourceRef;
let operator: OperatorHandle | undefined;

const start = async (): Promise<OperatorHandle> =>
  (operator = await startOperator({
    classes: [WidgetOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    backoff: { initialMs: 100, maxMs: 400 },
  }));
const get = (name: string) => cluster.api.get<KubeObject>(ref, name);
const patchSpec = (name: string, spec: Spec) => cluster.api.patch(ref, name, { spec }, { type: 'merge' });
const createWidget = (name: string, spec: Spec) => cluster.api.create(ref, testObject('Widget', name, spec));

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('widgets', 'Widget');
  await start();
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('cluster scope lifecycle', () => {
  test('create: handlers run once, finalizer and diff-base are stored, outcome and return value in status', async () => {
    await createWidget('w1', { gateway: '10.0.0.1', destinations: ['1.1.1.1'] });
    const object = await waitFor(async () => {
      const current = await get('w1');
      const handled = Boolean((current.status as { handlers?: { created?: unknown } } | undefined)?.handlers?.created);
      // `created` is reported as soon as it ran; the cause completes after the field handler (diff-base stored).
      const completed = current.metadata.annotations?.['opkit.dev/last-handled-configuration'] !== undefined;
      return handled && completed && current;
    });
    expect(object.metadata.finalizers).toEqual(['opkit.dev/finalizer']);
    expect(JSON.parse(object.metadata.annotations?.['opkit.dev/last-handled-configuration'] ?? '{}')).toEqual({
      spec: { destinations: ['1.1.1.1'], gateway: '10.0.0.1' },
    });
    expect(object.metadata.annotations?.['opkit.dev/progress']).toBeUndefined();
    expect(object.status).toMatchObject({
      created: { gatewayAtCreate: '10.0.0.1' },
      handlers: { created: { outcome: 'success', cause: 'create', retries: 0 } },
    });
    expect(callsFor('w1', 'created')).toHaveLength(1);
    expect(callsFor('w1', 'created')[0]).toMatchObject({ cause: 'create', old: undefined, retry: 0 });
    // Field handlers fire on create when their field is set, with the field's values.
    expect(callsFor('w1', 'gateway')).toEqual([
      expect.objectContaining({ cause: 'create', old: undefined, new: '10.0.0.1' }),
    ]);
  });

  test('update: old/new/diff of the essence; field handlers only for their field', async () => {
    await patchSpec('w1', { gateway: '10.0.0.2' });
    await waitFor(() => callsFor('w1', 'updated').length === 1);
    expect(callsFor('w1', 'updated')[0]).toMatchObject({
      cause: 'update',
      old: { spec: { gateway: '10.0.0.1', destinations: ['1.1.1.1'] } },
      new: { spec: { gateway: '10.0.0.2', destinations: ['1.1.1.1'] } },
      diff: [{ op: 'change', path: ['spec', 'gateway'], old: '10.0.0.1', new: '10.0.0.2' }],
    });
    await waitFor(() => callsFor('w1', 'gateway').length === 2);
    expect(callsFor('w1', 'gateway')[1]).toMatchObject({
      cause: 'update',
      old: '10.0.0.1',
      new: '10.0.0.2',
      diff: [{ op: 'change', path: ['spec', 'gateway'], old: '10.0.0.1', new: '10.0.0.2' }],
    });
    await patchSpec('w1', { destinations: ['1.1.1.1', '2.2.2.2'] });
    await waitFor(() => callsFor('w1', 'updated').length === 2);
    expect(callsFor('w1', 'gateway')).toHaveLength(2);
  });

  test('status-only changes and the framework own writes cause nothing', async () => {
    const before = calls.length;
    await cluster.api.patch(
      ref,
      'w1',
      { status: { external: 'written by someone else' } },
      { type: 'merge', subresource: 'status' },
    );
    await cluster.api.patch(
      ref,
      'w1',
      { metadata: { annotations: { 'opkit.dev/unrelated': 'x' } } },
      { type: 'merge' },
    );
    // A label change is a real change; it is handled after the two above (per-object order), so if either had caused
    // a cycle it would show up as an extra call or in this diff.
    await cluster.api.patch(ref, 'w1', { metadata: { labels: { tier: 'gold' } } }, { type: 'merge' });
    await waitFor(() => callsFor('w1', 'updated').length === 3);
    expect(calls.slice(before)).toHaveLength(1);
    expect(callsFor('w1', 'updated')[2]?.diff).toEqual([
      { op: 'add', path: ['metadata'], new: { labels: { tier: 'gold' } } },
    ]);
  });

  test('restart: unchanged objects resume once; a change made while down is an update with the right old', async () => {
    await createWidget('w2', { gateway: '10.0.0.5' });
    await waitFor(() => callsFor('w2', 'created').length === 1);
    await waitFor(async () => (await get('w2')).metadata.annotations?.['opkit.dev/last-handled-configuration']);
    await operator?.stop();
    await patchSpec('w2', { gateway: '10.0.0.6' });
    await start();
    await waitFor(() => callsFor('w1', 'resumed').length === 1 && callsFor('w2', 'updated').length === 1);
    expect(callsFor('w1', 'resumed')[0]).toMatchObject({ cause: 'resume', diff: [] });
    expect(callsFor('w2', 'updated')[0]).toMatchObject({
      old: { spec: { gateway: '10.0.0.5' } },
      new: { spec: { gateway: '10.0.0.6' } },
    });
    expect(callsFor('w2', 'resumed')).toHaveLength(0);
    expect(callsFor('w1', 'created')).toHaveLength(1);
    expect(callsFor('w2', 'created')).toHaveLength(1);
  });

  test('delete: delete handlers run once, then the finalizer is released and the object goes', async () => {
    await cluster.api.delete(ref, 'w2');
    await waitFor(async () => (await get('w2').catch(() => 'gone')) === 'gone');
    expect(callsFor('w2', 'deleted')).toHaveLength(1);
  });

  test('a failing delete handler keeps the finalizer and is retried until it succeeds', async () => {
    stubborn.add('w3');
    await createWidget('w3', { gateway: '10.0.0.7' });
    await waitFor(() => callsFor('w3', 'created').length === 1);
    await waitFor(async () => (await get('w3')).metadata.finalizers?.length);
    await cluster.api.delete(ref, 'w3');
    await waitFor(() => callsFor('w3', 'deleted').length >= 3);
    const held = await get('w3');
    expect(held.metadata.deletionTimestamp).toBeDefined();
    expect(held.metadata.finalizers).toEqual(['opkit.dev/finalizer']);
    await waitFor(async () => {
      const status = (await get('w3')).status as { handlers?: { deleted?: { outcome: string; retries: number } } };
      return status.handlers?.deleted?.outcome === 'retrying' && status.handlers.deleted.retries >= 2;
    });
    expect(
      callsFor('w3', 'deleted')
        .map((call) => call.retry)
        .slice(0, 3),
    ).toEqual([0, 1, 2]);
    stubborn.delete('w3');
    await waitFor(async () => (await get('w3').catch(() => 'gone')) === 'gone');
  });

  test('the finalizer is added before the first handler, even for an object deleted right away', async () => {
    await createWidget('w4', { gateway: '10.0.0.8' });
    await waitFor(() => callsFor('w4', 'created').length === 1);
    await cluster.api.delete(ref, 'w4');
    await waitFor(async () => (await get('w4').catch(() => 'gone')) === 'gone');
    expect(callsFor('w4', 'deleted'), JSON.stringify(callsFor('w4'))).toHaveLength(1);
  });
});
