/**
 * Operations: /healthz, /readyz and /metrics; API requests per handled change in the steady state; status written
 * on the main resource when the CRD has no status subresource.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnStartup, OnUpdate, Operator, type HandlerContext, type KubeObject } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { ResourceRef } from '../../src/kube/types.js';
import { Gate, GROUP, sleep, startCluster, testObject, type TestCluster } from './helpers.js';

const startupGate = new Gate();

@Operator({ group: GROUP, version: 'v1', plural: 'counters', kind: 'Counter' })
class ClusterCounter {
  @OnStartup() async start() {
    await startupGate.wait();
  }
  @OnCreate() created() {}
  @OnUpdate() updated(ctx: HandlerContext) {
    ctx.patch.status.lastSeen = (ctx.new?.spec as { v?: number } | undefined)?.v ?? null;
  }
  @OnDelete() deleted() {}
}

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'nodecounters',
  kind: 'NodeCounter',
  scope: 'node',
  persistencePrefix: 'nc.opkit.dev',
})
class NodeCounter {
  @OnCreate() created() {}
  @OnUpdate() updated(ctx: HandlerContext) {
    ctx.patch.instanceStatus.lastSeen = (ctx.new?.spec as { v?: number } | undefined)?.v ?? null;
  }
  @OnDelete() deleted() {}
}

@Operator({ group: GROUP, version: 'v1', plural: 'plainthings', kind: 'PlainThing' })
class PlainOperator {
  @OnCreate() created() {
    return 'done';
  }
}

@Operator({ group: GROUP, version: 'v1', plural: 'tenants', kind: 'Tenant', namespaced: true })
class TenantOperator {
  @OnCreate() created(ctx: HandlerContext) {
    return `seen in ${ctx.namespace}`;
  }
}

let cluster: TestCluster;
let counters: ResourceRef;
let nodeCounters: ResourceRef;
let plain: ResourceRef;
let tenants: ResourceRef;
let operator: OperatorHandle;
const requests: Array<{ verb: string; plural: string }> = [];

beforeAll(async () => {
  cluster = await startCluster();
  counters = await cluster.installCrd('counters', 'Counter');
  nodeCounters = await cluster.installCrd('nodecounters', 'NodeCounter');
  plain = await cluster.installCrd('plainthings', 'PlainThing', { statusSubresource: false });
  tenants = await cluster.installCrd('tenants', 'Tenant', { namespaced: true });
  for (const name of ['team-a', 'team-b']) {
    await cluster.api.create({ group: '', version: 'v1', plural: 'namespaces' }, { metadata: { name } });
  }
  operator = await startOperator({
    classes: [ClusterCounter, NodeCounter, PlainOperator, TenantOperator],
    namespaces: ['team-a'],
    kubeconfigPath: cluster.kubeconfigPath,
    instanceId: 'ops-node',
    stateDir: await cluster.tempDir('ops-state'),
    probes: { host: '127.0.0.1', port: 0 },
    onApiRequest: (verb, ref) => requests.push({ verb, plural: ref.plural }),
    waitReady: false,
  });
});
afterAll(async () => {
  startupGate.open();
  await operator?.stop();
  await cluster?.stop();
});

const probe = async (path: string): Promise<{ status: number; body: string }> => {
  const response = await fetch(`http://127.0.0.1:${operator.probePort}${path}`);
  return { status: response.status, body: await response.text() };
};

describe('probes', () => {
  test('/healthz answers while startup blocks, /readyz only once startup is done and the lists are handled', async () => {
    await waitFor(() => operator.probePort);
    expect((await probe('/healthz')).status).toBe(200);
    expect((await probe('/readyz')).status).toBe(503);
    startupGate.open();
    await operator.ready;
    expect((await probe('/readyz')).status).toBe(200);
    expect((await probe('/healthz')).status).toBe(200);
    expect((await probe('/nope')).status).toBe(404);
  });
});

/** Writes to `plural` (not list/watch/event requests) made while `change` is handled. */
async function writesPerChange(
  ref: ResourceRef,
  name: string,
  change: () => Promise<unknown>,
  handled: (o: KubeObject) => boolean,
): Promise<string[]> {
  const from = requests.length;
  await change();
  await waitFor(async () => handled(await cluster.api.get<KubeObject>(ref, name)));
  // Let the watch deliver our own writes and the queue run its cycles for them (no-ops): a write any of those cycles
  // made would be counted below. This wait bounds what is observed, it asserts nothing about speed.
  await sleep(500);
  return requests
    .slice(from)
    .filter((request) => request.plural === ref.plural && request.verb !== 'watch' && request.verb !== 'list')
    .map((request) => request.verb);
}

describe('API requests per handled change', () => {
  test('cluster scope: two (metadata JSON patch with the diff-base, status merge patch)', async () => {
    await cluster.api.create(counters, testObject('Counter', 'c1', { v: 0 }));
    // The create handler only succeeds: nothing goes to status, the diff-base annotation says it was handled.
    await waitFor(async () => {
      const object = await cluster.api.get<KubeObject>(counters, 'c1');
      return object.metadata.annotations?.['opkit.dev/last-handled-configuration'];
    });
    for (const v of [1, 2, 3]) {
      const writes = await writesPerChange(
        counters,
        'c1',
        () => cluster.api.patch(counters, 'c1', { spec: { v } }, { type: 'merge' }),
        (object) => (object.status as { lastSeen?: number } | undefined)?.lastSeen === v,
      );
      // The metadata patch with the diff-base, and the status merge patch (the handler patched status).
      expect(writes).toEqual(['patch', 'patch']);
    }
  });

  test('node scope: at most two (here one: the status entry; the diff-base is node-local)', async () => {
    await cluster.api.create(nodeCounters, testObject('NodeCounter', 'n1', { v: 0 }));
    // The create handler only succeeds: nothing goes to status (the finalizer, added before it, shows the cycle ran).
    await waitFor(async () => {
      const object = await cluster.api.get<KubeObject>(nodeCounters, 'n1');
      const metrics = await operator.metricsText();
      return (
        object.metadata.finalizers?.includes('nc.opkit.dev/ops-node') &&
        /opkit_handler_runs_total\{operator="NodeCounter",handler="created",cause="create",outcome="success"\} 1/.test(
          metrics,
        )
      );
    });
    for (const v of [1, 2]) {
      const writes = await writesPerChange(
        nodeCounters,
        'n1',
        () => cluster.api.patch(nodeCounters, 'n1', { spec: { v } }, { type: 'merge' }),
        (object) =>
          (object.status as { nodes?: Record<string, { lastSeen?: number }> } | undefined)?.nodes?.['ops-node']
            ?.lastSeen === v,
      );
      expect(writes).toEqual(['patch']);
    }
    const object = await cluster.api.get<KubeObject>(nodeCounters, 'n1');
    expect(object.metadata.finalizers).toEqual(['nc.opkit.dev/ops-node']);
    expect(Object.keys(object.metadata.annotations ?? {})).toEqual([]);
  });
});

describe('metrics', () => {
  test('/metrics exposes handler runs, durations, queue depth, API requests', async () => {
    const { status, body } = await probe('/metrics');
    expect(status).toBe(200);
    expect(body).toMatch(
      /opkit_handler_runs_total\{operator="ClusterCounter",handler="updated",cause="update",outcome="success"\} 3/,
    );
    expect(body).toContain('opkit_handler_duration_seconds_bucket');
    expect(body).toContain('opkit_queue_depth{operator="ClusterCounter"}');
    expect(body).toMatch(/opkit_api_requests_total\{verb="patch"\} \d+/);
    // The runtime's own client reports latency and status codes (what alerts on API trouble watch).
    expect(body).toMatch(/opkit_api_responses_total\{verb="patch",code="200"\} \d+/);
    expect(body).toContain('opkit_api_request_duration_seconds_bucket{le=');
  });
});

describe('status without a status subresource', () => {
  test('outcomes and results are written on the main resource', async () => {
    await cluster.api.create(plain, testObject('PlainThing', 'p1', {}));
    const object = await waitFor(async () => {
      const current = await cluster.api.get<KubeObject>(plain, 'p1');
      return (current.status as { created?: string } | undefined)?.created === 'done' && current;
    });
    expect(object.status).toMatchObject({ created: 'done', handlers: { created: { outcome: 'success' } } });
  });
});

describe('namespaced resources', () => {
  test('only the configured namespaces are watched and handled', async () => {
    await cluster.api.create(tenants, testObject('Tenant', 't1', {}), 'team-b');
    await cluster.api.create(tenants, testObject('Tenant', 't1', {}), 'team-a');
    const handled = await waitFor(async () => {
      const object = await cluster.api.get<KubeObject>(tenants, 't1', 'team-a');
      return (object.status as { created?: string } | undefined)?.created;
    });
    expect(handled).toBe('seen in team-a');
    const ignored = await cluster.api.get<KubeObject>(tenants, 't1', 'team-b');
    expect(ignored.status).toBeUndefined();
    expect(ignored.metadata.finalizers).toBeUndefined();
  });
});
