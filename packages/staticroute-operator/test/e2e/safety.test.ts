/**
 * Safety: destinations that could cut a node off are refused (status + Warning event, no kernel change), and a
 * kernel failure (an unreachable gateway) is reported and retried without affecting other objects.
 */
import { describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, ourRoutes, waitForRoutes, type NodeEntryJson } from './support/cluster.js';

const cluster = E2eCluster.forSuite();

/** Each node's entry for the StaticRoute `name` (from its report), by node; nodes without one are left out. */
async function entries(name: string): Promise<Record<string, NodeEntryJson>> {
  const uid = (await cluster.getStaticRoute(name))?.metadata.uid;
  const found: Record<string, NodeEntryJson> = {};
  for (const node of cluster.nodes) {
    const entry = await cluster.nodeEntry(node, name);
    // An entry about an older namesake is not about this object.
    if (entry && entry.uid === uid) found[node.name] = entry;
  }
  return found;
}

/** The Events of one type about `name`. */
const events = (name: string, type = 'Warning') => cluster.events(name, { type });

const warnings = (name: string) => events(name, 'Warning');

describe('safety refusals', () => {
  it("refuses destinations overlapping the node's subnet and the metadata address; installs the safe ones", async () => {
    await cluster.apply(
      cluster.staticRoute('unsafe', {
        destinations: ['10.116.0.0/24', '169.254.169.254', '198.51.100.50'],
        gateway: GATEWAY_A,
      }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.50/32 via ${GATEWAY_A}`]);
    const refused = await eventually(async () => {
      const all = await entries('unsafe');
      return Object.keys(all).length === 3 && Object.values(all).every((entry) => entry.state === 'Refused')
        ? all
        : undefined;
    }, 'Refused on every node');
    for (const node of cluster.nodes) {
      const message = refused[node.name]?.message ?? '';
      expect(message).toContain('1/3 routes applied');
      expect(message).toContain(`10.116.0.0/24 would capture the node's own address ${node.address} (eth0)`);
      expect(message).toContain('169.254.169.254/32 is the cloud metadata service address 169.254.169.254');
      const routes = await node.routes({ table: 254 });
      expect(routes.filter((route) => route.dst === '169.254.169.254/32' || route.dst === '10.116.0.0/24')).toEqual([]);
    }
    await eventually(
      async () => (await warnings('unsafe')).some((event) => event.reason === 'Refused'),
      'a Refused warning',
    );
    // The summary follows the nodes' reports (written by the aggregator after a short settling delay).
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute('unsafe');
      return current?.status?.ready === '0/3' ? current : undefined;
    }, 'ready 0/3');
    expect(object?.status?.ready).toBe('0/3');
    expect(object?.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Refused' }),
    );
  });

  it('refuses the default route unless allowed', async () => {
    await cluster.apply(cluster.staticRoute('default-route', { destinations: ['0.0.0.0/0'], gateway: GATEWAY_A }));
    const refused = await eventually(async () => {
      const all = await entries('default-route');
      return Object.values(all).filter((entry) => entry.state === 'Refused').length === 3 ? all : undefined;
    }, 'default route refused everywhere');
    expect(Object.values(refused)[0]?.message).toContain('ALLOW_DEFAULT_ROUTE=true');
    for (const node of cluster.nodes) expect(await ourRoutes(node)).toEqual([]);
  });

  it('applies PROTECTED_CIDRS of one node only to that node', async () => {
    const node = cluster.nodes[0]!;
    await cluster.operators.get(node.name)?.stop();
    await cluster.startOperator(node, { env: { PROTECTED_CIDRS: '203.0.113.0/24' } });
    await cluster.waitReady(node);
    try {
      await cluster.apply(cluster.staticRoute('protected', { destinations: ['203.0.113.128/25'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes.slice(1), [`203.0.113.128/25 via ${GATEWAY_A}`]);
      const all = await eventually(async () => {
        const current = await entries('protected');
        return current[node.name]?.state === 'Refused' ? current : undefined;
      }, `${node.name} to refuse`);
      expect(all[node.name]?.message).toContain(
        '203.0.113.128/25 lies inside the protected CIDR 203.0.113.0/24 (PROTECTED_CIDRS)',
      );
      expect(await ourRoutes(node)).toEqual([]);
      // The summary names that node only: READY 2/3, Ready False (Refused).
      const object = await eventually(async () => {
        const current = await cluster.getStaticRoute('protected');
        return current?.status?.ready === '2/3' ? current : undefined;
      }, 'READY 2/3');
      expect(object.status?.conditions).toContainEqual(
        expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Refused' }),
      );
      expect(object.status?.notReady).toEqual([
        expect.objectContaining({ state: 'Refused', count: 1, nodes: [node.name] }),
      ]);
    } finally {
      await cluster.operators.get(node.name)?.stop();
      await cluster.startOperator(node);
      await cluster.waitReady(node);
    }
  });
});

describe('kernel failures', () => {
  it('reports an unreachable gateway on every node, retries, and leaves other objects alone', async () => {
    await cluster.apply(cluster.staticRoute('healthy', { destinations: ['198.51.100.61'], gateway: GATEWAY_A }));
    await cluster.apply(cluster.staticRoute('unreachable', { destinations: ['198.51.100.60'], gateway: '10.117.0.1' }));
    await waitForRoutes(cluster.nodes, [`198.51.100.61/32 via ${GATEWAY_A}`]);
    const failed = await eventually(async () => {
      const all = await entries('unreachable');
      return Object.values(all).filter((entry) => entry.state === 'Failed').length === 3 ? all : undefined;
    }, 'Failed on every node');
    for (const node of cluster.nodes) {
      expect(failed[node.name]?.message).toContain(
        '198.51.100.60/32: ENETUNREACH: gateway 10.117.0.1 is not reachable from this node',
      );
    }
    const summarized = await eventually(async () => {
      const current = await cluster.getStaticRoute('unreachable');
      return current?.status?.ready === '0/3' ? current : undefined;
    }, 'READY 0/3');
    expect(summarized.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Failed' }),
    );
    await eventually(
      async () => (await warnings('unreachable')).some((event) => event.reason === 'Failed'),
      'a Failed warning',
    );
    await eventually(
      async () => (await cluster.getStaticRoute('healthy'))?.status?.ready === '3/3',
      'healthy unaffected',
    );
    // Retried with backoff: once the gateway becomes reachable (no change to the object), the route appears.
    for (const node of cluster.nodes) await node.exec(['ip', 'route', 'add', '10.117.0.0/24', 'dev', 'eth0']);
    try {
      await waitForRoutes(cluster.nodes, ['198.51.100.60/32 via 10.117.0.1', `198.51.100.61/32 via ${GATEWAY_A}`]);
      await eventually(async () => (await cluster.getStaticRoute('unreachable'))?.status?.ready === '3/3', 'recovered');
      // The recovery is announced once, as a Normal event.
      await eventually(
        async () => (await events('unreachable', 'Normal')).some((event) => event.reason === 'Ready'),
        'a Normal Ready event',
      );
    } finally {
      await cluster.deleteAllStaticRoutes();
      for (const node of cluster.nodes) await node.exec(['ip', 'route', 'del', '10.117.0.0/24', 'dev', 'eth0']);
    }
  });
});
