/**
 * Least privilege: the shipped RBAC is enough (the other e2e tests run with it), and every rule is needed. Each case
 * runs the operator with a ServiceAccount bound to the shipped rules minus one, and shows the failure it causes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REPO_DIR } from '../support/build.js';
import { E2eCluster, eventually, GATEWAY_A, ourRoutes, type OperatorProcess } from './support/cluster.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const documents = parseAllDocuments(readFileSync(path.join(REPO_DIR, 'deploy/rbac.yaml'), 'utf8')).map(
  (document) => document.toJS() as { kind: string; rules?: Rule[] },
);
const CLUSTER_RULES = documents.find((document) => document.kind === 'ClusterRole')?.rules ?? [];
const EVENT_RULES = documents.find((document) => document.kind === 'Role')?.rules ?? [];

// One node; each case starts its own operator and cleans up after itself (below).
const cluster = E2eCluster.forSuite({ nodes: 1, operators: false, cleanAfterEach: false });
let operator: OperatorProcess | undefined;
let counter = 0;

/** Creates a ServiceAccount with the given rules and starts the operator on node-1 with its token. */
async function runWith(clusterRules: Rule[], eventRules: Rule[]): Promise<OperatorProcess> {
  counter++;
  const name = `sr-rbac-${counter}`;
  const manifests = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'static-routes' } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: clusterRules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: 'static-routes' }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace: 'default' },
      rules: eventRules,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace: 'default' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: 'static-routes' }],
    },
  ];
  await cluster.apply({ apiVersion: 'v1', kind: 'List', items: manifests });
  const token = await cluster.controlPlane.mintToken('static-routes', name);
  const kubeconfig = await cluster.network.nodeKubeconfig(token);
  operator = await cluster.startOperator(cluster.nodes[0]!, { kubeconfig });
  return operator;
}

function without(rules: Rule[], resource: string, verb?: string): Rule[] {
  return rules.flatMap((rule) => {
    if (!rule.resources.includes(resource)) return [rule];
    if (!verb) return [];
    return [{ ...rule, verbs: rule.verbs.filter((candidate) => candidate !== verb) }];
  });
}

function forbidden(logs: string, pattern: RegExp): boolean {
  return logs.split('\n').some((line) => /\b403\b|[Ff]orbidden/.test(line) && pattern.test(line));
}

beforeAll(async () => {
  await cluster.apply(cluster.staticRoute('rbac-route', { destinations: ['198.51.100.80'], gateway: GATEWAY_A }));
  await cluster.apply(cluster.staticRoute('rbac-refused', { destinations: ['169.254.169.254'], gateway: GATEWAY_A }));
});

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
  // Release what the case left: this node's finalizers, status entries, events and routes.
  for (const name of ['rbac-route', 'rbac-refused']) {
    await cluster.kubectl(['patch', 'sr', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await cluster.kubectl(['patch', 'sr', name, '--subresource=status', '--type=merge', '-p', '{"status":null}']);
  }
  await cluster.kubectl(['delete', 'events', '-n', 'default', '--all']);
  await cluster.nodes[0]!.exec(['ip', 'route', 'flush', 'proto', '201']);
});

describe('RBAC', () => {
  it('the shipped rules are enough: routes, finalizer, status and events', async () => {
    const node = cluster.nodes[0]!;
    await runWith(CLUSTER_RULES, EVENT_RULES);
    await cluster.waitReady(node);
    await eventually(async () => (await ourRoutes(node)).length === 1, 'the route');
    await eventually(async () => (await cluster.getStaticRoute('rbac-route'))?.status?.ready === '1/1', 'status');
    await eventually(
      async () => (await cluster.getStaticRoute('rbac-route'))?.metadata.finalizers?.length === 1,
      'finalizer',
    );
    await eventually(async () => {
      const events = await cluster.kubectl(['get', 'events', '-n', 'default', '-o', 'name']);
      return events.stdout.includes('rbac-refused');
    }, 'a Warning event');
  });

  it('without staticroutes get/list/watch/patch: the operator cannot start (403 listing StaticRoutes), no route', async () => {
    const running = await runWith(without(CLUSTER_RULES, 'staticroutes'), EVENT_RULES);
    await eventually(() => forbidden(running.logs(), /staticroutes/), 'a 403 on staticroutes in the log');
    expect(await ourRoutes(cluster.nodes[0]!)).toEqual([]);
    const ready = await cluster.nodes[0]!.exec(['curl', '-sf', 'http://127.0.0.1:9860/readyz'], { allowFailure: true });
    expect(ready.code).not.toBe(0);
  });

  it('without patch on staticroutes: this node cannot hold a finalizer (403), so deletes would not wait for it', async () => {
    const running = await runWith(without(CLUSTER_RULES, 'staticroutes', 'patch'), EVENT_RULES);
    await eventually(() => forbidden(running.logs(), /patch|finalizer/i), 'a 403 patching the object in the log');
    expect((await cluster.getStaticRoute('rbac-route'))?.metadata.finalizers ?? []).toEqual([]);
  });

  it('without staticroutes/status patch: routes are applied but the node cannot report them (403)', async () => {
    const node = cluster.nodes[0]!;
    const running = await runWith(without(CLUSTER_RULES, 'staticroutes/status'), EVENT_RULES);
    await eventually(async () => (await ourRoutes(node)).length === 1, 'the route');
    await eventually(() => forbidden(running.logs(), /status/), 'a 403 writing status in the log');
    expect((await cluster.getStaticRoute('rbac-route'))?.status?.nodes?.[node.name]?.state).toBeUndefined();
  });

  it('without nodes get/list/watch: the operator cannot learn its labels and does not start (403 listing Nodes)', async () => {
    const running = await runWith(without(CLUSTER_RULES, 'nodes'), EVENT_RULES);
    await eventually(() => forbidden(running.logs(), /nodes/), 'a 403 on nodes in the log');
    expect(await ourRoutes(cluster.nodes[0]!)).toEqual([]);
  });

  it('without events in namespace default: refusals are not announced as Events (403)', async () => {
    const node = cluster.nodes[0]!;
    const running = await runWith(CLUSTER_RULES, []);
    await cluster.waitReady(node);
    await eventually(
      async () => (await cluster.getStaticRoute('rbac-refused'))?.status?.nodes?.[node.name]?.state === 'Refused',
      'the refusal in status',
    );
    await eventually(() => forbidden(running.logs(), /event/i), 'a 403 posting an event in the log');
    const events = await cluster.kubectl(['get', 'events', '-n', 'default', '-o', 'name']);
    expect(events.stdout).not.toContain('rbac-refused');
  });
});
