/**
 * What a user sees when something is wrong, checked with the commands the operator guide's troubleshooting section
 * shows (`kubectl apply`, `kubectl get sr`, `kubectl describe sr`, `kubectl get events`, the agent's log), at the
 * size of a managed cluster: one real node with its agent, and 500 more Nodes whose reports are written here as
 * their agents would write them (some with 253-character names, as cloud node names can be).
 *
 * `SR_E2E_SHOW_OUTPUT=1` prints each command's output (the guide's examples come from it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2eCluster, eventually, GATEWAY_A, waitForRoutes } from './support/cluster.js';

const cluster = E2eCluster.forSuite({ nodes: 1 });

const SHOW = process.env.SR_E2E_SHOW_OUTPUT === '1';
const FAKE_LABEL = 'e2e.staticroute.opkit.dev/reported-here';
const UNREACHABLE = `0/1 routes applied; failed: 198.51.100.40/32: ENETUNREACH: gateway ${GATEWAY_A} is not reachable from this node (no connected route to it)`;
const REFUSED = '198.51.100.40/32 is refused: it covers this node’s own subnet';

/** A node name of the longest kind Kubernetes admits (253 characters, four DNS labels). */
const longName = (index: number): string =>
  ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), `pool-${'d'.repeat(52)}-${String(index).padStart(3, '0')}`].join(
    '.',
  );

/** 500 Nodes besides the real one: 420 that applied the route, 50 that failed, 30 long-named ones that refused it. */
const FAKE_NODES: Array<{ name: string; state: 'Applied' | 'Failed' | 'Refused'; message?: string }> = [
  ...Array.from({ length: 420 }, (_, i) => ({ name: `pool-a-${i}`, state: 'Applied' as const })),
  ...Array.from({ length: 50 }, (_, i) => ({ name: `pool-b-${i}`, state: 'Failed' as const, message: UNREACHABLE })),
  ...Array.from({ length: 30 }, (_, i) => ({ name: longName(i), state: 'Refused' as const, message: REFUSED })),
];

async function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await cluster.kubectl(args, input);
  if (SHOW) console.log(`$ kubectl ${args.join(' ')}\n${result.stdout}${result.stderr}`);
  return result;
}

/** Runs `write` for every fake node, 25 at a time (one `kubectl apply` of 500 objects takes ten times longer). */
async function forEachFakeNode(write: (node: (typeof FAKE_NODES)[number]) => Promise<void>): Promise<void> {
  for (let start = 0; start < FAKE_NODES.length; start += 25) {
    await Promise.all(FAKE_NODES.slice(start, start + 25).map(write));
  }
}

/** Creates every fake node's report about `name` (uid, generation 1), as that node's agent would, heartbeat now. */
async function writeReports(name: string, uid: string): Promise<void> {
  const now = new Date().toISOString();
  await forEachFakeNode(async (node) => {
    const report = {
      apiVersion: 'networking.digitalocean.com/v1',
      kind: 'StaticRouteNodeStatus',
      metadata: { name: node.name },
      status: {
        heartbeatTime: now,
        summary: {
          staticRoutes: 1,
          notReady: node.state === 'Applied' ? 0 : 1,
          routes: node.state === 'Applied' ? 1 : 0,
        },
        staticRoutes: {
          [name]: {
            uid,
            generation: 1,
            state: node.state,
            routes: node.state === 'Applied' ? 1 : 0,
            ...(node.message ? { message: node.message } : {}),
          },
        },
      },
    };
    const response = await cluster.controlPlane.request(
      'POST',
      '/apis/networking.digitalocean.com/v1/staticroutenodestatuses',
      report,
    );
    expect(response.status, JSON.stringify(response.body)).toBe(201);
  });
}

describe('at 501 nodes', () => {
  beforeAll(async () => {
    await forEachFakeNode(async (node) => {
      const response = await cluster.controlPlane.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node.name, labels: { [FAKE_LABEL]: 'true', 'kubernetes.io/os': 'linux' } },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
    });
  });
  afterAll(async () => {
    await cluster.kubectl(['delete', 'nodes', '-l', FAKE_LABEL, '--wait=false']);
  });

  it('describe reads in one screen (counts, the first few abbreviated nodes per reason), one Warning; Terminating says what it waits for', async () => {
    await cluster.apply(cluster.staticRoute('egress', { destinations: ['198.51.100.40'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.40/32 via ${GATEWAY_A}`]);
    const uid = (await cluster.getStaticRoute('egress'))!.metadata.uid;
    await writeReports('egress', uid);
    await eventually(async () => {
      const status = (await cluster.getStaticRoute('egress'))?.status;
      return status?.ready === '421/501' && status.notReady?.length === 2;
    }, 'READY 421/501 with two not-ready groups');

    const row = (await kubectl(['get', 'sr', 'egress'])).stdout;
    expect(row).toMatch(/egress\s+\["198\.51\.100\.40"\]\s+10\.116\.0\.5\s+421\/501\s/);

    const described = (await kubectl(['describe', 'sr', 'egress'])).stdout;
    // One screen: the summary does not grow with the nodes (a line per node would be 500 lines).
    expect(described.split('\n').length).toBeLessThan(70);
    expect(described).toContain('Failed on 50 nodes (pool-b-0, pool-b-1, pool-b-10, ...)');
    expect(described).toContain('Refused on 30 nodes');
    expect(described).toContain(UNREACHABLE);
    // A 253-character name is never printed whole; its start and its distinguishing end are.
    expect(described).not.toContain(longName(0));
    expect(described).toMatch(/a{24}…d+-000/);
    // Each distinct message once in the condition and once in its group, not once per node.
    expect(described.split(UNREACHABLE).length - 1).toBeLessThanOrEqual(3);

    // One Warning for the object's transition, not one per node; not repeated.
    await eventually(async () => (await cluster.events('egress', { type: 'Warning' })).length > 0, 'the Warning');
    const warnings = await cluster.events('egress', { type: 'Warning' });
    expect(warnings).toEqual([expect.objectContaining({ reason: 'Failed', count: 1 })]);
    expect(warnings[0]!.message.length).toBeLessThan(1024);
    await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=egress']);

    // Deleting it: the real node removes its route; the 500 others have not said so yet.
    await cluster.kubectl(['delete', 'sr', 'egress', '--wait=false']);
    await waitForRoutes(cluster.nodes, []);
    await eventually(
      async () => /Terminating 1\/501/.test((await cluster.kubectl(['get', 'sr', 'egress'])).stdout),
      'kubectl get sr: Terminating 1/501',
    );
    expect((await kubectl(['get', 'sr', 'egress'])).stdout).toMatch(
      /egress\s+\S+\s+10\.116\.0\.5\s+Terminating 1\/501/,
    );
    const terminating = (await kubectl(['describe', 'sr', 'egress'])).stdout;
    expect(terminating).toContain('waiting for 500 node(s) to remove the routes');
    expect(terminating.split('\n').length).toBeLessThan(70);

    // Nodes that are gone are not waited for.
    await cluster.kubectl(['delete', 'nodes', '-l', FAKE_LABEL, '--wait=false']);
    await cluster.waitGone('egress');
  });
});

describe('kubectl apply refuses bad input naming the value', () => {
  const refusal = async (spec: Record<string, unknown>): Promise<string> => {
    const result = await kubectl(['apply', '-f', '-'], JSON.stringify(cluster.staticRoute('bad', spec)));
    expect(result.code).not.toBe(0);
    return result.stderr;
  };

  it('a malformed destination, an IPv4-mapped address, a gateway of the other family', async () => {
    expect(await refusal({ destinations: ['10.0.0.1/33'], gateway: GATEWAY_A })).toContain('"10.0.0.1/33"');
    expect(await refusal({ destinations: ['::ffff:1.2.3.4'], gateway: GATEWAY_A })).toMatch(/IPv4-mapped/);
    expect(await refusal({ destinations: ['2001:db8::/64'], gateway: GATEWAY_A })).toContain('"2001:db8::/64"');
    expect(await refusal({ destinations: ['198.51.100.1'], gateway: 'gw.example' })).toContain('"gw.example"');
    expect(await cluster.getStaticRoute('bad')).toBeUndefined();
  });
});

describe('logs', () => {
  it('an API server restart is told in one line per retried condition, without a stack trace', async () => {
    await cluster.controlPlane.restartApiServer({ expireWatches: true });
    // The agent still works afterwards: a new object is applied.
    await cluster.apply(cluster.staticRoute('after-restart', { destinations: ['198.51.100.42'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.42/32 via ${GATEWAY_A}`]);
    const logs =
      [...cluster.operators.values()].map((agent) => agent.logs()).join('\n') +
      cluster.aggregators.map((a) => a.logs()).join('\n');
    const lines = logs.split('\n').filter((line) => line.trim() !== '');
    expect(lines.filter((line) => /"stack"|^\s+at /.test(line))).toEqual([]);
    // (An aggregator whose renewals all failed for its renew deadline says at error level that it lost the lead and
    // exits for its Deployment to restart it, as controller-runtime's managers do: that is one line too.)
  });
});
