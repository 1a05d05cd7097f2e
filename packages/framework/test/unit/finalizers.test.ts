import { describe, expect, test } from 'vitest';
import {
  assertValidPrefix,
  clusterFinalizer,
  instanceFinalizer,
  instanceNamePart,
  isOwnFinalizer,
  qualifiedNameProblems,
} from '../../src/core/finalizers.js';

const prefix = 'staticroute.opkit.dev';

describe('finalizer names', () => {
  test('cluster scope has one finalizer', () => {
    expect(clusterFinalizer(prefix)).toBe('staticroute.opkit.dev/finalizer');
  });

  test('short node names are used verbatim', () => {
    expect(instanceFinalizer(prefix, 'worker-1')).toBe('staticroute.opkit.dev/worker-1');
    expect(instanceFinalizer(prefix, 'ip-10-0-0-1.ec2.internal')).toBe(
      'staticroute.opkit.dev/ip-10-0-0-1.ec2.internal',
    );
  });

  test('long ids are hashed deterministically into valid names', () => {
    const long = `node-${'x'.repeat(70)}.example.com`;
    const name = instanceFinalizer(prefix, long);
    expect(name).toBe(instanceFinalizer(prefix, long));
    expect(name).toMatch(/^staticroute\.opkit\.dev\/h-[0-9a-f]{40}$/);
    expect(qualifiedNameProblems(name)).toEqual([]);
    expect(instanceFinalizer(prefix, `${long}2`)).not.toBe(name);
  });

  test('ids with characters a name part cannot hold are hashed', () => {
    for (const id of ['Node_With:colon', '-leading', 'trailing.', 'has space']) {
      const name = instanceFinalizer(prefix, id);
      expect(qualifiedNameProblems(name)).toEqual([]);
      expect(name).toMatch(/\/h-[0-9a-f]{40}$/);
    }
  });

  test('an id that looks like a hash is hashed too, so no two ids share a name', () => {
    const long = 'n'.repeat(80);
    const hashed = instanceNamePart(long);
    expect(instanceNamePart(hashed)).not.toBe(hashed);
  });

  test('every name is valid for 63 and 64 character ids', () => {
    for (const id of ['a'.repeat(63), 'a'.repeat(64), 'a', '0-0']) {
      expect(qualifiedNameProblems(instanceFinalizer(prefix, id))).toEqual([]);
    }
    expect(instanceNamePart('a'.repeat(63))).toBe('a'.repeat(63));
    expect(instanceNamePart('a'.repeat(64))).not.toBe('a'.repeat(64));
  });

  test('qualified name validation', () => {
    expect(qualifiedNameProblems('example.com/ok')).toEqual([]);
    expect(qualifiedNameProblems('Example.com/ok')).not.toEqual([]);
    expect(qualifiedNameProblems(`example.com/${'a'.repeat(64)}`)).not.toEqual([]);
    expect(qualifiedNameProblems('example.com/')).not.toEqual([]);
    expect(() => assertValidPrefix('Bad_Prefix')).toThrow(/invalid persistence prefix/);
    expect(() => assertValidPrefix('opkit.dev')).not.toThrow();
  });

  test('own finalizers are recognised by prefix', () => {
    expect(isOwnFinalizer('staticroute.opkit.dev/worker-1', prefix)).toBe(true);
    expect(isOwnFinalizer('kopf.zalando.org/KopfFinalizerMarker', prefix)).toBe(false);
  });
});
