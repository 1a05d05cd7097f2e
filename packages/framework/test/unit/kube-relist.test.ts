import { describe, expect, it } from 'vitest';
import { compareRelist, compareResourceVersions, isListBehind } from '../../src/kube/relist.js';
import type { KubeObject } from '../../src/kube/types.js';

function obj(name: string, resourceVersion: string, uid = `uid-${name}`, namespace?: string): KubeObject {
  return { metadata: { name, namespace, uid, resourceVersion } };
}

function storeOf(...objects: KubeObject[]): Map<string, KubeObject> {
  return new Map(
    objects.map((o) => [o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name, o]),
  );
}

const names = (objects: KubeObject[]): string[] =>
  objects.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`);

describe('compareRelist', () => {
  it('turns everything into upserts on the first list', () => {
    const fresh = [obj('a', '1'), obj('b', '2')];
    const { upserts, deletes, store } = compareRelist(new Map(), fresh);
    expect(names(upserts)).toEqual(['a@1', 'b@2']);
    expect(deletes).toEqual([]);
    expect([...store.keys()]).toEqual(['a', 'b']);
  });

  it('produces nothing when nothing changed', () => {
    const previous = storeOf(obj('a', '1'), obj('b', '2'));
    const { upserts, deletes } = compareRelist(previous, [obj('a', '1'), obj('b', '2')]);
    expect(upserts).toEqual([]);
    expect(deletes).toEqual([]);
  });

  it('upserts changed objects (by resourceVersion) and deletes vanished ones, as last seen', () => {
    const lastSeenC = obj('c', '3');
    const previous = storeOf(obj('a', '1'), obj('b', '2'), lastSeenC);
    const { upserts, deletes, store } = compareRelist(previous, [obj('a', '1'), obj('b', '7'), obj('d', '8')]);
    expect(names(upserts)).toEqual(['b@7', 'd@8']);
    expect(deletes).toEqual([lastSeenC]);
    expect([...store.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect(store.get('b')?.metadata.resourceVersion).toBe('7');
  });

  it('treats a recreated object (same name, new uid) as a delete of the old plus an upsert of the new', () => {
    const old = obj('a', '1', 'uid-old');
    const recreated = obj('a', '9', 'uid-new');
    const { upserts, deletes } = compareRelist(storeOf(old), [recreated]);
    expect(deletes).toEqual([old]);
    expect(upserts).toEqual([recreated]);
  });

  it('keys namespaced objects by namespace/name, so equal names in two namespaces are distinct', () => {
    const previous = storeOf(obj('x', '1', 'u1', 'ns1'), obj('x', '2', 'u2', 'ns2'));
    const { upserts, deletes, store } = compareRelist(previous, [obj('x', '1', 'u1', 'ns1')]);
    expect(upserts).toEqual([]);
    expect(deletes.map((o) => o.metadata.namespace)).toEqual(['ns2']);
    expect([...store.keys()]).toEqual(['ns1/x']);
  });

  it('deletes everything on an empty list and does not modify the previous store', () => {
    const previous = storeOf(obj('a', '1'), obj('b', '2'));
    const { deletes, store } = compareRelist(previous, []);
    expect(names(deletes)).toEqual(['a@1', 'b@2']);
    expect(store.size).toBe(0);
    expect(previous.size).toBe(2);
  });
});

describe('compareRelist with a list older than the store (a lagging watch cache)', () => {
  it('keeps the newer copy the store holds instead of going back to the listed one', () => {
    const seen = obj('a', '20');
    const { upserts, deletes, store } = compareRelist(storeOf(seen), [obj('a', '10')], '15');
    expect(upserts).toEqual([]);
    expect(deletes).toEqual([]);
    expect(store.get('a')).toBe(seen);
  });

  it('keeps a recreated namesake the store saw after the list instead of the deleted original', () => {
    const recreated = obj('a', '30', 'uid-new');
    const { upserts, deletes, store } = compareRelist(storeOf(recreated), [obj('a', '10', 'uid-old')], '15');
    expect(upserts).toEqual([]);
    expect(deletes).toEqual([]);
    expect(store.get('a')).toBe(recreated);
  });

  it('does not take an object written after the list for deleted, but still deletes older ones missing from it', () => {
    const createdAfter = obj('new', '20');
    const deletedBefore = obj('old', '5');
    const { deletes, store } = compareRelist(storeOf(createdAfter, deletedBefore), [], '15');
    expect(deletes).toEqual([deletedBefore]);
    expect(store.get('new')).toBe(createdAfter);
  });

  it('deletes everything missing when resourceVersions are not etcd revisions', () => {
    const { deletes } = compareRelist(storeOf(obj('a', 'opaque-2')), [], 'opaque-1');
    expect(names(deletes)).toEqual(['a@opaque-2']);
  });
});

describe('resourceVersion order', () => {
  it('compares etcd revisions as numbers, beyond 2^53 too, and nothing else', () => {
    expect(compareResourceVersions('9', '10')).toBe(-1);
    expect(compareResourceVersions('10', '9')).toBe(1);
    expect(compareResourceVersions('10', '10')).toBe(0);
    expect(compareResourceVersions('9007199254740993', '9007199254740992')).toBe(1);
    expect(compareResourceVersions('abc', '10')).toBeUndefined();
    expect(compareResourceVersions(undefined, '10')).toBeUndefined();
  });

  it('calls a list behind only when it is provably older than what was seen', () => {
    expect(isListBehind('9', '10')).toBe(true);
    expect(isListBehind('10', '10')).toBe(false);
    expect(isListBehind('11', '10')).toBe(false);
    expect(isListBehind('11', '')).toBe(false);
    expect(isListBehind('x', '10')).toBe(false);
  });
});
