import { describe, expect, test } from 'vitest';
import { Operator, stripManagedFields, type CacheTransform, type KubeObject } from '../../src/index.js';

describe('package root: cache transforms', () => {
  test('stripManagedFields serves as a CacheTransform and as an @Operator cacheTransform to build on', () => {
    const asWatcherTransform: CacheTransform = stripManagedFields;
    const object: KubeObject = {
      metadata: { name: 'a', uid: 'u', resourceVersion: '1', managedFields: [{ manager: 'm' }], labels: { x: 'y' } },
    };
    expect(asWatcherTransform(object).metadata).toEqual({
      name: 'a',
      uid: 'u',
      resourceVersion: '1',
      labels: { x: 'y' },
    });

    @Operator({
      group: 'example.com',
      version: 'v1',
      plural: 'exportwidgets',
      kind: 'Exportwidget',
      cacheTransform: (o) => ({ ...stripManagedFields(o), status: undefined }),
    })
    class Built {}
    @Operator({
      group: 'example.com',
      version: 'v1',
      plural: 'exportwidgets2',
      kind: 'Exportwidget2',
      cacheTransform: stripManagedFields,
    })
    class Plain {}
    expect([Built, Plain]).toHaveLength(2);
  });
});
