/**
 * The level-based safety net: routes changed behind the operator's back are repaired from kernel notifications, and
 * an operator that was down converges to whatever happened meanwhile, without touching routes it does not own.
 */
import { describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, GATEWAY_B, ourRoutes, RELEASE, waitForRoutes } from './support/cluster.js';

/** The one finalizer on a StaticRoute: the aggregator's (the node agents hold none). */
const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';

/** Set by the uninstall test, the last one: there is no CRD to clean up after it. */
let uninstalled = false;
const cluster = E2eCluster.forSuite({ cleanAfterEach: () => !uninstalled });

describe('drift repair', () => {
  it('puts back a route deleted by hand (ip route del)', async () => {
    await cluster.apply(cluster.staticRoute('drift-del', { destinations: ['198.51.100.0/24'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_A}`]);
    const node = cluster.nodes[0]!;
    const monitor = await node.monitorRoutes();
    await node.exec(['ip', 'route', 'del', '198.51.100.0/24']);
    await monitor.waitFor((event) => event.kind === 'add' && event.route.dst === '198.51.100.0/24', 10_000);
    await monitor.stop();
    expect(await ourRoutes(node)).toEqual([`198.51.100.0/24 via ${GATEWAY_A}`]);
  });

  it('puts back a route whose gateway was changed by hand', async () => {
    await cluster.apply(cluster.staticRoute('drift-gw', { destinations: ['203.0.113.0/24'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`203.0.113.0/24 via ${GATEWAY_A}`]);
    const node = cluster.nodes[1]!;
    await node.exec(['ip', 'route', 'replace', '203.0.113.0/24', 'via', GATEWAY_B, 'proto', '201']);
    await waitForRoutes([node], [`203.0.113.0/24 via ${GATEWAY_A}`], 10_000);
  });

  it('repairs routes flushed by a link going down and up', async () => {
    await cluster.apply(cluster.staticRoute('drift-link', { destinations: ['198.51.100.7'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.7/32 via ${GATEWAY_A}`]);
    const node = cluster.nodes[2]!;
    await node.exec(['ip', 'link', 'set', 'eth0', 'down']);
    await node.exec(['ip', 'link', 'set', 'eth0', 'up']);
    await waitForRoutes([node], [`198.51.100.7/32 via ${GATEWAY_A}`], 15_000);
  });

  it('never takes over a destination a foreign route holds; reports it, and installs ours once it is gone', async () => {
    const node = cluster.nodes[0]!;
    await cluster.apply(cluster.staticRoute('drift-foreign', { destinations: ['198.51.100.9'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.9/32 via ${GATEWAY_A}`]);
    await node.exec(['ip', 'route', 'replace', '198.51.100.9/32', 'via', GATEWAY_B, 'proto', 'boot']);
    const failed = await eventually(async () => {
      const entry = await cluster.nodeEntry(node, 'drift-foreign');
      return entry?.state === 'Failed' ? entry : undefined;
    }, `${node.name} to report the foreign route`);
    expect(failed.message).toContain(
      'a route the operator does not manage holds the destination: 198.51.100.9/32 via 10.116.0.12 proto 3',
    );
    // The summary names the node and its reason: READY 2/3, Ready False (Failed).
    const summarized = await eventually(async () => {
      const object = await cluster.getStaticRoute('drift-foreign');
      return object?.status?.ready === '2/3' ? object : undefined;
    }, 'READY 2/3');
    expect(summarized.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Failed' }),
    );
    expect(summarized.status?.notReady).toEqual([
      expect.objectContaining({ state: 'Failed', count: 1, nodes: [node.name], message: failed.message }),
    ]);
    const routes = await node.routes({ table: 254 });
    expect(routes.filter((route) => route.dst === '198.51.100.9/32')).toEqual([
      expect.objectContaining({ gateway: GATEWAY_B, protocol: 3 }),
    ]);
    await node.exec(['ip', 'route', 'del', '198.51.100.9/32']);
    await waitForRoutes([node], [`198.51.100.9/32 via ${GATEWAY_A}`], 10_000);
    await eventually(
      async () => (await cluster.nodeEntry(node, 'drift-foreign'))?.state === 'Applied',
      'Applied again',
    );
    await eventually(async () => (await cluster.getStaticRoute('drift-foreign'))?.status?.ready === '3/3', 'READY 3/3');
  });
});

describe('operator down', () => {
  it('converges to objects created, changed and deleted meanwhile, without touching foreign routes', async () => {
    await cluster.apply(cluster.staticRoute('kept', { destinations: ['198.51.100.1'], gateway: GATEWAY_A }));
    await cluster.apply(cluster.staticRoute('changed', { destinations: ['198.51.100.2'], gateway: GATEWAY_A }));
    await cluster.apply(cluster.staticRoute('removed', { destinations: ['198.51.100.3'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [
      `198.51.100.1/32 via ${GATEWAY_A}`,
      `198.51.100.2/32 via ${GATEWAY_A}`,
      `198.51.100.3/32 via ${GATEWAY_A}`,
    ]);
    // Foreign routes: the admin's own static route, and one with another daemon's protocol.
    for (const node of cluster.nodes) {
      await node.exec(['ip', 'route', 'add', '203.0.113.64/26', 'via', GATEWAY_B, 'proto', 'static']);
      await node.exec(['ip', 'route', 'add', '203.0.113.128/26', 'via', GATEWAY_B, 'proto', 'bird']);
    }
    const foreignBefore = await Promise.all(
      cluster.nodes.map(async (node) => (await node.routes({ table: 254 })).filter((route) => route.protocol !== 201)),
    );
    // Routes follow a watch event at once, and the aggregator's finalizer and summary come after the nodes' reports:
    // every object must be held by the aggregator and reported Applied by every node before the operators go down.
    await eventually(async () => {
      const objects = await Promise.all(['kept', 'changed', 'removed'].map((name) => cluster.getStaticRoute(name)));
      return objects.every(
        (object) =>
          JSON.stringify(object?.metadata.finalizers) === JSON.stringify([AGGREGATOR_FINALIZER]) &&
          object?.status?.ready === '3/3',
      );
    }, 'the aggregator finalizer and READY 3/3 on every object');

    await cluster.stopOperators();
    await cluster.apply(cluster.staticRoute('created', { destinations: ['198.51.100.4'], gateway: GATEWAY_B }));
    await cluster.kubectl([
      'patch',
      'sr',
      'changed',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateway: GATEWAY_B } }),
    ]);
    // Held by the aggregator's finalizer until the nodes are back and report the routes removed.
    await cluster.deleteStaticRoute('removed');
    const held = await cluster.getStaticRoute('removed');
    expect(held?.metadata.deletionTimestamp).toBeDefined();
    expect(held?.metadata.finalizers).toEqual([AGGREGATOR_FINALIZER]);
    const table = await eventually(async () => {
      const result = await cluster.kubectl(['get', 'sr', 'removed']);
      return /removed\s+\S+\s+\S+\s+Terminating 0\/3\s/.test(result.stdout) ? result.stdout : undefined;
    }, 'kubectl get sr removed to show READY Terminating 0/3');
    expect(table).toContain('Terminating 0/3');

    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.startOperators();
    await waitForRoutes(cluster.nodes, [
      `198.51.100.1/32 via ${GATEWAY_A}`,
      `198.51.100.2/32 via ${GATEWAY_B}`,
      `198.51.100.4/32 via ${GATEWAY_B}`,
    ]);
    await cluster.waitGone('removed');
    for (const [index, node] of cluster.nodes.entries()) {
      const monitor = monitors[index]!;
      await monitor.stop();
      expect(monitor.events().filter((event) => event.route.protocol !== 201)).toEqual([]);
      // 198.51.100.1 was right all along: not touched either.
      expect(monitor.events().filter((event) => event.route.dst === '198.51.100.1/32')).toEqual([]);
      const foreignAfter = (await node.routes({ table: 254 })).filter((route) => route.protocol !== 201);
      expect(foreignAfter).toEqual(foreignBefore[index]);
      await node.exec(['ip', 'route', 'del', '203.0.113.64/26']);
      await node.exec(['ip', 'route', 'del', '203.0.113.128/26']);
    }
  });
});

describe('uninstall in one step', () => {
  it('kubectl delete -f the release with StaticRoutes present: every node removes its routes', async () => {
    await cluster.apply(cluster.staticRoute('left-behind', { destinations: ['198.51.100.44'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.44/32 via ${GATEWAY_A}`]);
    uninstalled = true;
    const deleted = await cluster.kubectl(['delete', '-f', RELEASE, '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);
    // The CRD goes first (release order), so the StaticRoutes are deleted while the agents and the aggregator still
    // run; removing routes is node-local, and the aggregator keeps its rights until it released every StaticRoute.
    // (That nothing is left Terminating afterwards is uninstall.test.ts's subject.)
    await waitForRoutes(cluster.nodes, []);
  });
});
