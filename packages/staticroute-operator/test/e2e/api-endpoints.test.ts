/**
 * The API server's real endpoints are protected, not only its ClusterIP: node traffic to the ClusterIP is rewritten to
 * the addresses of the `default/kubernetes` EndpointSlices, so a route capturing one of them cuts the node off the
 * API server. The test adds an EndpointSlice for the `kubernetes` Service with addresses that are not the ClusterIP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, waitForRoutes } from './support/cluster.js';

const cluster = E2eCluster.forSuite();

function endpointSlice(name: string, addresses: string[]): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: 'IPv4',
    endpoints: addresses.map((address) => ({ addresses: [address] })),
    ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
  };
}

afterEach(async () => {
  await cluster.kubectl([
    'delete',
    'endpointslice',
    '-n',
    'default',
    '-l',
    'kubernetes.io/service-name=kubernetes',
    '--field-selector',
    'metadata.name!=kubernetes',
  ]);
});

describe('API server endpoints', () => {
  it('refuses a route that would capture an endpoint, and says which one', async () => {
    await cluster.apply(endpointSlice('kubernetes-public', ['203.0.113.77']));
    await cluster.apply(cluster.staticRoute('captures-api', { destinations: ['203.0.113.0/24'], gateway: GATEWAY_A }));
    for (const node of cluster.nodes) {
      const entry = await eventually(async () => {
        const current = await cluster.nodeEntry(node, 'captures-api');
        return current?.state === 'Refused' ? current : undefined;
      }, `${node.name} to refuse the route`);
      expect(entry.message).toContain('API server endpoint 203.0.113.77');
    }
    await waitForRoutes(cluster.nodes, []);
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute('captures-api');
      return current?.status?.conditions?.[0]?.reason === 'Refused' ? current : undefined;
    }, 'Ready False, reason Refused');
    expect(object.status?.ready).toBe('0/3');
  });

  it('withdraws an installed route as soon as an endpoint appears inside it', async () => {
    await cluster.apply(cluster.staticRoute('later', { destinations: ['198.51.100.0/24'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_A}`]);
    await cluster.apply(endpointSlice('kubernetes-moved', ['198.51.100.9']));
    await waitForRoutes(cluster.nodes, []);
    for (const node of cluster.nodes) {
      await eventually(
        async () => (await cluster.nodeEntry(node, 'later'))?.message?.includes('API server endpoint 198.51.100.9'),
        `${node.name} to report the captured endpoint`,
      );
    }
  });
});
