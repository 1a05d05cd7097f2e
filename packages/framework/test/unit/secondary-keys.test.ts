import { describe, expect, test } from 'vitest';
import { controllerOwnerKeys, groupOf, primaryKeys, unitedKeys } from '../../src/core/secondary-keys.js';

const owner = { group: 'example.com', kind: 'Widget', namespaced: true };

describe('controllerOwnerKeys (owns)', () => {
  const object = (ownerReferences: unknown, namespace: string | undefined = 'ns') => ({
    metadata: { namespace, ownerReferences },
  });

  test('the controller reference of the primary kind and group, any version, in the object namespace', () => {
    expect(
      controllerOwnerKeys(
        object([
          { apiVersion: 'example.com/v2', kind: 'Widget', name: 'w1', controller: true },
          { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w2' },
          { apiVersion: 'other.com/v1', kind: 'Widget', name: 'w3', controller: true },
          { apiVersion: 'example.com/v1', kind: 'Gadget', name: 'w4', controller: true },
        ]),
        owner,
      ),
    ).toEqual(['ns/w1']);
  });

  test('cluster-scoped primaries are keyed by name; a namespaced primary needs a namespaced object', () => {
    const references = [{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', controller: true }];
    expect(controllerOwnerKeys(object(references), { ...owner, namespaced: false })).toEqual(['w']);
    expect(controllerOwnerKeys({ metadata: { ownerReferences: references } }, owner)).toEqual([]);
  });

  test('no or malformed owner references: nothing', () => {
    expect(controllerOwnerKeys(object(undefined), owner)).toEqual([]);
    expect(controllerOwnerKeys(object('x'), owner)).toEqual([]);
    expect(controllerOwnerKeys(object([null, { controller: true }]), owner)).toEqual([]);
  });

  test('core group owners', () => {
    const references = [{ apiVersion: 'v1', kind: 'Service', name: 's', controller: true }];
    expect(controllerOwnerKeys(object(references), { group: '', kind: 'Service', namespaced: true })).toEqual(['ns/s']);
  });
});

describe('primaryKeys (map results)', () => {
  test('one key, several keys, or nothing', () => {
    expect(primaryKeys('a', false, undefined)).toEqual(['a']);
    expect(primaryKeys(['a', 'b'], false, undefined)).toEqual(['a', 'b']);
    expect(primaryKeys(undefined, false, undefined)).toEqual([]);
    expect(primaryKeys(null, true, 'ns')).toEqual([]);
    expect(primaryKeys('', false, undefined)).toEqual([]);
  });

  test('namespaced primaries: names default to the secondary object namespace', () => {
    expect(primaryKeys('a', true, 'ns')).toEqual(['ns/a']);
    expect(primaryKeys('other/a', true, 'ns')).toEqual(['other/a']);
    expect(primaryKeys({ name: 'a' }, true, 'ns')).toEqual(['ns/a']);
    expect(primaryKeys({ name: 'a', namespace: 'x' }, true, 'ns')).toEqual(['x/a']);
    // A cluster-scoped secondary names a namespaced primary only with its namespace.
    expect(primaryKeys('a', true, undefined)).toEqual([]);
    expect(primaryKeys({ name: 'a', namespace: 'x' }, false, 'ns')).toEqual(['a']);
  });

  test('malformed entries are skipped', () => {
    expect(primaryKeys([{ name: '' }, { name: 'b' }] as never, false, undefined)).toEqual(['b']);
  });

  test('unitedKeys keeps the first occurrence; groupOf reads the API group', () => {
    expect(unitedKeys(['a', 'b'], ['b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(groupOf('apps/v1')).toBe('apps');
    expect(groupOf('v1')).toBe('');
  });
});
