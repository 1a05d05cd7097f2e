import { describe, expect, it } from 'vitest';
import { compareRelist } from '../../src/kube/relist.js';
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
