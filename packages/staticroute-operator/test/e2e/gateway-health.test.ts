/**
 * Gateway health (ECMP) on three simulated nodes: a gateway taken off the VPC leaves every node's multipath routes
 * and traffic goes through the other one; back online, it is shared again. What users see follows: the nodes'
 * reports, the StaticRoute's GatewaysReachable condition, one Event per transition. A single-gateway route is kept
 * (and reported) unless it opts into withdrawal; `check: Disabled` leaves a route alone and probes nothing.
 */
import type { SimHost } from '@opkit/testbed';
import { describe, expect, it } from 'vitest';
import {
  describeRoute,
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  OURS,
  ourRoutes,
  waitForRoutes,
} from './support/cluster.js';

/** A third host on the VPC that only a `check: Disabled` route names: no neighbour probe may be aimed at it. */
const SPARE = '10.116.0.20';
const HOSTED = '198.51.100.0/24';
const cluster = E2eCluster.forSuite({
  network: { gateways: [GATEWAY_A, GATEWAY_B, SPARE], gatewayDestinations: [HOSTED, '203.0.113.0/24'] },
  // No periodic full pass within the test: a gateway's change must be applied by the pass it triggers itself.
  operators: { env: { RECONCILE_INTERVAL_SECONDS: '3600' } },
});

/** Addresses of the hosted /24 that traffic goes to: ECMP hashes by address, so many of them reach both gateways. */
const TARGETS = Array.from({ length: 32 }, (_, index) => `198.51.100.${index + 10}`);

async function gatewayHost(address: string): Promise<SimHost> {
  const host = cluster.network.gateways.find((item) => item.address === address);
  if (!host) throw new Error(`no gateway host ${address}`);
  return host;
}

/** Pings every target once from node-1; returns how many echo requests each gateway received meanwhile. */
async function traffic(): Promise<{ a: number; b: number; answered: number }> {
  const [a, b] = [await gatewayHost(GATEWAY_A), await gatewayHost(GATEWAY_B)];
  const before = [(await a.echoRequestsReceived()).v4, (await b.echoRequestsReceived()).v4];
  const node = cluster.nodes[0]!;
  const answers = await Promise.all(TARGETS.map((target) => node.ping(target, { timeoutSeconds: 2 })));
  const after = [(await a.echoRequestsReceived()).v4, (await b.echoRequestsReceived()).v4];
  return {
    a: after[0]! - before[0]!,
    b: after[1]! - before[1]!,
    answered: answers.filter(Boolean).length,
  };
}

/** Every target answered, and both gateways carried some of the traffic. */
function expectShared(result: { a: number; b: number; answered: number }): void {
  expect(result.answered).toBe(TARGETS.length);
  expect(result.a).toBeGreaterThan(0);
  expect(result.b).toBeGreaterThan(0);
}

/** The Events of `reason` about `name`, once there is one. */
function eventsOnceThere(name: string, reason: string) {
  return eventually(async () => {
    const items = await cluster.events(name, { reason });
    return items.length > 0 ? items : undefined;
  }, `a ${reason} Event about ${name}`);
}

async function gatewaysCondition(name: string) {
  const object = await cluster.getStaticRoute(name);
  return object?.status?.conditions?.find((condition) => condition.type === 'GatewaysReachable');
}

/**
 * Counts ARP requests whose target is `host`'s own address (nftables in its namespace): probes aimed at it, as
 * opposed to broadcasts for other addresses that every host on the VPC sees.
 */
async function countProbesAimedAt(host: SimHost): Promise<() => Promise<number>> {
  const rules = [
    'table netdev aimed_probes {',
    '  counter aimed { }',
    '  chain ingress {',
    '    type filter hook ingress device "eth0" priority 0; policy accept;',
    `    arp operation request arp daddr ip ${host.address} counter name "aimed"`,
    '  }',
    '}',
  ].join('\n');
  await host.exec(['nft', '-f', '-'], { input: rules });
  return async () => {
    const { stdout } = await host.exec(['nft', '-j', 'list', 'counter', 'netdev', 'aimed_probes', 'aimed']);
    const items = (JSON.parse(stdout) as { nftables: Array<{ counter?: { packets: number } }> }).nftables;
    return items.find((item) => item.counter)?.counter?.packets ?? 0;
  };
}

const ecmpRoute = `${HOSTED} via ${GATEWAY_B},${GATEWAY_A}`;
const unchecked = `203.0.113.64/26 via ${SPARE},${GATEWAY_A}`;

describe('gateway health', () => {
  it('withdraws an unreachable gateway from ECMP on every node, reports it once, and puts it back', async () => {
    const aimedAtSpare = await countProbesAimedAt(await gatewayHost(SPARE));
    const [probesA, probesB] = [await gatewayHost(GATEWAY_A), await gatewayHost(GATEWAY_B)];
    const probesBefore = [(await probesA.neighbourProbesReceived()).arp, (await probesB.neighbourProbesReceived()).arp];
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.apply(cluster.staticRoute('ecmp', { destinations: [HOSTED], gateways: [GATEWAY_A, GATEWAY_B] }));
    await cluster.apply(cluster.staticRoute('kept', { destinations: ['203.0.113.10'], gateway: GATEWAY_B }));
    await cluster.apply(
      cluster.staticRoute('withdrawn', {
        destinations: ['203.0.113.11'],
        gateway: GATEWAY_B,
        gatewayHealth: { whenAllDown: 'Withdraw' },
      }),
    );
    await cluster.apply(
      cluster.staticRoute('unchecked', {
        destinations: ['203.0.113.64/26'],
        gateways: [GATEWAY_A, SPARE],
        gatewayHealth: { check: 'Disabled' },
      }),
    );
    const all = [ecmpRoute, `203.0.113.10/32 via ${GATEWAY_B}`, `203.0.113.11/32 via ${GATEWAY_B}`, unchecked];
    await waitForRoutes(cluster.nodes, all);
    expectShared(await traffic());
    await eventually(async () => (await gatewaysCondition('ecmp'))?.status === 'True', 'ecmp GatewaysReachable True');
    // The agents probe what health-checked routes name: both gateways are Reachable in every node's report.
    for (const node of cluster.nodes) {
      await eventually(async () => {
        const gateways = (await cluster.nodeReport(node))?.status?.gateways ?? {};
        return gateways[GATEWAY_A]?.state === 'Reachable' && gateways[GATEWAY_B]?.state === 'Reachable';
      }, `${node.name} to report both gateways Reachable`);
    }

    await probesB.setOnline(false);
    // Every node: ECMP through A only; the single-gateway route kept; the opted-in one removed; Disabled untouched.
    await waitForRoutes(
      cluster.nodes,
      [`${HOSTED} via ${GATEWAY_A}`, `203.0.113.10/32 via ${GATEWAY_B}`, unchecked],
      60_000,
    );
    const failedOver = await traffic();
    expect(failedOver).toEqual({ a: TARGETS.length, b: 0, answered: TARGETS.length });
    const down = await eventually(async () => {
      const condition = await gatewaysCondition('ecmp');
      return condition?.status === 'False' && condition.message.includes('3/3 nodes') ? condition : undefined;
    }, 'ecmp GatewaysReachable False from 3/3 nodes');
    expect(down.message).toBe(`${GATEWAY_B} unreachable from 3/3 nodes (node-1, node-2, node-3): withdrawn from ECMP`);
    expect((await cluster.getStaticRoute('ecmp'))?.status?.ready).toBe('3/3');
    const metrics = await cluster.nodes[0]!.exec(['curl', '-sf', 'http://127.0.0.1:9860/metrics']);
    expect(metrics.stdout).toContain(`staticroute_gateway_up{node="node-1",gateway="${GATEWAY_B}"} 0`);
    expect(metrics.stdout).toContain(`staticroute_gateway_up{node="node-1",gateway="${GATEWAY_A}"} 1`);
    expect(metrics.stdout).toMatch(
      new RegExp(
        `staticroute_gateway_transitions_total\\{node="node-1",gateway="${GATEWAY_B}",state="Unreachable"\\} 1`,
      ),
    );
    for (const node of cluster.nodes) {
      const report = await cluster.nodeReport(node);
      expect(report?.status?.gateways?.[GATEWAY_B]).toMatchObject({ state: 'Unreachable' });
      expect(report?.status?.staticRoutes?.ecmp).toMatchObject({
        state: 'Applied',
        unreachableGateways: [GATEWAY_B],
        message: `1/1 routes applied; gateway ${GATEWAY_B} unreachable, withdrawn from 1 route`,
      });
      expect(report?.status?.staticRoutes?.kept).toMatchObject({
        state: 'Applied',
        routes: 1,
        message: '1/1 routes applied; all gateways unreachable, routes kept',
      });
      expect(report?.status?.staticRoutes?.withdrawn?.message).toBe(
        '0/1 routes applied; all gateways unreachable, routes withdrawn (whenAllDown: Withdraw)',
      );
      expect(report?.status?.staticRoutes?.unchecked?.unreachableGateways).toBeUndefined();
    }
    await eventually(
      async () => (await gatewaysCondition('kept'))?.message.includes('3/3 nodes'),
      'kept GatewaysReachable from 3/3 nodes',
    );
    expect((await gatewaysCondition('kept'))?.message).toContain('the only gateway, routes kept');
    expect(await gatewaysCondition('unchecked')).toBeUndefined();
    // One Warning for the object, not one per node (three nodes saw the gateway go).
    const warnings = await eventsOnceThere('ecmp', 'GatewayUnreachable');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ type: 'Warning', count: 1 });
    expect(warnings[0]?.message).toContain(GATEWAY_B);

    await probesB.setOnline(true);
    await waitForRoutes(cluster.nodes, all, 60_000);
    await eventually(async () => (await gatewaysCondition('ecmp'))?.status === 'True', 'ecmp GatewaysReachable True');
    const recovered = await eventsOnceThere('ecmp', 'GatewayReachable');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ type: 'Normal', count: 1 });
    expect(await cluster.events('ecmp', { reason: 'GatewayUnreachable' })).toHaveLength(1);
    expectShared(await traffic());

    // Probes went to the gateways that health-checked routes name, never to a host only a Disabled route names.
    const probesAfter = [(await probesA.neighbourProbesReceived()).arp, (await probesB.neighbourProbesReceived()).arp];
    expect(probesAfter[0]).toBeGreaterThan(probesBefore[0]!);
    expect(probesAfter[1]).toBeGreaterThan(probesBefore[1]!);
    expect(await aimedAtSpare()).toBe(0);
    for (const node of cluster.nodes) {
      expect((await cluster.nodeReport(node))?.status?.gateways?.[SPARE]).toBeUndefined();
      expect(await ourRoutes(node)).toEqual([...all].sort());
    }
    // On every node the ECMP route changed exactly twice, each time in place: no flap, never without a route.
    for (const monitor of monitors) {
      await monitor.stop();
      const changes = monitor
        .events()
        .filter((event) => event.route.dst === HOSTED && event.route.protocol === OURS)
        .map((event) => `${event.kind} ${describeRoute(event.route)}`);
      expect(changes).toEqual([`add ${ecmpRoute}`, `add ${HOSTED} via ${GATEWAY_A}`, `add ${ecmpRoute}`]);
    }
  });
});
