/**
 * Replacing the seed operator: its routes (proto static) and its Kopf finalizer/annotations are taken over, not
 * duplicated and never failing with EEXIST; and uninstalling with the release file removes the routes.
 */
import { describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, GATEWAY_B, RELEASE, waitForRoutes } from './support/cluster.js';

const KOPF_FINALIZER = 'kopf.zalando.org/KopfFinalizerMarker';
const KOPF_LAST_HANDLED = 'kopf.zalando.org/last-handled-configuration';
// The operators start inside the tests (after the seed operator's state is in place).
const cluster = E2eCluster.forSuite({ operators: false, cleanAfterEach: false });

function seedObject(name: string, destinations: string[], gateway: string, lastHandledGateway: string): object {
  return cluster.staticRoute(
    name,
    { destinations, gateway },
    {
      finalizers: [KOPF_FINALIZER],
      annotations: { [KOPF_LAST_HANDLED]: JSON.stringify({ spec: { destinations, gateway: lastHandledGateway } }) },
    },
  );
}

describe('migration from the seed operator', () => {
  it('adopts the seed routes and objects, and removes the stale Kopf finalizer', async () => {
    // The state the seed leaves: objects with Kopf's finalizer and annotation, routes with proto static. For
    // ipinfo the gateway was edited while the seed was not running (Kopf last handled GATEWAY_A).
    await cluster.apply(seedObject('static-route-ifconfig.me', ['34.160.111.145'], GATEWAY_A, GATEWAY_A));
    await cluster.apply(seedObject('static-route-ipinfo.io', ['34.117.59.81'], GATEWAY_B, GATEWAY_A));
    for (const node of cluster.nodes) {
      await node.exec(['ip', 'route', 'add', '34.160.111.145/32', 'via', GATEWAY_A, 'proto', 'static']);
      await node.exec(['ip', 'route', 'add', '34.117.59.81/32', 'via', GATEWAY_A, 'proto', 'static']);
    }
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.startOperators();
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_B}`, `34.160.111.145/32 via ${GATEWAY_A}`]);
    for (const [index, node] of cluster.nodes.entries()) {
      const routes = (await node.routes({ table: 254 })).filter((route) => route.dst.startsWith('34.'));
      // Exactly one route per destination, ours: adopted in place, not duplicated.
      expect(routes.map((route) => `${route.dst} ${route.gateway} ${route.protocol}`).sort()).toEqual([
        `34.117.59.81/32 ${GATEWAY_B} 201`,
        `34.160.111.145/32 ${GATEWAY_A} 201`,
      ]);
      const monitor = monitors[index]!;
      await monitor.stop();
      // The adopted route was replaced in one message (never absent); the old-gateway route was deleted first.
      const events = monitor
        .events()
        .map((event) => `${event.kind} ${event.route.dst} ${event.route.gateway} ${event.route.protocol}`);
      expect(events.filter((line) => line.includes('34.160.111.145'))).toEqual([
        `add 34.160.111.145/32 ${GATEWAY_A} 201`,
      ]);
      expect(events.filter((line) => line.includes('34.117.59.81'))).toEqual([
        `delete 34.117.59.81/32 ${GATEWAY_A} 4`,
        `add 34.117.59.81/32 ${GATEWAY_B} 201`,
      ]);
    }
    for (const name of ['static-route-ifconfig.me', 'static-route-ipinfo.io']) {
      const object = await eventually(async () => {
        const current = await cluster.getStaticRoute(name);
        return current?.status?.ready === '3/3' && !current.metadata.finalizers?.includes(KOPF_FINALIZER)
          ? current
          : undefined;
      }, `${name} adopted`);
      expect(object.metadata.finalizers).toHaveLength(3);
    }
    for (const operator of cluster.operators.values()) expect(operator.logs()).not.toContain('EEXIST');
  });

  it('deletes adopted objects cleanly (no stuck Kopf finalizer, no leftover route)', async () => {
    await cluster.deleteStaticRoute('static-route-ifconfig.me');
    await cluster.waitGone('static-route-ifconfig.me');
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_B}`]);
  });

  it('an object deleted while no operator ran, held only by the Kopf finalizer, is released and its routes removed', async () => {
    await cluster.stopOperators();
    await cluster.apply(seedObject('stuck', ['198.51.100.99'], GATEWAY_A, GATEWAY_A));
    for (const node of cluster.nodes) {
      await node.exec(['ip', 'route', 'add', '198.51.100.99/32', 'via', GATEWAY_A, 'proto', 'static']);
    }
    await cluster.deleteStaticRoute('stuck');
    expect((await cluster.getStaticRoute('stuck'))?.metadata.finalizers).toEqual([KOPF_FINALIZER]);
    await cluster.startOperators();
    await cluster.waitGone('stuck');
    // The seed's route for it is not ours to remove (the object is gone, nothing claims it): it stays, untouched.
    for (const node of cluster.nodes) {
      const routes = (await node.routes({ table: 254 })).filter((route) => route.dst === '198.51.100.99/32');
      expect(routes).toEqual([expect.objectContaining({ protocol: 4, gateway: GATEWAY_A })]);
      await node.exec(['ip', 'route', 'del', '198.51.100.99/32']);
    }
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_B}`]);
  });
});

describe('uninstall', () => {
  it('deleting the StaticRoutes, then kubectl delete -f the release, removes every route and the CRD', async () => {
    await cluster.deleteAllStaticRoutes();
    await waitForRoutes(cluster.nodes, []);
    const deleted = await cluster.kubectl(['delete', '-f', RELEASE, '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);
    await eventually(
      async () => {
        const crd = await cluster.kubectl(['get', 'crd', 'staticroutes.networking.digitalocean.com']);
        return crd.stderr.includes('NotFound');
      },
      'the CRD to be gone',
      60_000,
    );
  });
});
