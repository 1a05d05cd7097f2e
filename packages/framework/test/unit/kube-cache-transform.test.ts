import { describe, expect, it } from 'vitest';
import type { WatchedObject } from '../../src/decorators/options.js';
import { compareRelist } from '../../src/kube/relist.js';
import { keepsIdentity, stripManagedFields } from '../../src/kube/transform.js';
import type { KubeObject } from '../../src/kube/types.js';

/** An object as the API server sends a custom resource: keys sorted, managedFields in the middle of the metadata. */
function served(): KubeObject {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: {
      annotations: { 'opkit.dev/last-handled-configuration': '{"spec":{"size":1}}' },
      creationTimestamp: '2026-01-01T00:00:00Z',
      finalizers: ['opkit.dev/finalizer'],
      generation: 3,
      labels: { app: 'demo' },
      managedFields: [
        {
          apiVersion: 'example.com/v1',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:spec': { '.': {}, 'f:size': {} } },
          manager: 'kubectl',
          operation: 'Update',
          time: '2026-01-01T00:00:00Z',
        },
      ],
      name: 'w1',
      namespace: 'ns',
      resourceVersion: '42',
      uid: 'uid-1',
    },
    spec: { size: 1 },
    status: { phase: 'Ready' },
  };
}

describe('stripManagedFields', () => {
  it('drops metadata.managedFields and keeps everything else', () => {
    const object = served();
    const stripped = stripManagedFields(object);
    expect(stripped.metadata).not.toHaveProperty('managedFields');
    const { managedFields: _, ...metadata } = object.metadata;
    expect(stripped).toEqual({ ...object, metadata });
  });

  it('copies the metadata instead of deleting from it: the original is untouched', () => {
    const object = served();
    const stripped = stripManagedFields(object);
    expect(object.metadata.managedFields).toHaveLength(1);
    expect(stripped.metadata).not.toBe(object.metadata);
    // The rest is shared, not copied: the transform costs one metadata object per event.
    expect(stripped.spec).toBe(object.spec);
    expect(stripped.metadata.annotations).toBe(object.metadata.annotations);
  });

  it('returns an object without managedFields as it is', () => {
    const { managedFields: _, ...metadata } = served().metadata;
    const object = { ...served(), metadata: metadata as KubeObject['metadata'] };
    expect(stripManagedFields(object)).toBe(object);
  });
});

describe('keepsIdentity', () => {
  it('accepts a transform that drops fields the framework does not need', () => {
    const object = served();
    const { labels: _, ...metadata } = stripManagedFields(object).metadata;
    expect(keepsIdentity(object, { ...object, status: undefined, metadata })).toBe(true);
    // Equal finalizers in a copied array are fine.
    expect(
      keepsIdentity(object, { ...object, metadata: { ...object.metadata, finalizers: ['opkit.dev/finalizer'] } }),
    ).toBe(true);
  });

  it.each([
    ['name', { name: 'other' }],
    ['uid', { uid: 'uid-2' }],
    ['resourceVersion', { resourceVersion: undefined }],
    ['generation', { generation: 4 }],
    ['deletionTimestamp', { deletionTimestamp: '2026-01-02T00:00:00Z' }],
    ['finalizers', { finalizers: [] }],
  ])('refuses a result whose %s differs', (_field, change) => {
    const object = served();
    expect(keepsIdentity(object, { ...object, metadata: { ...object.metadata, ...change } })).toBe(false);
  });

  it('refuses a result without metadata', () => {
    expect(keepsIdentity(served(), undefined)).toBe(false);
    expect(keepsIdentity(served(), { spec: {} })).toBe(false);
  });
});

describe('compareRelist keeps cached copies of unchanged objects', () => {
  it('stores the previous copy for an unchanged object and the fresh one for a changed object', () => {
    const cachedA = { metadata: { name: 'a', uid: 'ua', resourceVersion: '1' } };
    const cachedB = { metadata: { name: 'b', uid: 'ub', resourceVersion: '2' } };
    const freshA = { metadata: { name: 'a', uid: 'ua', resourceVersion: '1' } };
    const freshB = { metadata: { name: 'b', uid: 'ub', resourceVersion: '3' } };
    const { store, upserts } = compareRelist(
      new Map([
        ['a', cachedA],
        ['b', cachedB],
      ]),
      [freshA, freshB],
    );
    expect(store.get('a')).toBe(cachedA);
    expect(store.get('b')).toBe(freshB);
    expect(upserts).toEqual([freshB]);
    expect([...store.keys()]).toEqual(['a', 'b']);
  });
});

describe('the README cacheTransform example', () => {
  const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
  /** Drops managedFields, as the default does, and kubectl's copy of the last applied manifest. */
  function slim(object: WatchedObject): WatchedObject {
    const { managedFields: _, ...metadata } = object.metadata;
    if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
      const { [LAST_APPLIED]: __, ...annotations } = metadata.annotations;
      metadata.annotations = annotations;
    }
    return { ...object, metadata };
  }

  it('drops managedFields and the last-applied annotation, keeps the identity and the other annotations', () => {
    const object = served();
    object.metadata.annotations = { ...object.metadata.annotations, [LAST_APPLIED]: '{"spec":{"size":1}}' };
    const result = slim(object) as KubeObject;
    expect(result.metadata).not.toHaveProperty('managedFields');
    expect(result.metadata.annotations).toEqual({ 'opkit.dev/last-handled-configuration': '{"spec":{"size":1}}' });
    expect(object.metadata.annotations[LAST_APPLIED]).toBeDefined();
    expect(keepsIdentity(object, result)).toBe(true);
  });

  it('adds no annotations map to an object without one', () => {
    const { annotations: _, ...metadata } = served().metadata;
    const result = slim({ ...served(), metadata: metadata as KubeObject['metadata'] });
    expect(result.metadata).not.toHaveProperty('annotations');
  });
});
