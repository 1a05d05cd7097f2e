/**
 * The operator's pure decisions: the desired ConfigMap, ownership, drift, the update patch, the Ready condition,
 * change summaries, tuning and permission names.
 */
import { describe, expect, test } from 'vitest';
import { derivePermissions } from 'opkit';
import { describePermission, permissionsIn } from '../../src/access.js';
import { ConfigTemplateOperator } from '../../src/operator.js';
import { readyCondition, sameConditions, specChanges, withReady } from '../../src/conditions.js';
import { dataChanges, describeOwner, desiredConfigMap, isInSync, isOwnedBy, syncPatch } from '../../src/configmap.js';
import { DEFAULT_TUNING, readTuning } from '../../src/tuning.js';
import type { ConfigMap, Condition } from '../../src/types.js';

const owner = { name: 'web', namespace: 'demo', uid: 'uid-1' };

function existing(overrides: Partial<ConfigMap['metadata']> = {}, data?: Record<string, string>): ConfigMap {
  return {
    metadata: { name: 'web-config', namespace: 'demo', uid: 'cm-uid', resourceVersion: '42', ...overrides },
    ...(data ? { data } : {}),
  };
}

describe('desired ConfigMap and ownership', () => {
  test('the desired ConfigMap carries the data, our labels and a controller owner reference', () => {
    expect(desiredConfigMap(owner, 'web-config', { a: '1' })).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'web-config',
        namespace: 'demo',
        labels: {
          'app.kubernetes.io/managed-by': 'opkit-example-configmap',
          'examples.opkit.dev/config-template': 'web',
        },
        ownerReferences: [
          { apiVersion: 'examples.opkit.dev/v1', kind: 'ConfigTemplate', name: 'web', uid: 'uid-1', controller: true },
        ],
      },
      data: { a: '1' },
    });
  });

  test('ownership is by uid only: same name or our labels are not enough', () => {
    const ours = desiredConfigMap(owner, 'web-config', {});
    expect(isOwnedBy(ours, 'uid-1')).toBe(true);
    // A template of the same name, deleted and re-created, has another uid.
    expect(isOwnedBy(ours, 'uid-2')).toBe(false);
    expect(isOwnedBy(existing({ labels: ours.metadata.labels }), 'uid-1')).toBe(false);
    expect(isOwnedBy(existing({ ownerReferences: 'garbage' }), 'uid-1')).toBe(false);
  });

  test('the owner description names the controller, else the first owner, else says there is none', () => {
    const refs = [
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'd', uid: 'u1' },
      { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'u2', controller: true },
    ];
    expect(describeOwner(existing({ ownerReferences: refs }))).toBe('owned by Pod/p (uid u2)');
    expect(describeOwner(existing({ ownerReferences: refs.slice(0, 1) }))).toBe('owned by Deployment/d (uid u1)');
    expect(describeOwner(existing())).toBe('not owned by anything');
  });
});

describe('drift and the update patch', () => {
  const desired = desiredConfigMap(owner, 'web-config', { a: '1', b: '2' });
  const labels = desired.metadata.labels;

  test('in sync: same data and our labels (extra labels of others are fine)', () => {
    expect(isInSync(existing({ labels: { ...labels, team: 'x' } }, { b: '2', a: '1' }), desired)).toBe(true);
  });

  test('out of sync: a changed, missing or extra key, no data, or a missing label', () => {
    expect(isInSync(existing({ labels }, { a: '1', b: '3' }), desired)).toBe(false);
    expect(isInSync(existing({ labels }, { a: '1' }), desired)).toBe(false);
    expect(isInSync(existing({ labels }, { a: '1', b: '2', c: '3' }), desired)).toBe(false);
    expect(isInSync(existing({ labels }), desired)).toBe(false);
    expect(isInSync(existing({}, { a: '1', b: '2' }), desired)).toBe(false);
  });

  test('the patch is guarded by resourceVersion, replaces data whole and merges labels', () => {
    expect(syncPatch(existing({ labels: { team: 'x' } }, { a: '0', stale: 'y' }), desired)).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/data', value: { a: '1', b: '2' } },
      { op: 'add', path: '/metadata/labels', value: { team: 'x', ...labels } },
    ]);
  });

  test('data changes are listed by kind, sorted', () => {
    expect(dataChanges({ a: '1', b: '2', z: '0' }, { b: '3', a: '1', c: '4', d: '' })).toEqual({
      added: ['c', 'd'],
      changed: ['b'],
      removed: ['z'],
    });
  });
});

describe('Ready condition', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T01:00:00Z');

  test('set for the first time: transition now, with the observed generation', () => {
    expect(withReady(undefined, { status: 'True', reason: 'Rendered', message: 'ok' }, 3, t0)).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Rendered',
        message: 'ok',
        lastTransitionTime: t0.toISOString(),
        observedGeneration: 3,
      },
    ]);
  });

  test('same status again keeps the transition time, so an unchanged state compares equal', () => {
    const first = withReady(undefined, { status: 'False', reason: 'Conflict', message: 'm' }, 1, t0);
    const again = withReady(first, { status: 'False', reason: 'Conflict', message: 'm' }, 1, t1);
    expect(sameConditions(first, again)).toBe(true);
    const otherReason = withReady(first, { status: 'False', reason: 'InvalidTemplate', message: 'n' }, 2, t1);
    expect(readyCondition(otherReason)).toMatchObject({
      reason: 'InvalidTemplate',
      lastTransitionTime: t0.toISOString(),
    });
    expect(sameConditions(first, otherReason)).toBe(false);
  });

  test('a flip of status moves the transition time; other condition types are kept', () => {
    const other: Condition = { type: 'Other', status: 'True', reason: 'R', message: '', lastTransitionTime: 'x' };
    const before = withReady([other], { status: 'False', reason: 'Conflict', message: 'm' }, 1, t0);
    const after = withReady(before, { status: 'True', reason: 'Rendered', message: 'ok' }, 1, t1);
    expect(after).toEqual([other, expect.objectContaining({ type: 'Ready', lastTransitionTime: t1.toISOString() })]);
  });

  test('condition lists compare field by field, whatever the key order', () => {
    const a: Condition = { type: 'Ready', status: 'True', reason: 'R', message: 'm', lastTransitionTime: 't' };
    const b = JSON.parse('{"lastTransitionTime":"t","message":"m","reason":"R","status":"True","type":"Ready"}');
    expect(sameConditions([a], [b])).toBe(true);
    expect(sameConditions([a], [])).toBe(false);
    expect(sameConditions(undefined, [])).toBe(true);
  });
});

describe('change summaries from ctx.diff', () => {
  test('spec paths with their operation; label and annotation changes do not count', () => {
    expect(
      specChanges([
        { op: 'add', path: ['metadata', 'labels', 'team'], new: 'x' },
        { op: 'change', path: ['spec', 'values', 'port'], old: '1', new: '2' },
        { op: 'add', path: ['spec', 'data', 'extra'], new: 'e' },
        { op: 'remove', path: ['spec', 'data', 'old'], old: 'o' },
      ]),
    ).toEqual(['spec.values.port changed', 'spec.data.extra added', 'spec.data.old removed']);
    expect(specChanges([{ op: 'change', path: ['metadata', 'annotations', 'a'], old: '1', new: '2' }])).toEqual([]);
  });
});

describe('tuning', () => {
  test('defaults when unset or empty; values in ms otherwise', () => {
    expect(readTuning({})).toEqual(DEFAULT_TUNING);
    expect(readTuning({ CONFIGTEMPLATE_CONFLICT_RETRY_MS: '' })).toEqual(DEFAULT_TUNING);
    expect(readTuning({ CONFIGTEMPLATE_CONFLICT_RETRY_MS: '250' })).toEqual({ conflictRetryMs: 250 });
  });

  test('malformed values fail loudly instead of meaning something surprising', () => {
    for (const bad of ['0', '-5', '1.5', 'fast', '1e3x']) {
      expect(() => readTuning({ CONFIGTEMPLATE_CONFLICT_RETRY_MS: bad })).toThrow(/CONFIGTEMPLATE_CONFLICT_RETRY_MS/);
    }
  });
});

describe('permissions', () => {
  test('derived from the class, in the watched namespace; named the way kubectl auth can-i reads them', () => {
    const derived = derivePermissions({ operators: [ConfigTemplateOperator], settings: { namespaces: ['demo'] } });
    expect(permissionsIn(derived, undefined)).toEqual([]);
    expect(permissionsIn(derived, 'demo').map(describePermission)).toEqual([
      'get examples.opkit.dev/configtemplates',
      'list examples.opkit.dev/configtemplates',
      'watch examples.opkit.dev/configtemplates',
      'patch examples.opkit.dev/configtemplates',
      'patch examples.opkit.dev/configtemplates/status',
      'get configmaps',
      'list configmaps',
      'watch configmaps',
      'create configmaps',
      'patch configmaps',
      'delete configmaps',
      'create events',
      'patch events',
    ]);
  });
});
