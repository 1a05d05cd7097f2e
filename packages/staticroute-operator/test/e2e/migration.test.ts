/**
 * Upgrades onto this release, which consists of the node agents (DaemonSet) and the aggregator (Deployment):
 * - from the seed operator (Kopf): its routes (proto static) and its Kopf finalizer/annotations are taken over, not
 *   duplicated and never failing with EEXIST; the aggregator's one finalizer replaces Kopf's;
 * - in place, from the previous layout of this project (one finalizer `staticroute.opkit.dev/<node>` per node and
 *   the nodes' entries in `status.nodes` on every StaticRoute, routes with our protocol on the nodes): no route is
 *   removed or re-added, the per-node finalizers give way to the aggregator's one, `status.nodes` goes, READY is N/N,
 *   and an object that was Terminating under the old layout completes its deletion;
 * and uninstalling with the release file removes the routes.
 */
import type { RouteMonitor, SimNode } from '@opkit/testbed';
import { describe, expect, it } from 'vitest';
import {
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  OURS,
  ourRoutes,
  RELEASE,
  waitForRoutes,
  type StaticRouteJson,
} from './support/cluster.js';

const KOPF_FINALIZER = 'kopf.zalando.org/KopfFinalizerMarker';
const KOPF_LAST_HANDLED = 'kopf.zalando.org/last-handled-configuration';
const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';
/** The previous layout's finalizer of one node. */
const legacyFinalizer = (node: string) => `staticroute.opkit.dev/${node}`;

// The release's processes start inside the tests (after the earlier operator's state is in place).
const cluster = E2eCluster.forSuite({ operators: false, cleanAfterEach: false });

/** Starts the release: the aggregator and an agent on every node, together (as `kubectl apply` rolls them out). */
async function startRelease(): Promise<void> {
  await Promise.all([cluster.startAggregator(), cluster.startOperators()]);
}

/** Stops every process of the release. */
async function stopRelease(): Promise<void> {
  await Promise.all([cluster.stopOperators(), cluster.stopAggregators()]);
}

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

/** The object once the release took it over: the aggregator's finalizer only, READY N/N for its generation. */
async function adopted(name: string): Promise<StaticRouteJson> {
  const nodes = cluster.nodes.length;
  return eventually(async () => {
    const object = await cluster.getStaticRoute(name);
    return object?.status?.ready === `${nodes}/${nodes}` &&
      object.status.observedGeneration === object.metadata.generation &&
      JSON.stringify(object.metadata.finalizers) === JSON.stringify([AGGREGATOR_FINALIZER])
      ? object
      : undefined;
  }, `${name} taken over (the aggregator's finalizer only, READY ${nodes}/${nodes})`);
}

describe('migration from the seed operator', () => {
  it('adopts the seed routes and objects; the aggregator finalizer replaces the Kopf one', async () => {
    // The state the seed leaves: objects with Kopf's finalizer and annotation, routes with proto static. For
    // ipinfo the gateway was edited while the seed was not running (Kopf last handled GATEWAY_A).
    await cluster.apply(seedObject('static-route-ifconfig.me', ['34.160.111.145'], GATEWAY_A, GATEWAY_A));
    await cluster.apply(seedObject('static-route-ipinfo.io', ['34.117.59.81'], GATEWAY_B, GATEWAY_A));
    for (const node of cluster.nodes) {
      await node.exec(['ip', 'route', 'add', '34.160.111.145/32', 'via', GATEWAY_A, 'proto', 'static']);
      await node.exec(['ip', 'route', 'add', '34.117.59.81/32', 'via', GATEWAY_A, 'proto', 'static']);
    }
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await startRelease();
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
      const object = await adopted(name);
      for (const node of cluster.nodes) {
        expect(await cluster.nodeEntry(node, name)).toMatchObject({
          uid: object.metadata.uid,
          generation: object.metadata.generation,
          state: 'Applied',
          routes: 1,
        });
      }
    }
    for (const operator of cluster.operators.values()) expect(operator.logs()).not.toContain('EEXIST');
  });

  it('deletes adopted objects cleanly (no stuck Kopf finalizer, no leftover route)', async () => {
    await cluster.deleteStaticRoute('static-route-ifconfig.me');
    await cluster.waitGone('static-route-ifconfig.me');
    await waitForRoutes(cluster.nodes, [`34.117.59.81/32 via ${GATEWAY_B}`]);
  });

  it('an object deleted while nothing of the release ran, held only by the Kopf finalizer, is released and its routes left alone', async () => {
    await stopRelease();
    await cluster.apply(seedObject('stuck', ['198.51.100.99'], GATEWAY_A, GATEWAY_A));
    for (const node of cluster.nodes) {
      await node.exec(['ip', 'route', 'add', '198.51.100.99/32', 'via', GATEWAY_A, 'proto', 'static']);
    }
    await cluster.deleteStaticRoute('stuck');
    expect((await cluster.getStaticRoute('stuck'))?.metadata.finalizers).toEqual([KOPF_FINALIZER]);
    await startRelease();
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

/** Route notifications with our protocol for `destination`, as `kind dst via gateways` lines. */
function eventsFor(monitor: RouteMonitor, destination: string): string[] {
  return monitor
    .events()
    .filter((event) => event.route.protocol === OURS && event.route.dst === destination)
    .map((event) => {
      const via = event.route.nexthops
        ? event.route.nexthops
            .map((hop) => hop.gateway)
            .sort()
            .join(',')
        : event.route.gateway;
      return `${event.kind} ${event.route.dst} via ${via}`;
    });
}

/** Puts an object into the previous layout: one finalizer per node (and `extra`), and every node's status entry. */
async function toPreviousLayout(name: string, nodes: SimNode[], extra: string[] = []): Promise<void> {
  const object = await cluster.getStaticRoute(name);
  if (!object) throw new Error(`${name} does not exist`);
  const finalizers = [...nodes.map((node) => legacyFinalizer(node.name)), ...extra];
  const patched = await cluster.kubectl([
    'patch',
    'sr',
    name,
    '--type=merge',
    '-p',
    JSON.stringify({ metadata: { finalizers } }),
  ]);
  expect(patched.code, patched.stderr).toBe(0);
  // What every node of the previous version wrote (src/logic/status.ts before the aggregator): its entry, and the
  // summary each of them recomputed.
  const entries = Object.fromEntries(
    nodes.map((node) => [
      node.name,
      {
        state: 'Applied',
        message: 'routes applied',
        observedGeneration: object.metadata.generation,
        lastUpdateTime: '2026-11-30T12:00:00Z',
        routes: (object.spec.destinations as string[]).length,
      },
    ]),
  );
  const status = {
    nodes: entries,
    ready: `${nodes.length}/${nodes.length}`,
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Applied',
        message: 'routes applied on all nodes',
        observedGeneration: object.metadata.generation,
        lastTransitionTime: '2026-11-30T12:00:00Z',
      },
    ],
  };
  const written = await cluster.kubectl([
    'patch',
    'sr',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
  expect(written.code, written.stderr).toBe(0);
}

describe('upgrade in place from the previous layout (per-node finalizers and status entries)', () => {
  it('no route is removed or re-added; the per-node finalizers give way to the aggregator one; status.nodes goes; READY N/N; a Terminating object completes', async () => {
    // Start from no StaticRoute, with the release running (the seed tests above leave one).
    await cluster.deleteAllStaticRoutes();
    await waitForRoutes(cluster.nodes, []);
    const nodes = cluster.nodes;
    const live: Record<string, Record<string, unknown>> = {
      'legacy-a': { destinations: ['198.51.100.60', '203.0.113.0/26'], gateway: GATEWAY_A },
      'legacy-ecmp': { destinations: ['198.51.100.61'], gateways: [GATEWAY_A, GATEWAY_B] },
    };
    const keptRoutes = [
      `198.51.100.60/32 via ${GATEWAY_A}`,
      `198.51.100.61/32 via ${[GATEWAY_A, GATEWAY_B].sort().join(',')}`,
      `203.0.113.0/26 via ${GATEWAY_A}`,
    ];
    const terminating = 'legacy-terminating';

    // The routes the previous version installed (the same kernel programming: our agents, before the previous
    // layout's marks are put on the objects by hand). No aggregator: nothing else writes the objects.
    await stopRelease();
    await cluster.startOperators();
    for (const [name, spec] of Object.entries(live)) await cluster.apply(cluster.staticRoute(name, spec));
    await cluster.apply(cluster.staticRoute(terminating, { destinations: ['198.51.100.62'], gateway: GATEWAY_B }));
    await waitForRoutes(nodes, [...keptRoutes, `198.51.100.62/32 via ${GATEWAY_B}`]);
    await cluster.stopOperators();

    // The previous layout: per-node finalizers (on one object also that of a node removed long ago, which no node
    // would ever release) and per-node status entries; no node report (the previous version had none).
    await toPreviousLayout('legacy-a', nodes, [legacyFinalizer('node-gone')]);
    await toPreviousLayout('legacy-ecmp', nodes);
    await toPreviousLayout(terminating, nodes, [legacyFinalizer('node-gone')]);
    await cluster.deleteStaticRoute(terminating);
    const held = await cluster.getStaticRoute(terminating);
    expect(held?.metadata.deletionTimestamp).toBeDefined();
    expect(held?.metadata.finalizers).toHaveLength(nodes.length + 1);
    for (const node of nodes) {
      const deleted = await cluster.kubectl(['delete', 'staticroutenodestatuses', node.name, '--ignore-not-found']);
      expect(deleted.code, deleted.stderr).toBe(0);
    }

    // The new release starts; every node's table is watched from before it starts.
    const monitors = await Promise.all(nodes.map((node) => node.monitorRoutes()));
    await startRelease();

    // The Terminating object completes: every node removes its route, then it is released (per-node finalizers
    // included, the gone node's too).
    await cluster.waitGone(terminating);
    await waitForRoutes(nodes, keptRoutes);
    // The live objects are taken over; every node reported them Applied (after its start-up pass over the whole
    // table, which is when it would have removed or re-added anything).
    for (const name of Object.keys(live)) {
      const object = await adopted(name);
      expect(object.status).not.toHaveProperty('nodes');
      expect(object.status?.notReady).toEqual([]);
      expect(object.status?.conditions).toContainEqual(
        expect.objectContaining({ type: 'Ready', status: 'True', reason: 'Applied' }),
      );
      for (const node of nodes) {
        await eventually(async () => {
          const entry = await cluster.nodeEntry(node, name);
          return entry?.uid === object.metadata.uid && entry.generation === object.metadata.generation
            ? entry.state === 'Applied'
            : undefined;
        }, `${node.name} to report ${name} Applied`);
      }
    }
    for (const node of nodes) {
      await eventually(
        async () => (await cluster.nodeEntry(node, terminating)) === undefined,
        `${node.name} to drop its entry of ${terminating}`,
      );
    }

    for (const [index, node] of nodes.entries()) {
      const monitor = monitors[index]!;
      await monitor.stop();
      // The kept routes were never touched: not removed, not re-added.
      for (const destination of ['198.51.100.60/32', '198.51.100.61/32', '203.0.113.0/26']) {
        expect(eventsFor(monitor, destination), `${node.name}: ${destination}`).toEqual([]);
      }
      expect(eventsFor(monitor, '198.51.100.62/32'), `${node.name}: the Terminating object's route`).toEqual([
        `delete 198.51.100.62/32 via ${GATEWAY_B}`,
      ]);
      expect(await ourRoutes(node)).toEqual([...keptRoutes].sort());
    }
    for (const operator of cluster.operators.values()) expect(operator.logs()).not.toContain('EEXIST');
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
