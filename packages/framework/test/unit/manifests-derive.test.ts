/** Rules derived from decorators, settings and the components' declarations; RBAC manifests from them and back. */
import { describe, expect, test } from 'vitest';
import {
  Daemon,
  OnCreate,
  OnDelete,
  OnEvent,
  OnSecondary,
  OnStartup,
  OnTimer,
  Operator,
} from '../../src/decorators/index.js';
import { LeaderElector } from '../../src/kube/leader-election.js';
import { derivePermissions } from '../../src/manifests/derive.js';
import { mergePermissions, permission } from '../../src/manifests/permissions.js';
import { checkRbac, grantsOfManifests, rbacManifests, type Manifest } from '../../src/manifests/rbac.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import { ReportWriter } from '../../src/reports/report-writer.js';

const GIZMOS = { group: 'example.com', version: 'v1', plural: 'gizmos', namespaced: true };
const CONFIG_MAPS = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const NODES = { group: '', version: 'v1', plural: 'nodes' };

@Operator({ group: 'example.com', version: 'v1', plural: 'watchonly', kind: 'WatchOnly' })
class WatchOnly {
  @OnEvent() seen() {}
  @OnStartup() start() {}
}

@Operator({
  group: 'example.com',
  version: 'v1',
  plural: 'gizmos',
  kind: 'Gizmo',
  namespaced: true,
  watches: [{ resource: CONFIG_MAPS, owns: true }],
  permissions: [permission(CONFIG_MAPS, ['get', 'create', 'delete'])],
})
class Gizmos {
  @OnCreate() created() {}
  @OnDelete() deleted() {}
  @OnSecondary() changed() {}
}

@Operator({ group: 'example.com', version: 'v1', plural: 'nodethings', kind: 'NodeThing', scope: 'node' })
class NodeThings {
  @OnEvent() seen() {}
}

@Operator({ group: 'example.com', version: 'v1', plural: 'ticks', kind: 'Tick' })
class Ticks {
  @OnTimer(1000) tick() {}
}

@Operator({ group: 'example.com', version: 'v1', plural: 'daemons', kind: 'Daemoned' })
class Daemoned {
  @Daemon() async run() {}
}

const rule = (group: string, resource: string, verbs: string[], resourceNames?: string[]) => ({
  apiGroups: [group],
  resources: [resource],
  ...(resourceNames ? { resourceNames } : {}),
  verbs,
});

describe('derivePermissions from decorators', () => {
  test('watch-only handlers (@OnEvent, activities): list and watch, no write, no Events', () => {
    expect(derivePermissions({ operators: [WatchOnly] })).toEqual({
      cluster: [rule('example.com', 'watchonly', ['list', 'watch'])],
      namespaced: {},
    });
  });

  test("change and secondary handlers write the object and its status and post Events; watches and the class's own permissions are added", () => {
    expect(derivePermissions({ operators: [Gizmos] })).toEqual({
      cluster: [
        rule('example.com', 'gizmos', ['get', 'list', 'watch', 'patch']),
        rule('example.com', 'gizmos/status', ['patch']),
        rule('', 'configmaps', ['get', 'list', 'watch', 'create', 'delete']),
        rule('', 'events', ['create', 'patch']),
      ],
      namespaced: {},
    });
  });

  test('namespaced resources are granted in each watched namespace; declarations stay where they were declared', () => {
    const derived = derivePermissions({ operators: [Gizmos], settings: { namespaces: ['a', 'b'] } });
    // The class's own declaration names no namespace: it stays cluster-wide, as declared.
    expect(derived.cluster).toEqual([rule('', 'configmaps', ['get', 'create', 'delete'])]);
    expect(Object.keys(derived.namespaced)).toEqual(['a', 'b']);
    expect(derived.namespaced.a).toEqual(derived.namespaced.b);
    expect(derived.namespaced.a).toEqual([
      rule('example.com', 'gizmos', ['get', 'list', 'watch', 'patch']),
      rule('example.com', 'gizmos/status', ['patch']),
      rule('', 'configmaps', ['list', 'watch']),
      rule('', 'events', ['create', 'patch']),
    ]);
  });

  test('Events about cluster-scoped objects go to namespace default; timers write the object too', () => {
    const derived = derivePermissions({ operators: [Ticks] });
    expect(derived.namespaced).toEqual({ default: [rule('', 'events', ['create', 'patch'])] });
    expect(derived.cluster.map((r) => r.verbs)).toEqual([['get', 'list', 'watch', 'patch'], ['patch']]);
  });

  test('daemons make the framework write nothing (no finalizer, no status, no Event of its own)', () => {
    expect(derivePermissions({ operators: [Daemoned] })).toEqual({
      cluster: [rule('example.com', 'daemons', ['list', 'watch'])],
      namespaced: {},
    });
  });

  test('node scope: Nodes listed and watched; the dead-instance janitor writes unless it is off', () => {
    const withJanitor = derivePermissions({ operators: [NodeThings] });
    expect(withJanitor.cluster).toEqual([
      rule('example.com', 'nodethings', ['get', 'list', 'watch', 'patch']),
      rule('example.com', 'nodethings/status', ['patch']),
      rule('', 'nodes', ['list', 'watch']),
    ]);
    const expected = [rule('example.com', 'nodethings', ['list', 'watch']), rule('', 'nodes', ['list', 'watch'])];
    expect(derivePermissions({ operators: [NodeThings], settings: { nodeWatch: 'own' } }).cluster).toEqual(expected);
    expect(derivePermissions({ operators: [NodeThings], settings: { cleanupDeadInstances: false } }).cluster).toEqual(
      expected,
    );
    // `scope` in the settings overrides the class's.
    expect(
      derivePermissions({ operators: [WatchOnly], settings: { scope: 'node', nodeWatch: 'own' } }).cluster,
    ).toEqual([rule('example.com', 'watchonly', ['list', 'watch']), rule('', 'nodes', ['list', 'watch'])]);
  });

  test('leader election from the settings: its Lease read and patched by name, created in its namespace', () => {
    const derived = derivePermissions({ settings: { leaderElection: { namespace: 'ops', name: 'me' } } });
    expect(derived).toEqual({
      cluster: [],
      namespaced: {
        ops: [
          rule('coordination.k8s.io', 'leases', ['get', 'patch'], ['me']),
          rule('coordination.k8s.io', 'leases', ['create']),
        ],
      },
    });
  });
});

describe("components' declarations", () => {
  test('ReportWriter: get, create, patch on the report (in its namespace when namespaced)', () => {
    expect(mergePermissions(ReportWriter.permissions({ resource: NODES }))).toEqual({
      cluster: [rule('', 'nodes', ['get', 'create', 'patch'])],
      namespaced: {},
    });
    expect(mergePermissions(ReportWriter.permissions({ resource: GIZMOS, namespace: 'x' })).namespaced).toEqual({
      x: [rule('example.com', 'gizmos', ['get', 'create', 'patch'])],
    });
  });

  test('Reconciler: list and watch on every source, in its namespace when it has one', () => {
    const declared = Reconciler.permissions({
      primary: { resource: GIZMOS },
      secondary: { maps: { resource: CONFIG_MAPS, namespace: 'x' }, nodes: { resource: NODES } },
    });
    expect(mergePermissions(declared)).toEqual({
      cluster: [rule('example.com', 'gizmos', ['list', 'watch']), rule('', 'nodes', ['list', 'watch'])],
      namespaced: { x: [rule('', 'configmaps', ['list', 'watch'])] },
    });
  });

  test('LeaderElector: get and patch by name, create in the namespace', () => {
    expect(LeaderElector.permissions({ namespace: 'ops', name: 'me' })).toEqual([
      {
        group: 'coordination.k8s.io',
        resource: 'leases',
        verbs: ['get', 'patch'],
        namespace: 'ops',
        resourceNames: ['me'],
      },
      { group: 'coordination.k8s.io', resource: 'leases', verbs: ['create'], namespace: 'ops' },
    ]);
  });
});

describe('RBAC manifests', () => {
  const derived = derivePermissions({
    operators: [Gizmos],
    settings: { namespaces: ['demo'], leaderElection: { namespace: 'ops', name: 'gizmos' } },
    permissions: [permission(NODES, ['get'])],
  });
  const serviceAccount = { namespace: 'ops', name: 'gizmo-operator' };

  test('a ClusterRole for cluster-wide grants and a Role per namespace, bound to the ServiceAccount', () => {
    const manifests = rbacManifests(derived, { name: 'gizmos', serviceAccount });
    expect(manifests.map((m) => `${String(m.kind)} ${JSON.stringify(m.metadata)}`)).toEqual([
      'ClusterRole {"name":"gizmos"}',
      'ClusterRoleBinding {"name":"gizmos"}',
      'Role {"name":"gizmos","namespace":"demo"}',
      'RoleBinding {"name":"gizmos","namespace":"demo"}',
      'Role {"name":"gizmos","namespace":"ops"}',
      'RoleBinding {"name":"gizmos","namespace":"ops"}',
    ]);
    expect(manifests[1]).toMatchObject({
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gizmos' },
      subjects: [{ kind: 'ServiceAccount', name: 'gizmo-operator', namespace: 'ops' }],
    });
    expect(checkRbac(manifests, serviceAccount, derived)).toEqual({ missing: [], extra: [] });
    expect(rbacManifests(derived, { name: 'gizmos' }).map((m) => m.kind)).toEqual(['ClusterRole', 'Role', 'Role']);
  });

  test("a ServiceAccount's grants: a ClusterRole bound in a namespace grants there only; other subjects' not at all", () => {
    const manifests: Manifest[] = [
      { kind: 'ClusterRole', metadata: { name: 'reader' }, rules: [rule('', 'configmaps', ['get'])] },
      { kind: 'ClusterRole', metadata: { name: 'other' }, rules: [rule('', 'secrets', ['get'])] },
      {
        kind: 'RoleBinding',
        metadata: { name: 'b', namespace: 'demo' },
        roleRef: { kind: 'ClusterRole', name: 'reader' },
        subjects: [{ kind: 'ServiceAccount', ...serviceAccount }],
      },
      {
        kind: 'ClusterRoleBinding',
        metadata: { name: 'c' },
        roleRef: { kind: 'ClusterRole', name: 'other' },
        subjects: [{ kind: 'ServiceAccount', namespace: 'ops', name: 'someone-else' }],
      },
    ];
    expect(grantsOfManifests(manifests, serviceAccount)).toEqual([
      { namespace: 'demo', group: '', resource: 'configmaps', resourceName: '*', verb: 'get' },
    ]);
  });

  test('drift both ways is named: a verb removed from a role, and one added', () => {
    const manifests = rbacManifests(derived, { name: 'gizmos', serviceAccount });
    const clusterRole = manifests[0] as { rules: Array<{ resources: string[]; verbs: string[] }> };
    const nodes = clusterRole.rules.find((r) => r.resources[0] === 'nodes')!;
    nodes.verbs = ['get', 'list'];
    const role = manifests[4] as { rules: Array<{ verbs: string[] }> };
    role.rules[1]!.verbs = [];
    expect(checkRbac(manifests, serviceAccount, derived)).toEqual({
      missing: ['create on coordination.k8s.io/leases in namespace ops'],
      extra: ['list on nodes cluster-wide'],
    });
  });

  test('a binding to a role the manifests lack is an error, not an empty grant', () => {
    const manifests: Manifest[] = [
      {
        kind: 'ClusterRoleBinding',
        metadata: { name: 'c' },
        roleRef: { kind: 'ClusterRole', name: 'elsewhere' },
        subjects: [{ kind: 'ServiceAccount', ...serviceAccount }],
      },
    ];
    expect(() => grantsOfManifests(manifests, serviceAccount)).toThrow(
      /ClusterRole elsewhere, which the manifests lack/,
    );
  });
});
