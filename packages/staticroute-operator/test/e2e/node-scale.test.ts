/**
 * The node-scale design (docs/architecture.md, design notes §2): node agents write only their own report
 * (`StaticRouteNodeStatus`, `kubectl get srns`), and one leader-elected aggregator writes each StaticRoute's summary,
 * posts its Events and holds its one finalizer. These tests check it the way a user would: who wrote the object
 * (managedFields), `kubectl get sr` / `srns`, `kubectl get events`, the Lease, and the routes on the nodes.
 */
import https from 'node:https';
import type { SimNode } from '@opkit/testbed';
import { describe, expect, it } from 'vitest';
import {
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  ourRoutes,
  waitForRoutes,
  type AggregatorProcess,
  type EventJson,
  type StaticRouteJson,
} from './support/cluster.js';

const cluster = E2eCluster.forSuite();

const AGGREGATOR_FINALIZER = 'aggregator.staticroute.opkit.dev/routes';
const AGENT_MANAGER = 'k8s-staticroute-operator';
const AGGREGATOR_MANAGER = 'k8s-staticroute-aggregator';
const LEASE = ['-n', 'static-routes', 'lease', 'k8s-staticroute-aggregator'];

/** The Events about `name` in any namespace (they must all be in `default`), optionally of one type. */
const events = (name: string, type?: string): Promise<EventJson[]> =>
  cluster.events(name, { ...(type ? { type } : {}), allNamespaces: true });

/** The row of `kubectl get sr <name>` (NAME DESTINATIONS GATEWAY READY AGE). */
async function srRow(name: string): Promise<string> {
  const result = await cluster.kubectl(['get', 'sr', name, '--no-headers']);
  return result.stdout.trim();
}

/** Field managers of an object, from `kubectl get ... --show-managed-fields`. */
async function managers(...target: string[]): Promise<string[]> {
  const result = await cluster.kubectl([
    'get',
    ...target,
    '--show-managed-fields',
    '-o',
    'jsonpath={range .metadata.managedFields[*]}{.manager}{"\\n"}{end}',
  ]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.split('\n').filter((line) => line !== '');
}

/** Who holds the aggregator's Lease (`kubectl get lease`). */
async function leaseHolder(): Promise<string> {
  const result = await cluster.kubectl(['get', ...LEASE, '-o', 'jsonpath={.spec.holderIdentity}']);
  return result.stdout.trim();
}

/** A Prometheus sample of an aggregator's /metrics. */
async function metric(aggregator: AggregatorProcess, name: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${aggregator.probePort}/metrics`)).text();
  const line = text
    .split('\n')
    .find((row) => row.startsWith(`${name}${labels} `) || row.startsWith(`${name}{${labels}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** API writes (every verb but get, list and watch) an aggregator sent, from its opkit_api_requests_total. */
async function writesSent(aggregator: AggregatorProcess): Promise<number> {
  let total = 0;
  for (const verb of ['create', 'update', 'patch', 'delete']) {
    total += (await metric(aggregator, 'opkit_api_requests_total', `verb="${verb}"`)) ?? 0;
  }
  return total;
}

/**
 * Every version of one StaticRoute, from a watch opened before it exists (list, then watch from the list's
 * resourceVersion), until it is deleted. Resolves `deleted` with the versions seen.
 */
async function recordVersions(name: string): Promise<{ deleted: Promise<StaticRouteJson[]>; stop(): void }> {
  const base = '/apis/networking.digitalocean.com/v1/staticroutes';
  const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
  const list = await cluster.controlPlane.request<{ metadata: { resourceVersion: string }; items: unknown[] }>(
    'GET',
    `${base}?${selector}`,
  );
  expect(list.body.items).toEqual([]);
  const versions: StaticRouteJson[] = [];
  const { server, caPem, adminToken } = cluster.controlPlane;
  const url = new URL(
    `${base}?${selector}&watch=true&timeoutSeconds=900&resourceVersion=${list.body.metadata.resourceVersion}`,
    server,
  );
  let request: ReturnType<typeof https.get> | undefined;
  const deleted = new Promise<StaticRouteJson[]>((resolve, reject) => {
    request = https.get(url, { ca: caPem, headers: { authorization: `Bearer ${adminToken}` } }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`watch answered ${response.statusCode}`));
      let buffered = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.trim() === '') continue;
          const event = JSON.parse(line) as { type: string; object: StaticRouteJson };
          if (event.type === 'ERROR') reject(new Error(`watch error: ${line}`));
          versions.push(event.object);
          if (event.type === 'DELETED') resolve(versions);
        }
      });
      response.on('end', () => reject(new Error(`the watch ended before ${name} was deleted`)));
    });
    request.on('error', reject);
  });
  // The caller may stop early (a failed test): no unhandled rejection then.
  deleted.catch(() => undefined);
  return { deleted, stop: () => request?.destroy() };
}

/** Waits until the StaticRoute is gone, then for the watch's DELETED event; resolves with every version seen. */
async function versionsUntilGone(
  name: string,
  recording: { deleted: Promise<StaticRouteJson[]> },
): Promise<StaticRouteJson[]> {
  await cluster.waitGone(name);
  let seen: StaticRouteJson[] | undefined;
  void recording.deleted.then((versions) => (seen = versions));
  return eventually(() => seen, `the watch to deliver the deletion of ${name}`, 10_000);
}

/** The managers recorded in a version's managedFields (the watch returns them, as the API does). */
function managersOf(version: StaticRouteJson): string[] {
  const fields = (version.metadata as { managedFields?: Array<{ manager: string }> }).managedFields ?? [];
  return fields.map((entry) => entry.manager);
}

/**
 * Waits until every Event the aggregator recorded so far is posted: its one posting loop works in order, so once an
 * Event recorded after them shows, they are posted. The marker is a StaticRoute selecting no node (Warning
 * NoNodeSelected), deleted again.
 */
async function aggregatorEventsPosted(marker: string): Promise<void> {
  await cluster.apply(
    cluster.staticRoute(marker, {
      destinations: ['198.51.100.250'],
      gateway: GATEWAY_A,
      nodeSelector: { matchLabels: { 'node-scale.test/marker': 'no-such-node' } },
    }),
  );
  await eventually(
    async () => (await events(marker, 'Warning')).some((event) => event.reason === 'NoNodeSelected'),
    `the marker's NoNodeSelected event`,
  );
  await cluster.deleteStaticRoute(marker);
  await cluster.waitGone(marker);
}

describe('agents never write a StaticRoute', () => {
  it('create, gateway change and delete on 3 nodes: only kubectl and the aggregator wrote it, with one finalizer', async () => {
    const versions = await recordVersions('writers');
    try {
      await cluster.apply(cluster.staticRoute('writers', { destinations: ['198.51.100.20'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`198.51.100.20/32 via ${GATEWAY_A}`]);
      await eventually(async () => /\s3\/3\s/.test(await srRow('writers')), 'kubectl get sr writers: READY 3/3');
      await cluster.kubectl([
        'patch',
        'sr',
        'writers',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { gateway: GATEWAY_B } }),
      ]);
      await waitForRoutes(cluster.nodes, [`198.51.100.20/32 via ${GATEWAY_B}`]);
      const changed = await eventually(async () => {
        const object = await cluster.getStaticRoute('writers');
        return object?.status?.observedGeneration === 2 && object.status.ready === '3/3' ? object : undefined;
      }, 'READY 3/3 for generation 2');
      expect(changed.metadata.finalizers).toEqual([AGGREGATOR_FINALIZER]);
      const now = await managers('sr', 'writers');
      expect(now).toContain(AGGREGATOR_MANAGER);
      expect(now.filter((manager) => manager !== AGGREGATOR_MANAGER && !manager.startsWith('kubectl'))).toEqual([]);

      await cluster.deleteStaticRoute('writers');
      const seen = await versionsUntilGone('writers', versions);
      await waitForRoutes(cluster.nodes, []);

      // Every version, from creation to deletion: written by kubectl or the aggregator only, never an agent, and never
      // more than the aggregator's one finalizer.
      const writers = new Set(seen.flatMap(managersOf));
      expect(
        [...writers].filter((manager) => manager !== AGGREGATOR_MANAGER && !manager.startsWith('kubectl')),
      ).toEqual([]);
      expect(writers).toContain(AGGREGATOR_MANAGER);
      for (const version of seen) {
        expect(version.metadata.finalizers ?? []).toEqual(
          version.metadata.finalizers?.length ? [AGGREGATOR_FINALIZER] : [],
        );
      }
      expect(seen.some((version) => version.metadata.finalizers?.length === 1)).toBe(true);
      // The agents did write meanwhile, as themselves, to their own reports only.
      for (const node of cluster.nodes) {
        expect(await managers('srns', node.name)).toEqual([AGENT_MANAGER]);
      }
    } finally {
      versions.stop();
    }
  });
});

describe('per-node reports and the summary', () => {
  it('a failure on one node: its report says Failed, the StaticRoute READY 2/3, Ready False naming it, one Warning', async () => {
    const [node1, node2, node3] = cluster.nodes as [SimNode, SimNode, SimNode];
    // Each report belongs to its Node (garbage-collected with it).
    for (const node of cluster.nodes) {
      const uid = (await cluster.kubectl(['get', 'node', node.name, '-o', 'jsonpath={.metadata.uid}'])).stdout;
      const report = await eventually(() => cluster.nodeReport(node), `${node.name}'s report`);
      expect(report.metadata.ownerReferences).toEqual([
        expect.objectContaining({ apiVersion: 'v1', kind: 'Node', name: node.name, uid }),
      ]);
    }
    // The gateway 10.117.0.1 is reachable from node-2 and node-3 only.
    for (const node of [node2, node3]) await node.exec(['ip', 'route', 'add', '10.117.0.0/24', 'dev', 'eth0']);
    try {
      // Nothing answers at 10.117.0.1 (the route only makes it connected), which gateway health would rightly report
      // too (a GatewayUnreachable Warning): this test is about a kernel failure on one node, so it checks no gateway.
      await cluster.apply(
        cluster.staticRoute('one-fails', {
          destinations: ['198.51.100.30'],
          gateway: '10.117.0.1',
          gatewayHealth: { check: 'Disabled' },
        }),
      );
      await waitForRoutes([node2, node3], ['198.51.100.30/32 via 10.117.0.1']);
      expect(await ourRoutes(node1)).toEqual([]);
      // READY 2/3 alone may still be node-1 not having reported (Pending): wait for its failure in the summary.
      const object = await eventually(async () => {
        const current = await cluster.getStaticRoute('one-fails');
        const ready = current?.status?.conditions?.find((condition) => condition.type === 'Ready');
        return current?.status?.ready === '2/3' && ready?.reason === 'Failed' ? current : undefined;
      }, 'READY 2/3, Ready False with reason Failed');

      const failed = await cluster.nodeEntry(node1, 'one-fails');
      expect(failed).toMatchObject({ uid: object.metadata.uid, generation: 1, state: 'Failed', routes: 0 });
      expect(failed?.message).toContain('198.51.100.30/32: ENETUNREACH: gateway 10.117.0.1 is not reachable');
      for (const node of [node2, node3]) {
        expect(await cluster.nodeEntry(node, 'one-fails')).toMatchObject({
          uid: object.metadata.uid,
          generation: 1,
          state: 'Applied',
          routes: 1,
        });
      }
      // kubectl get srns: NAME STATICROUTES NOT-READY ROUTES HEARTBEAT AGE
      const reports = (await cluster.kubectl(['get', 'srns'])).stdout;
      expect(reports).toMatch(new RegExp(`${node1.name}\\s+1\\s+1\\s+0\\s`));
      for (const node of [node2, node3]) expect(reports).toMatch(new RegExp(`${node.name}\\s+1\\s+0\\s+1\\s`));

      expect(await srRow('one-fails')).toMatch(/^one-fails\s+\["198\.51\.100\.30"\]\s+10\.117\.0\.1\s+2\/3\s/);
      const ready = object.status?.conditions?.find((condition) => condition.type === 'Ready');
      expect(ready).toMatchObject({ status: 'False', reason: 'Failed' });
      expect(ready?.message).toContain(`Failed on 1 node (${node1.name}): `);
      expect(ready?.message).not.toContain(node2.name);
      expect(object.status?.notReady).toEqual([
        { state: 'Failed', count: 1, nodes: [node1.name], message: failed?.message },
      ]);
      const described = (await cluster.kubectl(['describe', 'sr', 'one-fails'])).stdout;
      expect(described).toContain(`Failed on 1 node (${node1.name})`);
      await eventually(
        async () => (await events('one-fails', 'Warning')).some((event) => event.reason === 'Failed'),
        'a Failed warning',
      );

      // Recovery: the gateway becomes reachable from node-1 too, and the aggregator announces it once.
      await node1.exec(['ip', 'route', 'add', '10.117.0.0/24', 'dev', 'eth0']);
      await waitForRoutes(cluster.nodes, ['198.51.100.30/32 via 10.117.0.1']);
      await eventually(async () => /\s3\/3\s/.test(await srRow('one-fails')), 'kubectl get sr: READY 3/3');
      await eventually(
        async () => (await events('one-fails', 'Normal')).some((event) => event.reason === 'Ready'),
        'a Normal Ready event',
      );
      // Posted in order, so every Warning about the failure was posted before the Ready event: one, not one per node
      // and not repeated (count 1).
      const warnings = await events('one-fails', 'Warning');
      expect(warnings).toEqual([expect.objectContaining({ reason: 'Failed', count: 1 })]);
      expect(warnings[0]?.message).toContain(node1.name);
      expect(await events('one-fails', 'Normal')).toEqual([expect.objectContaining({ reason: 'Ready', count: 1 })]);
    } finally {
      await cluster.deleteAllStaticRoutes();
      await waitForRoutes(cluster.nodes, []);
      for (const node of cluster.nodes) {
        await node.exec(['ip', 'route', 'del', '10.117.0.0/24', 'dev', 'eth0'], { allowFailure: true });
      }
    }
  });

  it('a nodeSelector matching no node: READY 0/0, Ready False NoNodeSelected and a Warning; a matching label applies it', async () => {
    const node = cluster.nodes[0]!;
    await cluster.apply(
      cluster.staticRoute('nowhere', {
        destinations: ['203.0.113.40'],
        gateway: GATEWAY_A,
        nodeSelector: { matchLabels: { 'node-scale.test/pool': 'egress' } },
      }),
    );
    const object = await eventually(async () => {
      const current = await cluster.getStaticRoute('nowhere');
      return current?.status?.ready === '0/0' ? current : undefined;
    }, 'READY 0/0');
    expect(await srRow('nowhere')).toMatch(/^nowhere\s+\["203\.0\.113\.40"\]\s+10\.116\.0\.5\s+0\/0\s/);
    expect(object.status?.conditions).toContainEqual(
      expect.objectContaining({
        type: 'Ready',
        status: 'False',
        reason: 'NoNodeSelected',
        message: 'spec.nodeSelector selects no node',
      }),
    );
    expect(object.status?.notReady).toEqual([]);
    await eventually(
      async () => (await events('nowhere', 'Warning')).some((event) => event.reason === 'NoNodeSelected'),
      'a NoNodeSelected warning',
    );
    // Every node reports it not selected, and installs nothing.
    for (const each of cluster.nodes) {
      await eventually(
        async () => (await cluster.nodeEntry(each, 'nowhere'))?.state === 'NotSelected',
        `${each.name} to report NotSelected`,
      );
      expect(await ourRoutes(each)).toEqual([]);
    }

    await cluster.kubectl(['label', 'node', node.name, 'node-scale.test/pool=egress']);
    try {
      await waitForRoutes([node], [`203.0.113.40/32 via ${GATEWAY_A}`]);
      await eventually(async () => /\s1\/1\s/.test(await srRow('nowhere')), 'kubectl get sr: READY 1/1');
      await eventually(
        async () => (await events('nowhere', 'Normal')).some((event) => event.reason === 'Ready'),
        'a Normal Ready event',
      );
    } finally {
      await cluster.kubectl(['label', 'node', node.name, 'node-scale.test/pool-']);
    }
  });
});

describe('nodes that are gone or silent', () => {
  it('a deleted Node whose agent is stopped: a StaticRoute deletion completes without waiting for it', async () => {
    const extra = await cluster.network.addNode();
    const versions = await recordVersions('node-gone');
    try {
      await cluster.startOperator(extra);
      await cluster.waitReady(extra);
      await cluster.apply(cluster.staticRoute('node-gone', { destinations: ['198.51.100.42'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`198.51.100.42/32 via ${GATEWAY_A}`]);
      await eventually(async () => /\s4\/4\s/.test(await srRow('node-gone')), 'kubectl get sr: READY 4/4');

      expect(await cluster.operators.get(extra.name)?.stop()).toBe(0);
      const deleted = await cluster.kubectl(['delete', 'node', extra.name]);
      expect(deleted.code, deleted.stderr).toBe(0);
      // The aggregator took the Node's departure in: the node is no longer counted.
      await eventually(async () => /\s3\/3\s/.test(await srRow('node-gone')), 'kubectl get sr: READY 3/3');

      await cluster.deleteStaticRoute('node-gone');
      const seen = await versionsUntilGone('node-gone', versions);
      await waitForRoutes(
        cluster.nodes.filter((node) => node.name !== extra.name),
        [],
      );
      // Not waited for: no status written during the deletion counts the node or names it...
      const terminating = seen.filter((version) => version.metadata.deletionTimestamp !== undefined);
      expect(terminating.length).toBeGreaterThan(0);
      for (const version of terminating) {
        expect(version.status?.ready ?? '').not.toMatch(/\/4$/);
        expect(JSON.stringify(version.status?.notReady ?? [])).not.toContain(extra.name);
      }
      // ...and not given up on after a grace period: no NodesNotConfirmed (once every Event the aggregator recorded
      // before the marker's is posted).
      await aggregatorEventsPosted('node-gone-marker');
      expect((await events('node-gone')).filter((event) => event.reason === 'NodesNotConfirmed')).toEqual([]);
      // Its routes are still there: nobody could remove them (the node's machine goes with it).
      expect(await ourRoutes(extra)).toEqual([`198.51.100.42/32 via ${GATEWAY_A}`]);
    } finally {
      versions.stop();
      cluster.operators.delete(extra.name);
      await cluster.network.removeNode(extra.name);
      // The test bed runs no garbage collector: delete the report its Node owned, as the collector would.
      await cluster.kubectl(['delete', 'srns', extra.name, '--ignore-not-found']);
    }
  });

  it('a silent agent: the deletion waits, is released after the grace period with NodesNotConfirmed, and the agent removes the orphan route when back', async () => {
    const silent = cluster.nodes[2]!;
    const others = cluster.nodes.filter((node) => node !== silent);
    await cluster.apply(cluster.staticRoute('silent', { destinations: ['198.51.100.41'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.41/32 via ${GATEWAY_A}`]);
    await eventually(async () => /\s3\/3\s/.test(await srRow('silent')), 'kubectl get sr: READY 3/3');
    expect(await cluster.operators.get(silent.name)?.stop()).toBe(0);
    try {
      // Deleted right after its agent stopped: the aggregator waits for it while its last report is recent, and looks
      // again once it turns silent and the grace has passed (nothing else changes meanwhile).
      await cluster.deleteStaticRoute('silent');
      // Waits: the other nodes confirmed, the silent one did not.
      const waiting = await eventually(async () => {
        const current = await cluster.getStaticRoute('silent');
        return current?.status?.ready === 'Terminating 2/3' ? current : undefined;
      }, 'READY Terminating 2/3');
      expect(waiting.metadata.finalizers).toEqual([AGGREGATOR_FINALIZER]);
      expect(waiting.status?.notReady).toEqual([
        expect.objectContaining({ state: 'Removing', count: 1, nodes: [silent.name] }),
      ]);
      await waitForRoutes(others, []);
      // Released after the grace period, with one Warning naming the node.
      await cluster.waitGone('silent');
      const notConfirmed = await eventually(async () => {
        const found = (await events('silent', 'Warning')).filter((event) => event.reason === 'NodesNotConfirmed');
        return found.length > 0 ? found : undefined;
      }, 'a NodesNotConfirmed warning');
      expect(notConfirmed).toHaveLength(1);
      expect(notConfirmed[0]?.message).toContain(`silent node(s): ${silent.name};`);
      // The orphan route stays until the agent is back; its full pass then removes it.
      expect(await ourRoutes(silent)).toEqual([`198.51.100.41/32 via ${GATEWAY_A}`]);
    } finally {
      await cluster.startOperator(silent);
      await cluster.waitReady(silent);
    }
    await waitForRoutes([silent], []);
    await eventually(
      async () => (await cluster.nodeEntry(silent, 'silent')) === undefined,
      `${silent.name} to drop its entry`,
    );
  });
});

describe('aggregator failover', () => {
  it('a standby never writes; it takes over when the leader stops (SIGTERM) or dies (SIGKILL), and nothing is stuck', async () => {
    const first = await eventually(async () => {
      const holder = await leaseHolder();
      return cluster.aggregators.find((aggregator) => aggregator.identity === holder);
    }, 'the Lease to name a running aggregator');
    const standby = await cluster.startAggregator();
    await cluster.apply(cluster.staticRoute('fo-before', { destinations: ['198.51.100.50'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [`198.51.100.50/32 via ${GATEWAY_A}`]);
    await eventually(async () => /\s3\/3\s/.test(await srRow('fo-before')), 'kubectl get sr fo-before: READY 3/3');
    // The standby waits: not leading, and not one write sent (the Lease is only read while someone holds it).
    expect(await leaseHolder()).toBe(first.identity);
    expect(await metric(standby, 'opkit_leader')).toBe(0);
    expect(await metric(first, 'opkit_leader')).toBe(1);
    expect(await writesSent(standby)).toBe(0);

    // SIGTERM: the leader stops its work, then releases the Lease, and exits; the standby takes over.
    expect(await first.stop()).toBe(0);
    const lines = first.logs();
    expect(lines.indexOf('"msg":"runnable stopped"')).toBeGreaterThan(0);
    expect(lines.indexOf('"msg":"leader election: lease released"')).toBeGreaterThan(
      lines.indexOf('"msg":"runnable stopped"'),
    );
    await eventually(async () => (await leaseHolder()) === standby.identity, `${standby.identity} to lead`, 60_000);
    await cluster.apply(cluster.staticRoute('fo-after-term', { destinations: ['198.51.100.51'], gateway: GATEWAY_A }));
    await eventually(async () => /\s3\/3\s/.test(await srRow('fo-after-term')), 'fo-after-term: READY 3/3', 60_000);
    expect(await metric(standby, 'opkit_leader')).toBe(1);

    // SIGKILL: the leader cannot release the Lease; the next standby takes over once it expires (15 s).
    const third = await cluster.startAggregator();
    expect(await writesSent(third)).toBe(0);
    const killed = new Promise((resolve) => standby.child.once('exit', resolve));
    standby.child.kill('SIGKILL');
    await killed;
    // Changes while nobody leads: the agents apply them, the summary follows once the new leader runs.
    await cluster.kubectl([
      'patch',
      'sr',
      'fo-before',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { gateway: GATEWAY_B } }),
    ]);
    await cluster.apply(cluster.staticRoute('fo-after-kill', { destinations: ['198.51.100.52'], gateway: GATEWAY_A }));
    await waitForRoutes(cluster.nodes, [
      `198.51.100.50/32 via ${GATEWAY_B}`,
      `198.51.100.51/32 via ${GATEWAY_A}`,
      `198.51.100.52/32 via ${GATEWAY_A}`,
    ]);
    await eventually(async () => (await leaseHolder()) === third.identity, `${third.identity} to lead`, 60_000);
    await eventually(async () => (await metric(third, 'opkit_leader')) === 1, `${third.identity}: opkit_leader 1`);

    // Consistent and complete: every object's summary is about its current generation, with the one finalizer.
    for (const name of ['fo-before', 'fo-after-term', 'fo-after-kill']) {
      const object = await eventually(async () => {
        const current = await cluster.getStaticRoute(name);
        return current?.status?.ready === '3/3' && current.status.observedGeneration === current.metadata.generation
          ? current
          : undefined;
      }, `${name}: READY 3/3 for its current generation`);
      expect(object.metadata.finalizers).toEqual([AGGREGATOR_FINALIZER]);
      expect(object.status?.conditions).toContainEqual(
        expect.objectContaining({ type: 'Ready', status: 'True', observedGeneration: object.metadata.generation }),
      );
      const writers = await managers('sr', name);
      expect(writers.filter((manager) => manager !== AGGREGATOR_MANAGER && !manager.startsWith('kubectl'))).toEqual([]);
    }
    // And deletions go through under the new leader.
    await cluster.deleteAllStaticRoutes();
    await waitForRoutes(cluster.nodes, []);
  });
});
