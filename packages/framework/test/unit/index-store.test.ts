import { describe, expect, test } from 'vitest';
import { IndexStore, indexEntries } from '../../src/core/index-store.js';

describe('IndexStore', () => {
  test('values of several objects under one key, several keys per object', () => {
    const index = new IndexStore<string>();
    index.set('ns/a', { red: 'a', round: 'a' });
    index.set('ns/b', { red: 'b' });
    expect(index.get('red')).toEqual(['a', 'b']);
    expect(index.get('round')).toEqual(['a']);
    expect(index.keys().sort()).toEqual(['red', 'round']);
    expect(index.size).toBe(2);
    expect(index.has('red')).toBe(true);
    expect(index.get('blue')).toEqual([]);
  });

  test('an update replaces the object contribution and keeps its place among the values', () => {
    const index = new IndexStore<string>();
    index.set('a', { red: 'a1' });
    index.set('b', { red: 'b1' });
    index.set('a', { red: 'a2' });
    expect(index.get('red')).toEqual(['a2', 'b1']);
    index.set('a', { blue: 'a3' });
    expect(index.get('red')).toEqual(['b1']);
    expect(index.get('blue')).toEqual(['a3']);
  });

  test('a key whose last value goes is removed; undefined and remove take the object out', () => {
    const index = new IndexStore<string>();
    index.set('a', { red: 'a' });
    index.set('a', undefined);
    expect(index.has('red')).toBe(false);
    expect(index.size).toBe(0);
    expect(index.objects).toBe(0);
    index.set('b', new Map([['x', 'b']]));
    index.remove('b');
    index.remove('never-there');
    expect(index.keys()).toEqual([]);
  });

  test('null values are values (keys only); a Map result works like a record', () => {
    const index = new IndexStore<null>();
    index.set('a', { k: null });
    index.set('b', new Map([['k', null]]));
    expect(index.get('k')).toEqual([null, null]);
  });

  test('results that are not records are refused (strings, arrays, promises)', () => {
    expect(() => indexEntries('abc' as never)).toThrow(/record of key -> value/);
    expect(() => indexEntries(['a'] as never)).toThrow(/an array/);
    expect(() => indexEntries(Promise.resolve({}) as never)).toThrow(/synchronous/);
    expect(indexEntries(undefined)).toEqual([]);
  });
});
