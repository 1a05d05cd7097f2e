/**
 * Storage stays bounded: 500 instances' finalizers and status entries on an object with a 50 KiB spec, written the
 * way the framework writes them, keep the object under the ~1.5 MiB limit and the annotations under 256 KiB; the
 * cluster-scope diff-base of the same spec fits the annotation limit too.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { computeEssence } from '../../src/core/essence.js';
import { instanceFinalizer } from '../../src/core/finalizers.js';
import { stateAnnotationChanges } from '../../src/core/state-codec.js';
import { buildStatusPatch, mergePatches, type HandlerOutcome } from '../../src/core/status.js';
import { ObjectWriter } from '../../src/engine/writer.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { startCluster, testObject, type TestCluster } from './helpers.js';

const PREFIX = 'staticroute.opkit.dev';
const MiB = 1024 * 1024;
const KiB = 1024;

let cluster: TestCluster;
let ref: ResourceRef;

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('bigroutes', 'BigRoute');
});
afterAll(() => cluster?.stop());

/** Over 50 KiB of spec: 2,000 IPv6 destinations, like a large StaticRoute. */
function bigSpec(): { gateway: string; destinations: string[] } {
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  const destinations = Array.from({ length: 2000 }, (_, i) => `2001:db8:${hex(i)}:${hex((i * 7919) & 0xffff)}::/64`);
  return { gateway: 'fd00:116::5', destinations };
}

/** Realistic node names: most short, some longer than 63 characters (hashed finalizer names). */
function instanceIds(): string[] {
  return Array.from({ length: 500 }, (_, i) =>
    i % 5 === 0
      ? `pool-${i}-${'very-long-autoscaled-node-name-segment'.repeat(2)}.eu-west.compute.internal`
      : `pool-general-${i}-x7k2p`,
  );
}

const annotationBytes = (object: KubeObject): number =>
  Object.entries(object.metadata.annotations ?? {}).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value),
    0,
  );

describe('bounded storage', () => {
  test('node scope: 500 finalizers + status entries on a 50 KiB spec stay under 1.5 MiB, annotations under 256 KiB', async () => {
    const spec = bigSpec();
    expect(Buffer.byteLength(JSON.stringify(spec))).toBeGreaterThanOrEqual(50 * KiB);
    const created = await cluster.api.create<KubeObject>(ref, testObject('BigRoute', 'big', spec));
    const writer = new ObjectWriter(cluster.api, ref);
    const time = new Date().toISOString();
    const outcome = (cause: 'create' | 'update'): HandlerOutcome => ({ outcome: 'success', cause, retries: 0, time });
    const statusOf = (id: string) =>
      buildStatusPatch(
        { scope: 'node', handlerStatusField: 'handlers', instanceStatusField: 'nodes', instanceId: id },
        {
          outcomes: { apply: outcome('create'), reconcile: outcome('update') },
          results: {},
          status: {},
          instanceStatus: { state: 'Applied', message: '2000 routes via fd00:116::5', observedGeneration: 1, time },
        },
      ) as { status: Record<string, unknown> };
    const ids = instanceIds();
    // The first 490 instances in batches of 49 (the same patch builders, several instances per request: a write to a
    // half-megabyte object costs the API server ~0.3-0.9 s here, so 1,000 single writes would take many minutes), the
    // last 10 one request each, exactly as the engine writes them. managedFields, which the API server adds for
    // every field the writers own, are part of the measured size.
    const batched = ids.slice(0, 490);
    for (let i = 0; i < batched.length; i += 49) {
      const batch = batched.slice(i, i + 49);
      const current = await cluster.api.get<KubeObject>(ref, 'big');
      await writer.patchMetadata(current, { addFinalizers: batch.map((id) => instanceFinalizer(PREFIX, id)) });
      await writer.patchStatus(current, {
        status: batch.map(statusOf).reduce((all, one) => mergePatches(all, one.status), {}),
      });
    }
    for (const id of ids.slice(490)) {
      await writer.patchMetadata(created, { addFinalizers: [instanceFinalizer(PREFIX, id)] });
      await writer.patchStatus(created, statusOf(id));
    }
    const object = await cluster.api.get<KubeObject>(ref, 'big');
    expect(object.metadata.finalizers).toHaveLength(500);
    expect(Object.keys((object.status as { nodes: object }).nodes)).toHaveLength(500);
    const size = Buffer.byteLength(JSON.stringify(object));
    expect(size).toBeLessThan(1.5 * MiB);
    expect(annotationBytes(object)).toBeLessThan(256 * KiB);
    console.info(
      `node scope, 500 instances: object ${(size / KiB).toFixed(0)} KiB, annotations ${annotationBytes(object)} B`,
    );
  }, 300_000);

  test('cluster scope: the diff-base of a 50 KiB spec fits the annotation limit', async () => {
    const created = await cluster.api.create<KubeObject>(ref, testObject('BigRoute', 'big-cluster', bigSpec()));
    const writer = new ObjectWriter(cluster.api, ref);
    const annotations = stateAnnotationChanges(undefined, PREFIX, { diffBase: computeEssence(created, PREFIX) });
    const written = await writer.patchMetadata(created, { addFinalizers: [`${PREFIX}/finalizer`], annotations });
    expect(written).not.toBe('gone');
    const object = await cluster.api.get<KubeObject>(ref, 'big-cluster');
    expect(annotationBytes(object)).toBeLessThan(256 * KiB);
    expect(Buffer.byteLength(JSON.stringify(object))).toBeLessThan(1.5 * MiB);
  });
});
