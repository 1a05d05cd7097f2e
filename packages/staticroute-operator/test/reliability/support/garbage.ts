/**
 * Garbage in the state of the split design, written as someone other than its owner would (a cluster admin, a
 * script, an earlier version): the node reports (`StaticRouteNodeStatus`, each written by one agent, which keeps no
 * other state: nothing node-local since the reports replaced opkit's state files) and the aggregator's marks on the
 * StaticRoutes (its finalizer, its summary). An agent's own writes are confined to its own report by the admission
 * policy (rbac.test.ts); these writes come from an admin, whom the policy does not match.
 */
import type { E2eCluster } from '../../e2e/support/cluster.js';
import { REPORTS_API, STATIC_ROUTES_API } from './reports.js';

/** An API answer. */
export interface Answer {
  status: number;
  text: string;
}

async function write(cluster: E2eCluster, method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await cluster.controlPlane.request(method, path, body);
  return { status: response.status, text: response.text };
}

async function writeOrThrow(cluster: E2eCluster, method: string, path: string, body?: unknown): Promise<void> {
  const answer = await write(cluster, method, path, body);
  if (answer.status >= 300) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.text}`);
}

/** Deletes a node's report. */
export function deleteReport(cluster: E2eCluster, node: string): Promise<void> {
  return writeOrThrow(cluster, 'DELETE', `${REPORTS_API}/${node}`);
}

/** Merges `status` into a node's report (a merge patch: entries set to null are removed). */
export function patchReport(cluster: E2eCluster, node: string, status: Record<string, unknown>): Promise<void> {
  return writeOrThrow(cluster, 'PATCH', `${REPORTS_API}/${node}`, { status });
}

/** Creates a report named `name` holding `status` (for a node that does not exist, or in place of a real one). */
export function createReport(cluster: E2eCluster, name: string, status: Record<string, unknown>): Promise<void> {
  return writeOrThrow(cluster, 'POST', REPORTS_API, {
    apiVersion: 'networking.digitalocean.com/v1',
    kind: 'StaticRouteNodeStatus',
    metadata: { name },
    status,
  });
}

/**
 * Entries that the report's schema (deploy/crd-report.yaml) must refuse, each with the field its refusal names: they
 * never reach the aggregator.
 */
export const SCHEMA_GARBAGE: Array<{ what: string; entry: unknown; field: string }> = [
  { what: 'an unknown state', entry: { uid: 'u', state: 'Maybe', routes: 1 }, field: 'state' },
  { what: 'no uid', entry: { state: 'Applied', routes: 1 }, field: 'uid' },
  { what: 'a negative route count', entry: { uid: 'u', state: 'Applied', routes: -1 }, field: 'routes' },
  {
    what: 'a message of 3,000 characters',
    entry: { uid: 'u', state: 'Failed', routes: 0, message: 'x'.repeat(3000) },
    field: 'message',
  },
  { what: 'a string instead of an entry', entry: 'garbage', field: 'staticRoutes' },
];

/** Tries to put `entry` into a node's report under a new name; resolves with the API's answer. */
export function tryEntry(cluster: E2eCluster, node: string, name: string, entry: unknown): Promise<Answer> {
  return write(cluster, 'PATCH', `${REPORTS_API}/${node}`, { status: { staticRoutes: { [name]: entry } } });
}

/** Sets a StaticRoute's finalizers. */
export function setFinalizers(cluster: E2eCluster, name: string, finalizers: string[] | null): Promise<void> {
  return writeOrThrow(cluster, 'PATCH', `${STATIC_ROUTES_API}/${name}`, { metadata: { finalizers } });
}

/** Garbage in annotations of the framework's earlier layouts (nothing reads them now: they must be ignored). */
export function spoilAnnotations(cluster: E2eCluster, name: string): Promise<void> {
  return writeOrThrow(cluster, 'PATCH', `${STATIC_ROUTES_API}/${name}`, {
    metadata: {
      annotations: {
        'staticroute.opkit.dev/last-handled-configuration': '{{{',
        'staticroute.opkit.dev/progress': '[1,2,3]',
      },
    },
  });
}

/** Garbage in the aggregator's summary: every field it owns, and a ghost node's entry of the previous layout. */
export function spoilSummary(cluster: E2eCluster, name: string): Promise<void> {
  return writeOrThrow(cluster, 'PATCH', `${STATIC_ROUTES_API}/${name}/status`, {
    status: {
      ready: 'garbage',
      observedGeneration: 99,
      conditions: [{ type: 'Ready', status: 'Maybe' }],
      notReady: [{ state: 'Junk', message: 'x', count: -1, nodes: ['ghost-node'] }],
      nodes: { 'ghost-node': { state: 'Applied', message: 'ghost', observedGeneration: 99 } },
    },
  });
}
