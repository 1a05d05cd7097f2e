/**
 * The StaticRoute lifecycle on three simulated nodes: create, gateway and destination changes (the seed's issue #23
 * cases), delete, restart, and drift repair.
 */
import { describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, GATEWAY_B, waitForRoutes } from './support/cluster.js';

const cluster = E2eCluster.forSuite();

describe('StaticRoute lifecycle', () => {
  it('create: every node installs the routes and reports Applied in its own report; READY shows 3/3', async () => {
    await cluster.apply(cluster.staticRoute('ifconfig', { destinations: ['34.160.111.145'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`34.160.111.145/32 via ${GATEWAY_A}`]);
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute('ifconfig');
      return current?.status?.ready === '3/3' ? current : undefined;
    }, 'status.ready 3/3');
    for (const node of cluster.nodes) {
      expect(await cluster.nodeEntry(node, 'ifconfig')).toMatchObject({
        uid: object.metadata.uid,
        state: 'Applied',
        generation: 1,
        routes: 1,
      });
    }
    expect(object.status?.observedGeneration).toBe(1);
    expect(object.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    // One finalizer, the aggregator's, whatever the node count; the nodes write nothing on the StaticRoute.
    expect(object.metadata.finalizers).toEqual(['aggregator.staticroute.opkit.dev/routes']);
    expect(JSON.stringify(object.status)).not.toContain(cluster.nodes[0]?.name);
    const table = await cluster.kubectl(['get', 'sr']);
    expect(table.stdout).toMatch(/NAME\s+DESTINATIONS\s+GATEWAY\s+READY\s+AGE/);
    expect(table.stdout).toMatch(/ifconfig\s+\["34.160.111.145"\]\s+10.116.0.5\s+3\/3/);
    // What a node operator alerts on, per node: routes installed, the last full pass, the netlink sockets.
    const node = cluster.nodes[0]!;
    const metrics = await eventually(
      async () => {
        const text = (await node.exec(['curl', '-sf', 'http://127.0.0.1:9860/metrics'])).stdout;
        return text.includes(`staticroute_routes{node="${node.name}",state="installed"} 1`) ? text : undefined;
      },
      'the installed route counted on /metrics (after the next full pass)',
      60_000,
    );
    expect(metrics).toMatch(new RegExp(`staticroute_netlink_up\\{node="${node.name}",component="channel"\\} 1`));
    expect(metrics).toMatch(/staticroute_last_full_pass_timestamp_seconds\{node="[^"]+"\} \d+/);
    const reports = await cluster.kubectl(['get', 'srns']);
    expect(reports.stdout).toMatch(/NAME\s+STATICROUTES\s+NOT-READY\s+ROUTES\s+HEARTBEAT\s+AGE/);
    for (const node of cluster.nodes) expect(reports.stdout).toMatch(new RegExp(`${node.name}\\s+1\\s+0\\s+1\\s`));
  });

  it('gateway change: every node deletes the old route before adding the new one; no old-gateway route left', async () => {
    await cluster.apply(
      cluster.staticRoute('gw', { destinations: ['34.117.59.81', '198.51.100.0/24'], gateway: GATEWAY_A }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_A}`, `34.117.59.81/32 via ${GATEWAY_A}`]);
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.kubectl([
      'patch',
      'staticroute',
      'gw',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateway: GATEWAY_B } }),
    ]);
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_B}`, `34.117.59.81/32 via ${GATEWAY_B}`]);
    for (const monitor of monitors) {
      await monitor.stop();
      const events = monitor.events().filter((event) => event.route.protocol === 201);
      const kinds = events.map((event) => `${event.kind} ${event.route.dst} ${event.route.gateway}`);
      const lastDelete = Math.max(...events.map((event, index) => (event.kind === 'delete' ? index : -1)));
      const firstAdd = events.findIndex((event) => event.kind === 'add');
      expect(kinds.filter((line) => line.startsWith('delete')).sort()).toEqual([
        `delete 198.51.100.0/24 ${GATEWAY_A}`,
        `delete 34.117.59.81/32 ${GATEWAY_A}`,
      ]);
      expect(lastDelete).toBeLessThan(firstAdd);
    }
    await eventually(
      async () => (await cluster.getStaticRoute('gw'))?.status?.ready === '3/3',
      'ready 3/3 after patch',
    );
  });

  it('gateway and destinations change together: unchanged destinations move to the new gateway too', async () => {
    await cluster.apply(
      cluster.staticRoute('mixed', { destinations: ['34.117.59.81', '203.0.113.0/24'], gateway: GATEWAY_A }),
    );
    await waitForRoutes(cluster.nodes, [`203.0.113.0/24 via ${GATEWAY_A}`, `34.117.59.81/32 via ${GATEWAY_A}`]);
    await cluster.apply(
      cluster.staticRoute('mixed', { destinations: ['34.117.59.81', '198.51.100.0/24'], gateway: GATEWAY_B }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_B}`, `34.117.59.81/32 via ${GATEWAY_B}`]);
    for (const node of cluster.nodes) {
      const all = await node.routes({ table: 254 });
      expect(all.filter((route) => route.gateway === GATEWAY_A)).toEqual([]);
    }
  });

  it('destinations change: only the changed destinations are touched (no flap)', async () => {
    await cluster.apply(
      cluster.staticRoute('dests', { destinations: ['198.51.100.1', '198.51.100.2'], gateway: GATEWAY_A }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.1/32 via ${GATEWAY_A}`, `198.51.100.2/32 via ${GATEWAY_A}`]);
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.apply(
      cluster.staticRoute('dests', { destinations: ['198.51.100.1', '198.51.100.3'], gateway: GATEWAY_A }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.1/32 via ${GATEWAY_A}`, `198.51.100.3/32 via ${GATEWAY_A}`]);
    for (const monitor of monitors) {
      await monitor.stop();
      const touched = monitor
        .events()
        .filter((event) => event.route.protocol === 201)
        .map((event) => `${event.kind} ${event.route.dst}`);
      expect(touched).toEqual(['delete 198.51.100.2/32', 'add 198.51.100.3/32']);
    }
  });

  it('delete after a gateway change removes every route (nothing orphaned via either gateway)', async () => {
    await cluster.apply(
      cluster.staticRoute('del-after', { destinations: ['34.160.111.145', '34.117.59.81'], gateway: GATEWAY_A }),
    );
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_A}`, `34.160.111.145/32 via ${GATEWAY_A}`]);
    await cluster.kubectl([
      'patch',
      'sr',
      'del-after',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateway: GATEWAY_B } }),
    ]);
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_B}`, `34.160.111.145/32 via ${GATEWAY_B}`]);
    await cluster.deleteStaticRoute('del-after');
    await cluster.waitGone('del-after');
    await waitForRoutes(cluster.nodes, []);
    for (const node of cluster.nodes) {
      const all = await node.routes({ table: 254 });
      expect(all.filter((route) => route.dst.startsWith('34.'))).toEqual([]);
    }
  });

  it('delete: every node removes its routes and reports it, then the aggregator releases its one finalizer', async () => {
    await cluster.apply(cluster.staticRoute('gone', { destinations: ['203.0.113.10'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`203.0.113.10/32 via ${GATEWAY_A}`]);
    const before = await eventually(async () => {
      const object = await cluster.getStaticRoute('gone');
      return object?.metadata.finalizers?.length === 1 ? object : undefined;
    }, 'the aggregator finalizer');
    expect(before.metadata.finalizers).toEqual(['aggregator.staticroute.opkit.dev/routes']);
    await cluster.deleteStaticRoute('gone');
    await cluster.waitGone('gone');
    await waitForRoutes(cluster.nodes, []);
    // Once the object is gone, each node drops its entry from its report.
    for (const node of cluster.nodes) {
      await eventually(
        async () => (await cluster.nodeEntry(node, 'gone')) === undefined,
        `${node.name} to drop its entry`,
      );
    }
  });

  it('restart after a gateway change: converges to the new gateway without EEXIST', async () => {
    await cluster.apply(cluster.staticRoute('restart', { destinations: ['34.160.111.145'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`34.160.111.145/32 via ${GATEWAY_A}`]);
    const codes = await Promise.all([...cluster.operators.values()].map((operator) => operator.stop()));
    expect(codes).toEqual([0, 0, 0]);
    // Routes outlive the operator: a restart never flaps them.
    await waitForRoutes(cluster.nodes, [`34.160.111.145/32 via ${GATEWAY_A}`]);
    await cluster.kubectl([
      'patch',
      'sr',
      'restart',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateway: GATEWAY_B } }),
    ]);
    await cluster.startOperators();
    await waitForRoutes(cluster.nodes, [`34.160.111.145/32 via ${GATEWAY_B}`]);
    await eventually(async () => (await cluster.getStaticRoute('restart'))?.status?.ready === '3/3', 'ready 3/3');
    for (const operator of cluster.operators.values()) expect(operator.logs()).not.toContain('EEXIST');
  });
});
