/**
 * Conflicts between objects, ECMP next hops, and nodeSelector, on three simulated nodes.
 */
import { describe, expect, it } from 'vitest';
import type { SimNode } from '@opkit/testbed';
import {
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  ourRoutes,
  waitForRoutes,
  type NodeEntryJson,
} from './support/cluster.js';

const cluster = E2eCluster.forSuite();

/** Each node's entry for the StaticRoute `name` (from its report), by node; nodes without one are left out. */
async function nodeEntries(name: string): Promise<Record<string, NodeEntryJson>> {
  const uid = (await cluster.getStaticRoute(name))?.metadata.uid;
  const entries: Record<string, NodeEntryJson> = {};
  for (const node of cluster.nodes) {
    const entry = await cluster.nodeEntry(node, name);
    // An entry about an older namesake is not about this object.
    if (entry && entry.uid === uid) entries[node.name] = entry;
  }
  return entries;
}

async function nodeStates(name: string): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await nodeEntries(name)).map(([node, entry]) => [node, entry.state]));
}

describe('conflicts', () => {
  it('the older object wins a destination; the other reports Conflict; deleting the winner installs the other', async () => {
    await cluster.apply(cluster.staticRoute('primary', { destinations: ['34.160.111.145'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`34.160.111.145/32 via ${GATEWAY_A}`]);
    // creationTimestamp has a resolution of one second: make the order unambiguous.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await cluster.apply(
      cluster.staticRoute('secondary', { destinations: ['34.160.111.145', '198.51.100.5'], gateway: GATEWAY_B }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.5/32 via ${GATEWAY_B}`, `34.160.111.145/32 via ${GATEWAY_A}`]);
    // Each node writes its own report, and the aggregator writes the summary (ready, conditions) after them: wait for
    // all of it rather than read the summary from the first object whose reports say Conflict.
    const conflicted = await eventually(async () => {
      const object = await cluster.getStaticRoute('secondary');
      const states = Object.values(await nodeStates('secondary'));
      const summarized =
        object?.status?.ready === '0/3' &&
        object.status.conditions?.some((condition) => condition.type === 'Conflict' && condition.status === 'True');
      return states.length === 3 && states.every((state) => state === 'Conflict') && summarized ? object : undefined;
    }, 'secondary to report Conflict on every node, ready 0/3 and a Conflict condition');
    const entries = await nodeEntries('secondary');
    for (const node of cluster.nodes) {
      expect(entries[node.name]?.message).toContain('conflict: 34.160.111.145/32 is routed by StaticRoute primary');
    }
    expect(conflicted.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Conflict', status: 'True' }));
    expect(conflicted.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'Conflict' }),
    );
    // One group for the three nodes (kubectl describe reads in one screen), naming them and the winner.
    expect(conflicted.status?.notReady).toEqual([
      expect.objectContaining({ state: 'Conflict', count: 3, nodes: cluster.nodes.map((node) => node.name) }),
    ]);
    expect(conflicted.status?.notReady?.[0]?.message).toContain(
      'conflict: 34.160.111.145/32 is routed by StaticRoute primary',
    );
    expect(conflicted.status?.ready).toBe('0/3');
    const applied = { 'node-1': 'Applied', 'node-2': 'Applied', 'node-3': 'Applied' };
    expect(
      await eventually(async () => {
        const states = await nodeStates('primary');
        return Object.keys(states).length === 3 && Object.values(states).every((state) => state === 'Applied')
          ? states
          : undefined;
      }, 'primary to report Applied on every node'),
    ).toEqual(applied);
    await eventually(
      async () =>
        (await cluster.events('secondary')).some((event) => event.type === 'Warning' && event.reason === 'Conflict'),
      'a Conflict warning event',
    );

    await cluster.deleteStaticRoute('primary');
    await cluster.waitGone('primary');
    await waitForRoutes(cluster.nodes, [`198.51.100.5/32 via ${GATEWAY_B}`, `34.160.111.145/32 via ${GATEWAY_B}`]);
    await eventually(async () => (await cluster.getStaticRoute('secondary'))?.status?.ready === '3/3', 'secondary 3/3');
  });

  it('deleting the losing object never removes the route the winner still wants', async () => {
    await cluster.apply(cluster.staticRoute('winner', { destinations: ['203.0.113.5'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`203.0.113.5/32 via ${GATEWAY_A}`]);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await cluster.apply(cluster.staticRoute('loser', { destinations: ['203.0.113.5'], gateway: GATEWAY_B }));
    await eventually(async () => Object.values(await nodeStates('loser')).length === 3, 'loser reported');
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.deleteStaticRoute('loser');
    await cluster.waitGone('loser');
    await waitForRoutes(cluster.nodes, [`203.0.113.5/32 via ${GATEWAY_A}`]);
    for (const monitor of monitors) {
      await monitor.stop();
      expect(monitor.events().filter((event) => event.route.dst === '203.0.113.5/32')).toEqual([]);
    }
  });

  it('objects asking for the same route share it: deleting one keeps it', async () => {
    await cluster.apply(cluster.staticRoute('twin-a', { destinations: ['198.51.100.77'], gateway: GATEWAY_A }));
    await cluster.apply(cluster.staticRoute('twin-b', { destinations: ['198.51.100.77'], gateway: GATEWAY_A }));
    await eventually(async () => (await cluster.getStaticRoute('twin-b'))?.status?.ready === '3/3', 'twin-b applied');
    await cluster.deleteStaticRoute('twin-a');
    await cluster.waitGone('twin-a');
    await waitForRoutes(cluster.nodes, [`198.51.100.77/32 via ${GATEWAY_A}`]);
  });
});

describe('ECMP', () => {
  it('installs one multipath route per destination and updates the next hops in place', async () => {
    await cluster.apply(
      cluster.staticRoute('ecmp', { destinations: ['198.51.100.0/24'], gateways: [GATEWAY_A, GATEWAY_B] }),
    );
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_B},${GATEWAY_A}`]);
    const monitors = await Promise.all(cluster.nodes.map((node) => node.monitorRoutes()));
    await cluster.kubectl([
      'patch',
      'sr',
      'ecmp',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateways: [GATEWAY_B] } }),
    ]);
    await waitForRoutes(cluster.nodes, [`198.51.100.0/24 via ${GATEWAY_B}`]);
    for (const monitor of monitors) {
      await monitor.stop();
      // One replace: the destination is never without a route.
      expect(
        monitor.events().filter((event) => event.kind === 'delete' && event.route.dst === '198.51.100.0/24'),
      ).toEqual([]);
    }
    const table = await cluster.kubectl(['get', 'sr', 'ecmp']);
    expect(table.stdout).toContain('["10.116.0.12"]');
  });

  it('handles IPv6 ECMP', async () => {
    const [gw1, gw2] = ['fd00:116::5', 'fd00:116::c'];
    await cluster.apply(cluster.staticRoute('ecmp6', { destinations: ['2001:db8:100::/48'], gateways: [gw1, gw2] }));
    await waitForRoutes(cluster.nodes, [`2001:db8:100::/48 via ${gw1},${gw2}`]);
    await eventually(async () => (await cluster.getStaticRoute('ecmp6'))?.status?.ready === '3/3', 'ecmp6 applied');
  });
});

describe('nodeSelector', () => {
  it('only selected nodes install the routes; relabeling moves them', async () => {
    const [node1, node2, node3] = cluster.nodes as [SimNode, SimNode, SimNode];
    await cluster.kubectl(['label', 'node', node2.name, 'egress=nat', '--overwrite']);
    await cluster.apply(
      cluster.staticRoute('selected', {
        destinations: ['203.0.113.0/24'],
        gateway: GATEWAY_A,
        nodeSelector: { matchLabels: { egress: 'nat' } },
      }),
    );
    await waitForRoutes([node2], [`203.0.113.0/24 via ${GATEWAY_A}`]);
    await waitForRoutes([node1, node3], []);
    await eventually(async () => (await cluster.getStaticRoute('selected'))?.status?.ready === '1/1', 'ready 1/1');

    await cluster.kubectl(['label', 'node', node3.name, 'egress=nat', '--overwrite']);
    await cluster.kubectl(['label', 'node', node2.name, 'egress-']);
    await waitForRoutes([node3], [`203.0.113.0/24 via ${GATEWAY_A}`]);
    await waitForRoutes([node1, node2], []);
    const states = await eventually(async () => {
      const current = await cluster.getStaticRoute('selected');
      const reported = await nodeStates('selected');
      return current?.status?.ready === '1/1' &&
        reported[node2.name] === 'NotSelected' &&
        reported[node3.name] === 'Applied'
        ? reported
        : undefined;
    }, 'node-2 NotSelected, node-3 Applied, READY 1/1');
    expect(states[node3.name]).toBe('Applied');
    expect(states[node1.name]).toBe('NotSelected');
    expect(await ourRoutes(node1)).toEqual([]);
    await cluster.kubectl(['label', 'node', node3.name, 'egress-']);
  });

  it('a selector with an invalid label stored before the CRD checked label syntax: Refused on every node, naming the field', async () => {
    const crd = 'crd/staticroutes.networking.digitalocean.com';
    const at = '/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/nodeSelector';
    const current = await cluster.kubectl(['get', crd, '-o', 'json']);
    const schema = (
      JSON.parse(current.stdout) as {
        spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: { properties: object } } } } }> };
      }
    ).spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties as { nodeSelector?: unknown };
    expect(schema.nodeSelector).toBeDefined();
    // The selector's schema of a CRD that checked types only (before B4 was fixed).
    const older = {
      type: 'object',
      properties: {
        matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
        matchExpressions: {
          type: 'array',
          items: {
            type: 'object',
            required: ['key', 'operator'],
            properties: {
              key: { type: 'string' },
              operator: { type: 'string' },
              values: { type: 'array', items: { type: 'string' } },
            },
          },
        },
      },
    };
    const patch = (value: unknown) =>
      cluster.kubectl(['patch', crd, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: at, value }])]);
    const downgraded = await patch(older);
    expect(downgraded.code, downgraded.stderr).toBe(0);
    try {
      const manifest = JSON.stringify(
        cluster.staticRoute('typo', {
          destinations: ['203.0.113.99'],
          gateway: GATEWAY_A,
          nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux!!' } },
        }),
      );
      // Stored once the API server validates with the older schema.
      await eventually(
        async () => (await cluster.kubectl(['create', '-f', '-'], manifest)).code === 0,
        'the object to be stored under the older CRD',
      );
    } finally {
      // The upgrade: the current CRD again, with the object already stored.
      const restored = await patch(schema.nodeSelector);
      expect(restored.code, restored.stderr).toBe(0);
    }
    const refused = await eventually(async () => {
      const object = await cluster.getStaticRoute('typo');
      const entries = await nodeEntries('typo');
      return Object.values(entries).length === 3 &&
        Object.values(entries).every((entry) => entry.state === 'Refused') &&
        object?.status?.ready === '0/3'
        ? entries
        : undefined;
    }, 'typo to be reported Refused by every node (not NotSelected), ready 0/3');
    for (const node of cluster.nodes) {
      expect(refused[node.name]?.message).toContain(
        'invalid spec: spec.nodeSelector.matchLabels.kubernetes.io/os: "linux!!" is not a valid label value',
      );
      expect(await ourRoutes(node)).toEqual([]);
    }
    // The upgraded CRD still lets the operators release it.
    await cluster.deleteStaticRoute('typo');
    await cluster.waitGone('typo');
  });
});
