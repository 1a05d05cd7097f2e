import { describe, expect, test } from 'vitest';
import { assumeContainersCreated, buildMetadataPatch, pointerToken } from '../../src/core/metadata-patch.js';

describe('buildMetadataPatch', () => {
  test('adding the first finalizer guards the absent array', () => {
    expect(buildMetadataPatch({}, { addFinalizers: ['p/a'] })).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: null },
      { op: 'add', path: '/metadata/finalizers', value: ['p/a'] },
    ]);
  });

  test('adding to an existing array appends, never replaces', () => {
    expect(buildMetadataPatch({ finalizers: ['other/x'] }, { addFinalizers: ['p/a'] })).toEqual([
      { op: 'add', path: '/metadata/finalizers/-', value: 'p/a' },
    ]);
  });

  test('adding a present finalizer is a no-op', () => {
    expect(buildMetadataPatch({ finalizers: ['p/a'] }, { addFinalizers: ['p/a'] })).toEqual([]);
  });

  test('removal tests the exact element, highest index first', () => {
    expect(
      buildMetadataPatch({ finalizers: ['p/a', 'x', 'p/b', 'p/a'] }, { removeFinalizers: ['p/a', 'p/b'] }),
    ).toEqual([
      { op: 'test', path: '/metadata/finalizers/3', value: 'p/a' },
      { op: 'remove', path: '/metadata/finalizers/3' },
      { op: 'test', path: '/metadata/finalizers/2', value: 'p/b' },
      { op: 'remove', path: '/metadata/finalizers/2' },
      { op: 'test', path: '/metadata/finalizers/0', value: 'p/a' },
      { op: 'remove', path: '/metadata/finalizers/0' },
    ]);
  });

  test('removing an absent finalizer is a no-op', () => {
    expect(buildMetadataPatch({ finalizers: ['x'] }, { removeFinalizers: ['p/a'] })).toEqual([]);
    expect(buildMetadataPatch({}, { removeFinalizers: ['p/a'] })).toEqual([]);
  });

  test('annotations: set with add (escaped keys), delete with test + remove, skip unchanged', () => {
    const ops = buildMetadataPatch(
      { annotations: { 'p/keep': 'same', 'p/old': 'v', 'p/change': '1' } },
      { annotations: { 'p/keep': 'same', 'p/old': null, 'p/change': '2', 'p/absent': null } },
    );
    expect(ops).toEqual([
      { op: 'add', path: '/metadata/annotations/p~1change', value: '2' },
      { op: 'test', path: '/metadata/annotations/p~1old', value: 'v' },
      { op: 'remove', path: '/metadata/annotations/p~1old' },
    ]);
  });

  test('annotations: creating the map is guarded', () => {
    expect(buildMetadataPatch({}, { annotations: { 'p/a': '1', 'p/b': null } })).toEqual([
      { op: 'test', path: '/metadata/annotations', value: null },
      { op: 'add', path: '/metadata/annotations', value: { 'p/a': '1' } },
    ]);
  });

  test('labels work the same way', () => {
    expect(buildMetadataPatch({ labels: { a: '1' } }, { labels: { b: '2' } })).toEqual([
      { op: 'add', path: '/metadata/labels/b', value: '2' },
    ]);
  });

  test('pointer tokens escape ~ and /', () => {
    expect(pointerToken('a/b~c')).toBe('a~1b~0c');
  });
});

describe('assumeContainersCreated', () => {
  test('a lost race to create the finalizer list is retried as an append', () => {
    const ops = buildMetadataPatch({ annotations: { a: '1' } }, { addFinalizers: ['p/b'] });
    const guess = assumeContainersCreated({ annotations: { a: '1' } }, ops);
    expect(guess).toEqual({ annotations: { a: '1' }, finalizers: [] });
    expect(buildMetadataPatch(guess ?? {}, { addFinalizers: ['p/b'] })).toEqual([
      { op: 'add', path: '/metadata/finalizers/-', value: 'p/b' },
    ]);
  });

  test('absent label and annotation maps are assumed created too', () => {
    const ops = buildMetadataPatch({}, { labels: { l: 'x' }, annotations: { a: 'y' } });
    expect(assumeContainersCreated({}, ops)).toEqual({ labels: {}, annotations: {} });
  });

  test('no guess when the failed patch had no absent guard', () => {
    const ops = buildMetadataPatch({ finalizers: ['p/a'] }, { removeFinalizers: ['p/a'] });
    expect(assumeContainersCreated({ finalizers: ['p/a'] }, ops)).toBeUndefined();
  });
});
