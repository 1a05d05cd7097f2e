/**
 * The netlink adapters against a real kernel: a simulated node's network namespace (from @opkit/testbed), with the
 * operator's route table and monitor running in a child process inside it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type SimNetwork, type SimNode } from '@opkit/testbed';
import { buildAdapters } from '../support/build.js';
import { NetlinkAgent, type AgentEvent } from '../support/agent.js';

const OURS = 201;
let network: SimNetwork;
let node: SimNode;
let agent: NetlinkAgent;

async function ip(...args: string[]): Promise<void> {
  await node.exec(['ip', ...args]);
}

async function ourRoutes(destinationPrefix: string) {
  return (await node.routes({ table: 254 })).filter((route) => route.dst.startsWith(destinationPrefix));
}

async function waitForEvent(predicate: (event: AgentEvent) => boolean, timeoutMs = 5000): Promise<AgentEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = agent.events.find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching event; got ${JSON.stringify(agent.events)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  await buildAdapters();
  network = await startNetwork({ nodes: 1 });
  node = network.nodes[0]!;
  agent = await NetlinkAgent.start(node);
});

afterAll(async () => {
  agent?.stop();
  await network?.destroy();
});

describe('RouteTable in a network namespace', () => {
  it("reads the node's addresses and connected subnets", async () => {
    const addresses =
      await agent.call<Array<{ address: string; prefixLength: number; interfaceName?: string }>>('addresses');
    expect(addresses).toContainEqual(
      expect.objectContaining({ address: node.address, prefixLength: 20, interfaceName: 'eth0' }),
    );
    expect(addresses).toContainEqual(expect.objectContaining({ address: node.addressV6, prefixLength: 64 }));
    expect(addresses).toContainEqual(expect.objectContaining({ address: '127.0.0.1', prefixLength: 8 }));
  });

  it('installs routes with our protocol, then finds nothing to do (no flap)', async () => {
    const desired = [
      { destination: '34.160.111.145', gateways: ['10.116.0.5'] },
      { destination: '198.51.100.0/24', gateways: ['10.116.0.5'] },
    ];
    const first = await agent.reconcile(desired);
    expect(first.failures).toEqual([]);
    expect(first.operations.map((op) => op.op)).toEqual(['add', 'add']);
    const routes = await ourRoutes('34.160.111.145');
    expect(routes).toEqual([
      expect.objectContaining({ dst: '34.160.111.145/32', gateway: '10.116.0.5', protocol: OURS }),
    ]);

    const monitor = await node.monitorRoutes();
    const second = await agent.reconcile(desired);
    expect(second).toMatchObject({ operations: [], unchanged: 2 });
    await ip('route', 'add', '203.0.113.99/32', 'via', '10.116.0.12'); // a marker: events up to here are in the log
    await monitor.waitFor((event) => event.route.dst === '203.0.113.99/32');
    await ip('route', 'del', '203.0.113.99/32');
    expect(monitor.events().filter((event) => event.route.protocol === OURS)).toEqual([]);
    await monitor.stop();
    await agent.reconcile([]);
  });

  it('changes a gateway by deleting the old route before adding the new one', async () => {
    await agent.reconcile([{ destination: '34.117.59.81', gateways: ['10.116.0.5'] }]);
    const monitor = await node.monitorRoutes();
    const report = await agent.reconcile([{ destination: '34.117.59.81', gateways: ['10.116.0.12'] }]);
    expect(report.operations.map((op) => `${op.op} ${op.reason}`)).toEqual([
      'delete gateway-changed',
      'add gateway-changed',
    ]);
    await monitor.waitFor((event) => event.kind === 'add' && event.route.dst === '34.117.59.81/32');
    const events = monitor.events().filter((event) => event.route.dst === '34.117.59.81/32');
    expect(events.map((event) => `${event.kind} ${event.route.gateway}`)).toEqual([
      'delete 10.116.0.5',
      'add 10.116.0.12',
    ]);
    await monitor.stop();
    expect(await ourRoutes('34.117.59.81')).toEqual([
      expect.objectContaining({ gateway: '10.116.0.12', protocol: OURS }),
    ]);
    await agent.reconcile([]);
    expect(await ourRoutes('34.117.59.81')).toEqual([]);
  });

  it('removes orphans with our protocol and never touches foreign routes', async () => {
    await ip('route', 'add', '203.0.113.0/25', 'via', '10.116.0.5', 'proto', String(OURS));
    await ip('route', 'add', '203.0.113.128/25', 'via', '10.116.0.5', 'proto', 'boot');
    const report = await agent.reconcile([]);
    expect(report.operations).toEqual([expect.objectContaining({ op: 'delete', destination: '203.0.113.0/25' })]);
    expect(await ourRoutes('203.0.113.0/25')).toEqual([]);
    expect(await ourRoutes('203.0.113.128/25')).toEqual([expect.objectContaining({ protocol: 3 })]);
    await ip('route', 'del', '203.0.113.128/25');
  });

  it('reports a destination held by a foreign route as blocked and leaves it alone', async () => {
    await ip('route', 'add', '203.0.113.7/32', 'via', '10.116.0.12', 'proto', 'boot');
    const report = await agent.reconcile([{ destination: '203.0.113.7', gateways: ['10.116.0.5'] }]);
    expect(report.operations).toEqual([]);
    expect(report.blocked).toEqual([
      { destination: '203.0.113.7/32', by: expect.objectContaining({ protocol: 3, gateways: ['10.116.0.12'] }) },
    ]);
    expect(await ourRoutes('203.0.113.7')).toEqual([expect.objectContaining({ gateway: '10.116.0.12', protocol: 3 })]);
    await ip('route', 'del', '203.0.113.7/32');
  });

  it('reports an unreachable gateway for that route only', async () => {
    const report = await agent.reconcile([
      { destination: '198.51.100.10', gateways: ['10.200.0.1'] },
      { destination: '198.51.100.11', gateways: ['10.116.0.5'] },
    ]);
    expect(report.failures).toEqual([
      expect.objectContaining({ op: 'add', destination: '198.51.100.10/32', errno: 'ENETUNREACH' }),
    ]);
    expect(report.failures[0]?.error).toContain('gateway 10.200.0.1 is not reachable');
    expect(await ourRoutes('198.51.100.11')).toHaveLength(1);
    await agent.reconcile([]);
  });

  it('treats ESRCH on delete as converged and reports EEXIST on add', async () => {
    const [absent] = await agent.call<Array<{ ok: boolean; converged?: string }>>('apply', {
      operations: [{ op: 'delete', destination: '198.51.100.77', gateways: ['10.116.0.5'] }],
    });
    expect(absent).toMatchObject({ ok: true, converged: 'already-absent' });
    await ip('route', 'add', '198.51.100.78/32', 'via', '10.116.0.5', 'proto', String(OURS));
    const [exists] = await agent.call<Array<{ ok: boolean; errno?: string }>>('apply', {
      operations: [{ op: 'add', destination: '198.51.100.78', gateways: ['10.116.0.12'] }],
    });
    expect(exists).toMatchObject({ ok: false, errno: 'EEXIST' });
    expect(await ourRoutes('198.51.100.78')).toEqual([expect.objectContaining({ gateway: '10.116.0.5' })]);
    await agent.reconcile([]);
  });

  describe('ECMP', () => {
    it('installs a multipath route and replaces its next-hop set in place', async () => {
      await agent.reconcile([{ destination: '198.51.100.0/24', gateways: ['10.116.0.5', '10.116.0.12'] }]);
      const [route] = await ourRoutes('198.51.100.0/24');
      expect(route?.nexthops?.map((hop) => hop.gateway).sort()).toEqual(['10.116.0.12', '10.116.0.5']);
      expect(route?.protocol).toBe(OURS);

      const monitor = await node.monitorRoutes();
      const report = await agent.reconcile([{ destination: '198.51.100.0/24', gateways: ['10.116.0.12'] }]);
      expect(report.operations.map((op) => `${op.op} ${op.reason}`)).toEqual(['replace multipath-changed']);
      await monitor.waitFor((event) => event.route.dst === '198.51.100.0/24');
      await monitor.stop();
      expect(monitor.events().filter((event) => event.kind === 'delete')).toEqual([]);
      expect(await ourRoutes('198.51.100.0/24')).toEqual([
        expect.objectContaining({ gateway: '10.116.0.12', protocol: OURS }),
      ]);
      await agent.reconcile([]);
    });

    it('handles IPv6 routes and IPv6 multipath', async () => {
      const [gw1, gw2] = ['fd00:116::5', 'fd00:116::c'];
      let report = await agent.reconcile([
        { destination: '2001:db8:1::/48', gateways: [gw1] },
        { destination: '2001:db8:2::/48', gateways: [gw1, gw2] },
      ]);
      expect(report.failures).toEqual([]);
      let routes = await node.routes({ family: 6, table: 254 });
      expect(routes.find((route) => route.dst === '2001:db8:1::/48')).toMatchObject({
        gateway: gw1,
        protocol: OURS,
        metric: 1024,
      });
      expect(
        routes
          .find((route) => route.dst === '2001:db8:2::/48')
          ?.nexthops?.map((hop) => hop.gateway)
          .sort(),
      ).toEqual([gw1, gw2]);
      report = await agent.reconcile([
        { destination: '2001:db8:1::/48', gateways: [gw1] },
        { destination: '2001:db8:2::/48', gateways: [gw1, gw2] },
      ]);
      expect(report.operations).toEqual([]);
      report = await agent.reconcile([
        { destination: '2001:db8:1::/48', gateways: [gw2] },
        { destination: '2001:db8:2::/48', gateways: [gw2] },
      ]);
      expect(report.failures).toEqual([]);
      routes = await node.routes({ family: 6, table: 254 });
      expect(routes.filter((route) => route.dst.startsWith('2001:db8:'))).toEqual([
        expect.objectContaining({ dst: '2001:db8:1::/48', gateway: gw2 }),
        expect.objectContaining({ dst: '2001:db8:2::/48', gateway: gw2 }),
      ]);
      await agent.reconcile([]);
      expect((await node.routes({ family: 6, table: 254 })).filter((route) => route.protocol === OURS)).toEqual([]);
    });
  });

  describe('migration from the seed operator (proto static)', () => {
    it('adopts a seed route via the current gateway without EEXIST or a second route', async () => {
      await ip('route', 'add', '34.160.111.145/32', 'via', '10.116.0.5', 'proto', 'static');
      const monitor = await node.monitorRoutes();
      const report = await agent.reconcile([{ destination: '34.160.111.145', gateways: ['10.116.0.5'] }]);
      expect(report.operations.map((op) => `${op.op} ${op.reason}`)).toEqual(['replace adopt-seed']);
      expect(report.failures).toEqual([]);
      await monitor.waitFor((event) => event.route.dst === '34.160.111.145/32' && event.route.protocol === OURS);
      await monitor.stop();
      expect(monitor.events().filter((event) => event.kind === 'delete')).toEqual([]);
      expect(await ourRoutes('34.160.111.145')).toEqual([
        expect.objectContaining({ gateway: '10.116.0.5', protocol: OURS }),
      ]);
      await agent.reconcile([]);
    });

    it('replaces a seed route via the last handled gateway: delete first, then ours', async () => {
      await ip('route', 'add', '34.160.111.145/32', 'via', '10.116.0.5', 'proto', 'static');
      const report = await agent.reconcile([
        { destination: '34.160.111.145', gateways: ['10.116.0.12'], seedGateways: [['10.116.0.5']] },
      ]);
      expect(report.operations.map((op) => `${op.op} ${op.reason}`)).toEqual([
        'delete seed-old-gateway',
        'add gateway-changed',
      ]);
      expect(await ourRoutes('34.160.111.145')).toEqual([
        expect.objectContaining({ gateway: '10.116.0.12', protocol: OURS }),
      ]);
      await agent.reconcile([]);
    });
  });

  describe('RouteMonitor', () => {
    it('reports deletions and changes of our routes, and link changes', async () => {
      await agent.call('monitor-start');
      await agent.reconcile([{ destination: '198.51.100.20', gateways: ['10.116.0.5'] }]);
      await ip('route', 'del', '198.51.100.20/32');
      const deleted = await waitForEvent(
        (event) => event.kind === 'route-deleted' && event.route?.destination === '198.51.100.20/32',
      );
      expect(deleted.route).toMatchObject({ protocol: OURS, gateways: ['10.116.0.5'], table: 254 });

      await agent.reconcile([{ destination: '198.51.100.20', gateways: ['10.116.0.5'] }]);
      await ip('route', 'replace', '198.51.100.20/32', 'via', '10.116.0.12', 'proto', 'boot');
      const replaced = await waitForEvent(
        (event) =>
          event.kind === 'route-added' && event.route?.destination === '198.51.100.20/32' && event.route.protocol === 3,
      );
      expect(replaced.route?.gateways).toEqual(['10.116.0.12']);
      await ip('route', 'del', '198.51.100.20/32');

      await ip('link', 'set', 'lo', 'down');
      await ip('link', 'set', 'lo', 'up');
      await waitForEvent((event) => event.kind === 'link-changed');
    });
  });
});
