import { describe, expect, test } from 'vitest';
import { canonicalJson, computeEssence, digest, isOwnKey } from '../../src/core/essence.js';

const prefix = 'staticroute.opkit.dev';

describe('computeEssence', () => {
  test('keeps spec, labels and annotations', () => {
    const essence = computeEssence(
      { metadata: { labels: { app: 'x' }, annotations: { note: 'y' } }, spec: { a: 1 } },
      prefix,
    );
    expect(essence).toEqual({ spec: { a: 1 }, metadata: { labels: { app: 'x' }, annotations: { note: 'y' } } });
  });

  test('ignores the framework own keys and kubectl last-applied', () => {
    const essence = computeEssence(
      {
        metadata: {
          labels: { [`${prefix}/owned`]: 'true' },
          annotations: {
            [`${prefix}/last-handled-configuration`]: '{}',
            [`${prefix}/progress`]: '{}',
            'kubectl.kubernetes.io/last-applied-configuration': '{...}',
            'other.io/keep': 'yes',
          },
        },
        spec: {},
      },
      prefix,
    );
    expect(essence).toEqual({ spec: {}, metadata: { annotations: { 'other.io/keep': 'yes' } } });
  });

  test('status and server fields are not part of it', () => {
    const withStatus = {
      metadata: { labels: {}, resourceVersion: '5', finalizers: ['x/y'], generation: 3 },
      spec: { a: 1 },
      status: { nodes: {} },
    };
    expect(computeEssence(withStatus, prefix)).toEqual({ spec: { a: 1 } });
  });

  test('a key of a longer domain ending in the prefix is not an own key', () => {
    expect(isOwnKey(`${prefix}/x`, prefix)).toBe(true);
    expect(isOwnKey(`sub.${prefix}/x`, prefix)).toBe(false);
    expect(isOwnKey(`${prefix}.evil/x`, prefix)).toBe(false);
  });
});

describe('canonical JSON and digest', () => {
  test('key order does not matter, array order does', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
    expect(digest({ a: 1, b: 2 })).toBe(digest({ b: 2, a: 1 }));
    expect(digest([1, 2])).not.toBe(digest([2, 1]));
    expect(digest({ a: 1 })).toMatch(/^[0-9a-f]{16}$/);
  });
});
