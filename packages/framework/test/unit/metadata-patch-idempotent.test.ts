/**
 * Finalizer patches that are retried after a response was lost: the pure builder's guards, and which failures leave
 * the outcome of a write unknown. The same patches against the real API server: test/integration/finalizers-idempotent.
 */
import { describe, expect, test } from 'vitest';
import { buildMetadataPatch } from '../../src/core/metadata-patch.js';
import { outcomeUnknown } from '../../src/engine/writer.js';
import { ApiError } from '../../src/kube/types.js';

describe('buildMetadataPatch with guardAppends (a retry after an unknown outcome)', () => {
  test('an append to an existing array tests the whole array as last seen, then appends', () => {
    const stale = { finalizers: ['other/x'] };
    expect(buildMetadataPatch(stale, { addFinalizers: ['p/a'] }, { guardAppends: true })).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: ['other/x'] },
      { op: 'add', path: '/metadata/finalizers/-', value: 'p/a' },
    ]);
  });

  test('after the guard failed, the patch rebuilt from a fresh read (finalizer present) is empty', () => {
    const fresh = { finalizers: ['other/x', 'p/a'] };
    expect(buildMetadataPatch(fresh, { addFinalizers: ['p/a'] }, { guardAppends: true })).toEqual([]);
  });

  test('the guard comes before removals, which change the array within the patch', () => {
    expect(
      buildMetadataPatch(
        { finalizers: ['p/old', 'other/x'] },
        { addFinalizers: ['p/new'], removeFinalizers: ['p/old'] },
        { guardAppends: true },
      ),
    ).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: ['p/old', 'other/x'] },
      { op: 'test', path: '/metadata/finalizers/0', value: 'p/old' },
      { op: 'remove', path: '/metadata/finalizers/0' },
      { op: 'add', path: '/metadata/finalizers/-', value: 'p/new' },
    ]);
  });

  test('creating the array is guarded already (absent), and removals alone are guarded by their element', () => {
    expect(buildMetadataPatch({}, { addFinalizers: ['p/a'] }, { guardAppends: true })).toEqual(
      buildMetadataPatch({}, { addFinalizers: ['p/a'] }),
    );
    expect(
      buildMetadataPatch({ finalizers: ['p/a', 'x'] }, { removeFinalizers: ['p/a'] }, { guardAppends: true }),
    ).toEqual(buildMetadataPatch({ finalizers: ['p/a', 'x'] }, { removeFinalizers: ['p/a'] }));
  });

  test('the guard is a copy: later changes to the metadata object do not change the patch', () => {
    const finalizers = ['other/x'];
    const ops = buildMetadataPatch({ finalizers }, { addFinalizers: ['p/a'] }, { guardAppends: true });
    finalizers.push('p/a');
    expect(ops[0]).toEqual({ op: 'test', path: '/metadata/finalizers', value: ['other/x'] });
  });

  test('without the option, appends stay unguarded: concurrent appends of other instances never conflict', () => {
    expect(buildMetadataPatch({ finalizers: ['other/x'] }, { addFinalizers: ['p/a'] })).toEqual([
      { op: 'add', path: '/metadata/finalizers/-', value: 'p/a' },
    ]);
  });
});

describe('outcomeUnknown', () => {
  test('5xx and transport errors may have been applied', () => {
    expect(outcomeUnknown(new ApiError(504, 'Gateway Timeout'))).toBe(true);
    expect(outcomeUnknown(new ApiError(500, 'etcdserver: request timed out'))).toBe(true);
    expect(outcomeUnknown(new ApiError(503, 'Service Unavailable'))).toBe(true);
    expect(outcomeUnknown(new Error('socket hang up'))).toBe(true);
  });

  test("the API server's refusals (4xx) were not applied", () => {
    for (const status of [400, 403, 404, 409, 422, 429]) {
      expect(outcomeUnknown(new ApiError(status, 'refused'))).toBe(false);
    }
  });
});
