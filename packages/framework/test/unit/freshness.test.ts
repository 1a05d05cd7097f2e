import { describe, expect, test } from 'vitest';
import { FreshnessTracker, keepWritten } from '../../src/engine/freshness.js';
import type { KubeObject } from '../../src/kube/types.js';

function object(resourceVersion: string, uid = 'u1', extra: Partial<KubeObject['metadata']> = {}): KubeObject {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: { name: 'w', namespace: 'ns', uid, resourceVersion, ...extra },
  } as KubeObject;
}

describe('FreshnessTracker', () => {
  test('a write the cache has not seen yet is handled instead of the older cached copy, until the watch delivers it', () => {
    const tracker = new FreshnessTracker();
    const cached = object('10');
    const written = object('11');
    tracker.recordWrite('ns/w', written, cached);
    expect(tracker.pick('ns/w', cached)).toBe(written);
    expect(tracker.size).toBe(1);
    const delivered = object('11');
    tracker.observe('ns/w', delivered);
    expect(tracker.size).toBe(0);
    expect(tracker.pick('ns/w', delivered)).toBe(delivered);
  });

  test('the watch delivered the write before its response arrived: nothing is remembered', () => {
    const tracker = new FreshnessTracker();
    // Same version, and a newer one (someone else wrote right after us).
    for (const cachedVersion of ['11', '12']) {
      const cached = object(cachedVersion);
      tracker.recordWrite('ns/w', object('11'), cached);
      expect(tracker.size).toBe(0);
      expect(tracker.pick('ns/w', cached)).toBe(cached);
    }
  });

  test('a cached copy of another object under the same name does not cancel the record', () => {
    const tracker = new FreshnessTracker();
    tracker.recordWrite('ns/w', object('11'), object('50', 'u0'));
    expect(tracker.size).toBe(1);
  });

  test('a later version delivered by the watch ends the record (no entry waits for a version it skipped)', () => {
    const tracker = new FreshnessTracker();
    tracker.recordWrite('ns/w', object('11'), object('10'));
    tracker.observe('ns/w', object('10'));
    expect(tracker.size).toBe(1);
    tracker.observe('ns/w', object('13'));
    expect(tracker.size).toBe(0);
  });

  test('a new object under the same name ends the record', () => {
    const tracker = new FreshnessTracker();
    tracker.recordWrite('ns/w', object('11'), object('10'));
    tracker.observe('ns/w', object('3', 'u2'));
    expect(tracker.size).toBe(0);
  });

  test('a pick that finds the cache caught up drops the record', () => {
    const tracker = new FreshnessTracker();
    tracker.recordWrite('ns/w', object('11'), object('10'));
    const cached = object('12');
    expect(tracker.pick('ns/w', cached)).toBe(cached);
    expect(tracker.size).toBe(0);
  });

  test('non-integer versions: remembered until that exact version is delivered', () => {
    const tracker = new FreshnessTracker();
    const written = object('b');
    tracker.recordWrite('ns/w', written, object('a'));
    expect(tracker.pick('ns/w', object('a'))).toBe(written);
    tracker.observe('ns/w', object('c'));
    expect(tracker.size).toBe(1);
    tracker.observe('ns/w', object('b'));
    expect(tracker.size).toBe(0);
    tracker.recordWrite('ns/w', object('d'), object('d'));
    expect(tracker.size).toBe(0);
  });

  test('entries do not accumulate when every write races ahead of its response', () => {
    const tracker = new FreshnessTracker();
    for (let i = 0; i < 1000; i += 1) {
      const key = `ns/w${i}`;
      const written = object(String(100 + i), `u${i}`);
      // The watch event for the write is applied first...
      tracker.observe(key, written);
      // ...then the patch response arrives, with the cache already holding that version.
      tracker.recordWrite(key, written, written);
    }
    expect(tracker.size).toBe(0);
  });

  test('relist and forget clear records', () => {
    const tracker = new FreshnessTracker();
    tracker.recordWrite('ns/a', object('11'), object('10'));
    tracker.recordWrite('ns/b', object('11'), object('10'));
    tracker.forget('ns/a');
    expect(tracker.size).toBe(1);
    tracker.resynced();
    expect(tracker.size).toBe(0);
  });
});

describe('keepWritten', () => {
  const managedFields = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }];

  test('the default transform drops managedFields from a write response', () => {
    const written = object('11', 'u1', { managedFields, finalizers: ['f'] } as Partial<KubeObject['metadata']>);
    const kept = keepWritten(written, undefined);
    expect(kept.metadata.managedFields).toBeUndefined();
    expect(kept.metadata.finalizers).toEqual(['f']);
    expect(written.metadata.managedFields).toBe(managedFields);
  });

  test("the operator's transform is applied", () => {
    const kept = keepWritten({ ...object('11'), status: { big: 'x' } }, ({ status: _status, ...rest }) => rest);
    expect(kept.status).toBeUndefined();
  });

  test('a transform that throws or changes the identity leaves the response untransformed', () => {
    const written = object('11');
    expect(
      keepWritten(written, () => {
        throw new Error('boom');
      }),
    ).toBe(written);
    expect(keepWritten(written, (o) => ({ ...o, metadata: { ...o.metadata, resourceVersion: '1' } }))).toBe(written);
  });
});
