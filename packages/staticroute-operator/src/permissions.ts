/**
 * What the agent and the aggregator send to the API server, declared as code: the sources from which opkit derives
 * their RBAC rules (`derivePermissions`, `opkit manifests rbac dist/permissions.js --sources agentPermissionSources`).
 * test/unit/permissions.test.ts checks that deploy/rbac.yaml grants exactly these, no more and no less.
 *
 * The framework derives what it sends for the agent's `@Operator` class and runtime settings, and each opkit
 * component states its own requests (`ReportWriter.permissions`, `Reconciler.permissions`, leader election from the
 * settings). Declared here, next to a note of the code that sends them, is what this operator's own code sends:
 * the agent's full pass and the API server's endpoints; the aggregator's finalizer and status writes, Events and the
 * uninstall guard.
 */
import {
  eventPermissions,
  LEASES,
  permission,
  Reconciler,
  ReportWriter,
  watchPermissions,
  type PermissionDeclaration,
  type PermissionSettings,
  type PermissionSources,
  type ResourceRef,
} from 'opkit';
import { SHIPPED_IDENTITY } from './aggregator/uninstall-guard.js';
import { AGGREGATOR_LEASE } from './logic/aggregator-config.js';
import { API_SERVER_SERVICE } from './logic/api-endpoints.js';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_PLURAL } from './logic/spec.js';
import { NODE_REPORTS, NODES, STATIC_ROUTES } from './resources.js';

/** The API server's EndpointSlices (agent/api-endpoints-watch.ts). */
export const ENDPOINT_SLICES: ResourceRef = {
  group: 'discovery.k8s.io',
  version: 'v1',
  plural: 'endpointslices',
  namespaced: true,
};

/** The agent's runtime settings that shape its requests (main.ts `runAgent`). */
export const AGENT_SETTINGS: PermissionSettings = { scope: 'node', nodeWatch: 'own', cleanupDeadInstances: false };

/** The agent's own requests, beyond the framework's for its `@Operator` class. */
export const AGENT_PERMISSIONS: readonly PermissionDeclaration[] = [
  // route-agent.ts: this node's report.
  ...ReportWriter.permissions({ resource: NODE_REPORTS }),
  // route-agent.ts: a full pass lists every StaticRoute.
  permission(STATIC_ROUTES, ['list']),
  // api-endpoints-watch.ts: the `default/kubernetes` EndpointSlices, which no route may capture.
  ...watchPermissions(ENDPOINT_SLICES, API_SERVER_SERVICE.namespace),
];

/** The aggregator's runtime settings that shape its requests (main.ts `runAggregator`, with the default Lease). */
export const AGGREGATOR_SETTINGS: PermissionSettings = { leaderElection: AGGREGATOR_LEASE };

/**
 * What the uninstall guard (aggregator/uninstall-guard.ts) sends: it notices the CRD being deleted, binds its
 * ClusterRole a second time, and holds a finalizer on the ClusterRole and on its ServiceAccount. All granted
 * cluster-wide: `kubectl delete -f` of the release deletes the Roles at once, and only the ClusterRole is kept alive
 * until every StaticRoute is released. For the same reason the leader must keep renewing its Lease meanwhile, so
 * reading and renewing it (not creating it) is granted cluster-wide too; that covers the namespaced `get` and `patch`
 * that leader election declares.
 */
export const UNINSTALL_GUARD_PERMISSIONS: readonly PermissionDeclaration[] = [
  {
    group: 'apiextensions.k8s.io',
    resource: 'customresourcedefinitions',
    verbs: ['get'],
    resourceNames: [`${STATIC_ROUTE_PLURAL}.${STATIC_ROUTE_GROUP}`],
  },
  {
    group: 'rbac.authorization.k8s.io',
    resource: 'clusterroles',
    verbs: ['get', 'patch'],
    resourceNames: [SHIPPED_IDENTITY.clusterRole],
  },
  { group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings', verbs: ['create'] },
  { group: '', resource: 'serviceaccounts', verbs: ['get', 'patch'], resourceNames: [SHIPPED_IDENTITY.serviceAccount] },
  permission(LEASES, ['get', 'patch'], { resourceNames: [AGGREGATOR_LEASE.name] }),
];

/** The aggregator's requests (it runs no `@Operator` class: a `Reconciler` as a runnable). */
export const AGGREGATOR_PERMISSIONS: readonly PermissionDeclaration[] = [
  // aggregator.ts: the reconciler's watches.
  ...Reconciler.permissions({
    primary: { resource: STATIC_ROUTES },
    secondary: { nodes: { resource: NODES }, reports: { resource: NODE_REPORTS } },
  }),
  // aggregator.ts: its one finalizer (and dropping those of earlier versions), and the status summary.
  permission(STATIC_ROUTES, ['patch']),
  permission(STATIC_ROUTES, ['patch'], { subresource: 'status' }),
  // aggregator.ts: one Event per transition, about cluster-scoped StaticRoutes, so in namespace `default`.
  ...eventPermissions('default'),
  ...UNINSTALL_GUARD_PERMISSIONS,
];

/**
 * Everything the node agent's code sends: its `@Operator` class with its settings, and its own requests. A function,
 * so that agent code can import this module without a cycle at load time.
 */
export async function agentPermissionSources(): Promise<PermissionSources> {
  const { StaticRouteAgent } = await import('./agent/agent-operator.js');
  return { operators: [StaticRouteAgent], settings: AGENT_SETTINGS, permissions: AGENT_PERMISSIONS };
}

/** Everything the aggregator's code sends. */
export function aggregatorPermissionSources(): PermissionSources {
  return { settings: AGGREGATOR_SETTINGS, permissions: AGGREGATOR_PERMISSIONS };
}
