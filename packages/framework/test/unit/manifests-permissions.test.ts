/** Merging declared permissions into rules, and comparing sets of rules exactly. */
import { describe, expect, test } from 'vitest';
import {
  compareGrants,
  grantsOfDerived,
  grantsOfRules,
  mergePermissions,
  permission,
  type PermissionDeclaration,
} from '../../src/manifests/permissions.js';

const WIDGETS = { group: 'example.com', plural: 'widgets' };
const LEASES = { group: 'coordination.k8s.io', plural: 'leases' };

describe('mergePermissions', () => {
  test('one rule per resource, verbs merged in Kubernetes order, duplicates dropped', () => {
    const merged = mergePermissions([
      permission(WIDGETS, ['watch', 'patch']),
      permission(WIDGETS, ['list', 'get', 'watch']),
      permission(WIDGETS, ['patch'], { subresource: 'status' }),
    ]);
    expect(merged).toEqual({
      cluster: [
        { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: ['example.com'], resources: ['widgets/status'], verbs: ['patch'] },
      ],
      namespaced: {},
    });
  });

  test('namespaced grants go to their namespace; named and unnamed grants are separate rules', () => {
    const merged = mergePermissions([
      permission(LEASES, ['create'], { namespace: 'ops' }),
      permission(LEASES, ['get', 'patch'], { namespace: 'ops', resourceNames: ['b', 'a'] }),
      { group: '', resource: 'events', verbs: ['create', 'patch'], namespace: 'default' },
    ]);
    expect(merged.cluster).toEqual([]);
    expect(merged.namespaced).toEqual({
      default: [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }],
      ops: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: ['a', 'b'],
          verbs: ['get', 'patch'],
        },
      ],
    });
  });

  test('a grant covered by a wider one is dropped: cluster-wide covers namespaced, unnamed covers named', () => {
    const merged = mergePermissions([
      permission(LEASES, ['get', 'patch'], { namespace: 'ops', resourceNames: ['lease'] }),
      permission(LEASES, ['get'], { resourceNames: ['lease'] }),
      permission(WIDGETS, ['get'], { resourceNames: ['w1'] }),
      permission(WIDGETS, ['get']),
    ]);
    expect(merged).toEqual({
      cluster: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['lease'], verbs: ['get'] },
        { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get'] },
      ],
      // `patch` is not covered cluster-wide, so it stays in the namespace.
      namespaced: {
        ops: [
          { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['lease'], verbs: ['patch'] },
        ],
      },
    });
  });
});

describe('compareGrants', () => {
  const declared: PermissionDeclaration[] = [
    permission(WIDGETS, ['list', 'watch']),
    permission(LEASES, ['create'], { namespace: 'ops' }),
  ];
  const derived = mergePermissions(declared);

  test('agrees with rules written differently but granting the same', () => {
    const written = [
      { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['watch'] },
      { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['list', 'watch'] },
    ];
    const actual = [
      ...grantsOfRules(written, undefined),
      ...grantsOfRules([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] }], 'ops'),
    ];
    expect(compareGrants(grantsOfDerived(derived), actual)).toEqual({ missing: [], extra: [] });
  });

  test('names each missing and each extra grant, with its place', () => {
    const actual = [
      ...grantsOfRules([{ apiGroups: ['example.com'], resources: ['widgets'], verbs: ['list', 'delete'] }], undefined),
      ...grantsOfRules(
        [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['x'], verbs: ['create'] }],
        'ops',
      ),
    ];
    expect(compareGrants(grantsOfDerived(derived), actual)).toEqual({
      missing: ['watch on example.com/widgets cluster-wide', 'create on coordination.k8s.io/leases in namespace ops'],
      extra: [
        'delete on example.com/widgets cluster-wide',
        'create on coordination.k8s.io/leases [x] in namespace ops',
      ],
    });
  });

  test('a namespaced grant is not granted by the same rule in another namespace', () => {
    const actual = grantsOfRules(
      [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] }],
      'dev',
    );
    expect(compareGrants(grantsOfDerived(mergePermissions([declared[1]!])), actual)).toEqual({
      missing: ['create on coordination.k8s.io/leases in namespace ops'],
      extra: ['create on coordination.k8s.io/leases in namespace dev'],
    });
  });
});
