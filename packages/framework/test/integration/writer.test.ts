/**
 * The guarded metadata patches against the real API server: what the framework relies on when several instances
 * add and remove finalizers on one object at once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildMetadataPatch } from '../../src/core/metadata-patch.js';
import { ApiError, type KubeObject, type ResourceRef } from '../../src/kube/types.js';
import { isConflict, ObjectWriter } from '../../src/engine/writer.js';
import { startCluster, testObject, type TestCluster } from './helpers.js';

let cluster: TestCluster;
let ref: ResourceRef;
let bare: ResourceRef;

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('gizmos', 'Gizmo');
  bare = await cluster.installCrd('plainthings', 'PlainThing', { statusSubresource: false });
});
afterAll(() => cluster?.stop());

async function create(name: string, finalizers?: string[], resource = ref, kind = 'Gizmo'): Promise<KubeObject> {
  return cluster.api.create(resource, testObject(kind, name, { n: 1 }, finalizers ? { finalizers } : {}));
}

describe('guarded metadata patches', () => {
  test('`test` of an absent array with null passes; a stale view fails with a conflict', async () => {
    const object = await create('g1');
    const writer = new ObjectWriter(cluster.api, ref);
    // Two instances both believe there is no finalizer array yet.
    const first = await cluster.api.patch<KubeObject>(
      ref,
      'g1',
      buildMetadataPatch(object.metadata, { addFinalizers: ['p/a'] }),
      {
        type: 'json',
      },
    );
    expect(first.metadata.finalizers).toEqual(['p/a']);
    const stale = buildMetadataPatch(object.metadata, { addFinalizers: ['p/b'] });
    const error = await cluster.api.patch(ref, 'g1', stale, { type: 'json' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(isConflict(error)).toBe(true);
    // The writer recovers by refetching: nobody's finalizer is lost.
    const written = await writer.patchMetadata(object, { addFinalizers: ['p/b'] });
    expect(written !== 'gone' && written.metadata.finalizers).toEqual(['p/a', 'p/b']);
  });

  test('removal by index never removes a finalizer someone else moved into that index', async () => {
    const object = await create('g2', ['p/a', 'p/b', 'p/c']);
    const writer = new ObjectWriter(cluster.api, ref);
    // Someone removes p/a first; our view still has p/c at index 2.
    await writer.patchMetadata(object, { removeFinalizers: ['p/a'] });
    const stale = buildMetadataPatch(object.metadata, { removeFinalizers: ['p/c'] });
    expect(isConflict(await cluster.api.patch(ref, 'g2', stale, { type: 'json' }).catch((e: unknown) => e))).toBe(true);
    const written = await writer.patchMetadata(object, { removeFinalizers: ['p/c'] });
    expect(written !== 'gone' && written.metadata.finalizers).toEqual(['p/b']);
  });

  test('concurrent writers: 20 instances add their finalizers at once, then remove them at once', async () => {
    const object = await create('g3');
    const ids = Array.from({ length: 20 }, (_, i) => `p/n${i}`);
    const writers = ids.map(() => new ObjectWriter(cluster.api, ref));
    await Promise.all(ids.map((id, i) => writers[i]?.patchMetadata(object, { addFinalizers: [id] })));
    const full = await cluster.api.get<KubeObject>(ref, 'g3');
    expect([...(full.metadata.finalizers ?? [])].sort()).toEqual([...ids].sort());
    await Promise.all(ids.slice(0, 10).map((id, i) => writers[i]?.patchMetadata(full, { removeFinalizers: [id] })));
    const half = await cluster.api.get<KubeObject>(ref, 'g3');
    expect([...(half.metadata.finalizers ?? [])].sort()).toEqual(ids.slice(10).sort());
  });

  test('404 is reported as gone', async () => {
    const object = await create('g4');
    await cluster.api.delete(ref, 'g4');
    const writer = new ObjectWriter(cluster.api, ref);
    expect(await writer.patchMetadata(object, { addFinalizers: ['p/x'] })).toBe('gone');
    expect(await writer.patchStatus(object, { status: { a: 1 } })).toBe('gone');
  });

  test('status goes to the status subresource, or to the main resource when there is none', async () => {
    const withStatus = await create('g5');
    const writer = new ObjectWriter(cluster.api, ref);
    const written = await writer.patchStatus(withStatus, { status: { nodes: { a: { ok: true } } } });
    expect(written !== 'gone' && written.status).toEqual({ nodes: { a: { ok: true } } });
    const plain = await create('p1', undefined, bare, 'PlainThing');
    const plainWriter = new ObjectWriter(cluster.api, bare);
    await plainWriter.patchStatus(plain, { status: { nodes: { a: { ok: true } } } });
    await plainWriter.patchStatus(plain, { status: { nodes: { b: { ok: false } } } });
    const fetched = await cluster.api.get<KubeObject>(bare, 'p1');
    expect(fetched.status).toEqual({ nodes: { a: { ok: true }, b: { ok: false } } });
  });
});
