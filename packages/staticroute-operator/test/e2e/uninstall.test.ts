/**
 * Uninstall as users of the predecessor operator do it: `kubectl delete -f <release file>` with StaticRoutes still
 * present. Every node removes its routes, and nothing is left Terminating: the aggregator keeps its rights (a finalizer
 * on its ClusterRole and ServiceAccount, a second binding of its role that the file does not list) until every
 * StaticRoute is released (src/aggregator/uninstall-guard.ts).
 *
 * The test bed runs no kube-controller-manager: the namespace itself stays Terminating here (its namespace controller
 * would empty and remove it), and the second binding stays (the garbage collector would delete it with the
 * ClusterRole that owns it). Every object the release file names besides the namespace must be gone.
 */
import { describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, GATEWAY_B, RELEASE, waitForRoutes } from './support/cluster.js';

const cluster = E2eCluster.forSuite({ cleanAfterEach: false });

/** `kind/name` (namespaced as `kind/namespace/name`) of every object in the release file. */
async function releaseObjects(): Promise<string[]> {
  const result = await cluster.kubectl([
    'create',
    '--dry-run=client',
    '-f',
    RELEASE,
    '-o',
    'jsonpath={.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}',
  ]);
  return result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => line.replace(/\/\//, '/'));
}

/** Whether an object still exists (`kubectl get` by kind and name). */
async function exists(object: string): Promise<boolean> {
  const parts = object.split('/');
  const [kind, namespaceOrName, name] = parts as [string, string, string | undefined];
  const args = name ? ['get', kind, name, '-n', namespaceOrName] : ['get', kind, namespaceOrName];
  const result = await cluster.kubectl([...args, '-o', 'name', '--ignore-not-found']);
  return result.stdout.trim() !== '';
}

describe('uninstall with kubectl delete -f', () => {
  it('removes every route and leaves no StaticRoute, CRD, ServiceAccount or RBAC object Terminating', async () => {
    await cluster.apply(cluster.staticRoute('left-a', { destinations: ['198.51.100.44'], gateway: GATEWAY_A }));
    await cluster.apply(cluster.staticRoute('left-b', { destinations: ['203.0.113.0/25'], gateway: GATEWAY_B }));
    await waitForRoutes(cluster.nodes, [`198.51.100.44/32 via ${GATEWAY_A}`, `203.0.113.0/25 via ${GATEWAY_B}`]);
    await eventually(async () => (await cluster.getStaticRoute('left-b'))?.status?.ready === '3/3', 'READY 3/3');
    const guarded = await cluster.kubectl([
      'get',
      'clusterrole/k8s-staticroute-aggregator',
      'serviceaccount/k8s-staticroute-aggregator',
      '-n',
      'static-routes',
      '-o',
      'jsonpath={.items[*].metadata.finalizers}',
    ]);
    expect(guarded.stdout.match(/aggregator\.staticroute\.opkit\.dev\/uninstall/g)).toHaveLength(2);
    const binding = await cluster.kubectl([
      'get',
      'clusterrolebinding',
      'k8s-staticroute-aggregator-uninstall',
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}',
    ]);
    expect(binding.stdout).toBe('ClusterRole/k8s-staticroute-aggregator');

    const objects = (await releaseObjects()).filter((object) => !object.startsWith('Namespace/'));
    const deleted = await cluster.kubectl(['delete', '-f', RELEASE, '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);

    await waitForRoutes(cluster.nodes, []);
    for (const object of objects) {
      await eventually(async () => !(await exists(object)), `${object} to be gone`, 90_000).catch((error: Error) => {
        throw new Error(`${error.message}\naggregator log:\n${cluster.aggregators[0]?.logs().slice(-3000) ?? ''}`);
      });
    }
    const left = await cluster.controlPlane.request('GET', '/apis/networking.digitalocean.com/v1/staticroutes');
    expect(left.status).toBe(404);
  });
});
