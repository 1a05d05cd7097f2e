import { describe, expect, test } from 'vitest';
import { diffValues, jsonEqual } from '../../src/core/diff.js';
import { getField, hasPathPrefix, parseFieldPath } from '../../src/core/paths.js';

describe('diffValues', () => {
  test('add, change and remove with paths, sorted', () => {
    const ops = diffValues(
      { spec: { gateway: '10.0.0.1', old: true, same: 1 } },
      { spec: { gateway: '10.0.0.2', added: [1], same: 1 } },
    );
    expect(ops).toEqual([
      { op: 'add', path: ['spec', 'added'], new: [1] },
      { op: 'change', path: ['spec', 'gateway'], old: '10.0.0.1', new: '10.0.0.2' },
      { op: 'remove', path: ['spec', 'old'], old: true },
    ]);
  });

  test('arrays compare as whole values', () => {
    expect(diffValues({ d: ['a', 'b'] }, { d: ['a', 'c'] })).toEqual([
      { op: 'change', path: ['d'], old: ['a', 'b'], new: ['a', 'c'] },
    ]);
  });

  test('from nothing is one add at the root', () => {
    expect(diffValues(undefined, { a: 1 })).toEqual([{ op: 'add', path: [], new: { a: 1 } }]);
    expect(diffValues({ a: 1 }, undefined)).toEqual([{ op: 'remove', path: [], old: { a: 1 } }]);
    expect(diffValues({ a: 1 }, { a: 1 })).toEqual([]);
  });

  test('type changes are changes', () => {
    expect(diffValues({ a: { b: 1 } }, { a: 'x' })).toEqual([{ op: 'change', path: ['a'], old: { b: 1 }, new: 'x' }]);
  });

  test('base path prefixes every op', () => {
    expect(diffValues('a', 'b', ['spec', 'gateway'])).toEqual([
      { op: 'change', path: ['spec', 'gateway'], old: 'a', new: 'b' },
    ]);
  });
});

describe('jsonEqual', () => {
  test('deep, key-order independent, undefined members ignored', () => {
    expect(jsonEqual({ a: [1, { b: 2 }], c: undefined }, { a: [1, { b: 2 }] })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
  });
});

describe('field paths', () => {
  test('dotted strings and arrays', () => {
    expect(parseFieldPath('spec.gateway')).toEqual(['spec', 'gateway']);
    expect(parseFieldPath(['metadata', 'labels', 'app.kubernetes.io/name'])).toEqual([
      'metadata',
      'labels',
      'app.kubernetes.io/name',
    ]);
    expect(() => parseFieldPath('spec..x')).toThrow(/invalid field path/);
    expect(() => parseFieldPath([])).toThrow(/invalid field path/);
  });

  test('getField walks objects only', () => {
    const value = { spec: { gateway: '10.0.0.1', list: [{ a: 1 }] } };
    expect(getField(value, ['spec', 'gateway'])).toBe('10.0.0.1');
    expect(getField(value, ['spec', 'missing', 'deeper'])).toBeUndefined();
    expect(getField(value, ['spec', 'list', '0'])).toBeUndefined();
    expect(getField(undefined, ['spec'])).toBeUndefined();
  });

  test('hasPathPrefix', () => {
    expect(hasPathPrefix(['spec', 'a', 'b'], ['spec', 'a'])).toBe(true);
    expect(hasPathPrefix(['spec'], ['spec', 'a'])).toBe(false);
    expect(hasPathPrefix(['spec', 'ab'], ['spec', 'a'])).toBe(false);
  });
});
