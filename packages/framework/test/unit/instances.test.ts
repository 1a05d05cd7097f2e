import { describe, expect, test } from 'vitest';
import { instanceFinalizer } from '../../src/core/finalizers.js';
import { deadInstanceFinalizers, deadStatusEntries } from '../../src/core/instances.js';
import { compareResourceVersions, pickFreshest } from '../../src/core/versions.js';

const prefix = 'sr.opkit.dev';
const longNode = `node-${'x'.repeat(80)}`;

describe('dead instances', () => {
  test('finalizers of instances without a live node, hashed names included; foreign ones untouched', () => {
    const finalizers = [
      instanceFinalizer(prefix, 'alive'),
      instanceFinalizer(prefix, 'dead'),
      instanceFinalizer(prefix, longNode),
      'kubernetes.io/pv-protection',
    ];
    expect(deadInstanceFinalizers(finalizers, prefix, ['alive', longNode])).toEqual([
      instanceFinalizer(prefix, 'dead'),
    ]);
    expect(deadInstanceFinalizers(finalizers, prefix, ['alive'])).toEqual([
      instanceFinalizer(prefix, 'dead'),
      instanceFinalizer(prefix, longNode),
    ]);
    expect(deadInstanceFinalizers(undefined, prefix, [])).toEqual([]);
  });

  test('status entries of instances without a live node', () => {
    const status = { nodes: { alive: {}, dead: {} }, summary: 'x' };
    expect(deadStatusEntries(status, 'nodes', ['alive'])).toEqual(['dead']);
    expect(deadStatusEntries(undefined, 'nodes', [])).toEqual([]);
    expect(deadStatusEntries({ nodes: 'weird' }, 'nodes', [])).toEqual([]);
  });
});

describe('freshest copy', () => {
  const at = (resourceVersion: string, uid = 'u1') => ({ metadata: { resourceVersion, uid } });

  test('integer resourceVersions compare numerically', () => {
    expect(compareResourceVersions('10', '9')).toBeGreaterThan(0);
    expect(compareResourceVersions('9', '10')).toBeLessThan(0);
    expect(compareResourceVersions('7', '7')).toBe(0);
    expect(compareResourceVersions('abc', '1')).toBeUndefined();
    expect(compareResourceVersions('01', '1')).toBeUndefined();
  });

  test('own write wins over an older cache, the cache wins when newer', () => {
    expect(pickFreshest(at('5'), at('7'), false)).toEqual(at('7'));
    expect(pickFreshest(at('8'), at('7'), false)).toEqual(at('8'));
    expect(pickFreshest(at('5'), undefined, false)).toEqual(at('5'));
  });

  test('deleted or recreated objects: the cache wins', () => {
    expect(pickFreshest(undefined, at('7'), false)).toBeUndefined();
    expect(pickFreshest(at('3', 'u2'), at('7', 'u1'), false)).toEqual(at('3', 'u2'));
  });

  test('opaque versions: own write until confirmed', () => {
    expect(pickFreshest(at('a'), at('b'), false)).toEqual(at('b'));
    expect(pickFreshest(at('a'), at('b'), true)).toEqual(at('a'));
  });
});
