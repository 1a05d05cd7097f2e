/**
 * B1 (docs/RELIABILITY.md): a handler that succeeded is not run again when a later write of the same cycle fails
 * because the API server is down. Each case makes the write fail deterministically: the handler itself stops the
 * real kube-apiserver (the test bed's restart, which terminates it and starts it again) and returns only once the API
 * server refuses connections, so the framework's next write meets the outage. The test then checks, from the
 * operator's own log, that a write did fail, and that after the restart:
 * - between two handlers of one cause (the intermediate persist, cluster scope): the first handler ran once, the
 *   second once, the status shows both outcomes, no resume handler ran;
 * - after the last handler (status write after the node-local diff-base, node scope): the handler ran once, the
 *   status eventually shows its outcome and return value, no resume handler ran;
 * - a delete (finalizer release, cluster scope): the delete handler ran once, the finalizer was released, the object
 *   is gone.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnResume, Operator, type HandlerContext } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

let cluster: TestCluster;
let clusterRef: ResourceRef;
let nodeRef: ResourceRef;
const operators: OperatorHandle[] = [];
/** Handler runs, as `<handler> <name>`. */
const runs: string[] = [];
/** Names whose handler `<handler> <name>` takes the API server down after doing its work. */
const outageIn = new Set<string>();
/** The restart in progress (started by a handler). */
let restarting: Promise<void> | undefined;
/** Every log line of the operators, parsed. */
const logLines: Array<Record<string, unknown>> = [];

const countOf = (entry: string): number => runs.filter((run) => run === entry).length;

/** Starts an API server restart and resolves once the API server refuses connections (it is down). */
async function takeApiServerDown(): Promise<void> {
  restarting = cluster.cp.restartApiServer();
  await waitFor(
    async () => {
      try {
        await cluster.cp.request('GET', '/readyz');
        return false;
      } catch {
        return true;
      }
    },
    { timeoutMs: 60_000, intervalMs: 20, message: 'the API server to go down' },
  );
}

async function maybeOutage(handler: string, name: string): Promise<void> {
  if (outageIn.delete(`${handler} ${name}`)) await takeApiServerDown();
}

@Operator({ group: GROUP, version: 'v1', plural: 'outages', kind: 'Outage' })
class ClusterOutageOperator {
  @OnCreate()
  async first(ctx: HandlerContext) {
    runs.push(`first ${ctx.name}`);
    await maybeOutage('first', ctx.name);
    return { first: 'done' };
  }

  @OnCreate()
  second(ctx: HandlerContext) {
    runs.push(`second ${ctx.name}`);
    return { second: 'done' };
  }

  @OnResume()
  resumed(ctx: HandlerContext) {
    runs.push(`resume ${ctx.name}`);
  }

  @OnDelete()
  async deleted(ctx: HandlerContext) {
    runs.push(`delete ${ctx.name}`);
    await maybeOutage('delete', ctx.name);
  }
}

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'nodeoutages',
  kind: 'NodeOutage',
  scope: 'node',
  persistencePrefix: 'no.opkit.dev',
})
class NodeOutageOperator {
  @OnCreate()
  async applied(ctx: HandlerContext) {
    runs.push(`node-create ${ctx.name}`);
    await maybeOutage('node-create', ctx.name);
    ctx.patch.instanceStatus.state = 'Applied';
    return 'applied';
  }

  @OnResume()
  resumed(ctx: HandlerContext) {
    runs.push(`node-resume ${ctx.name}`);
  }

  @OnDelete()
  deleted(ctx: HandlerContext) {
    runs.push(`node-delete ${ctx.name}`);
  }
}

const get = (ref: ResourceRef, name: string) => cluster.api.get<KubeObject>(ref, name);

/** True once the operator logged a failed cycle for `name` (the fault hit a write of the framework). */
const cycleFailed = (name: string): boolean =>
  logLines.some((line) => line.msg === 'handling cycle failed; retrying' && line.object === name);

/** Waits for the restart a handler started, and for the admin client to get answers again. */
async function apiServerBack(): Promise<void> {
  await waitFor(() => restarting !== undefined, { message: 'a handler to start the outage' });
  await restarting;
  await waitFor(async () => (await cluster.cp.request('GET', '/readyz')).status === 200, { timeoutMs: 60_000 });
}

beforeAll(async () => {
  cluster = await startCluster();
  clusterRef = await cluster.installCrd('outages', 'Outage');
  nodeRef = await cluster.installCrd('nodeoutages', 'NodeOutage');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as never);
      done();
    },
  });
  operators.push(
    await startOperator({
      classes: [ClusterOutageOperator, NodeOutageOperator],
      kubeconfigPath: cluster.kubeconfigPath,
      instanceId: 'outage-node',
      stateDir: await cluster.tempDir('outage-state'),
      // No Node objects in this test: the dead-instance janitor would take this instance's marks.
      cleanupDeadInstances: false,
      // Cycles that fail on the outage are retried quickly, so the test is not slowed by backoff.
      backoff: { initialMs: 100, maxMs: 500 },
      logger: pino({ level: 'debug' }, sink),
    }),
  );
}, 120_000);
afterAll(async () => {
  await restarting?.catch(() => undefined);
  for (const operator of operators) await operator.stop();
  await cluster?.stop();
});

describe('API server down after a handler succeeded', () => {
  test('between two handlers of one cause: neither runs twice, both outcomes reach status, no resume', async () => {
    outageIn.add('first between');
    await cluster.api.create(clusterRef, testObject('Outage', 'between', {}));
    await apiServerBack();
    const object = await waitFor(
      async () => {
        const current = await get(clusterRef, 'between');
        const status = current.status as Record<string, unknown> | undefined;
        return status?.first !== undefined && status.second !== undefined && current;
      },
      { timeoutMs: 60_000, message: 'both return values in status' },
    );
    expect(cycleFailed('between'), 'the outage made a write of the cycle fail').toBe(true);
    expect(object.status).toMatchObject({
      first: { first: 'done' },
      second: { second: 'done' },
      handlers: { first: { outcome: 'success', cause: 'create' }, second: { outcome: 'success', cause: 'create' } },
    });
    expect(object.metadata.annotations?.['opkit.dev/progress']).toBeUndefined();
    expect(object.metadata.annotations?.['opkit.dev/last-handled-configuration']).toBeDefined();
    expect(countOf('first between')).toBe(1);
    expect(countOf('second between')).toBe(1);
    expect(countOf('resume between')).toBe(0);
  }, 180_000);

  test('after the last handler (status write, node scope): runs once, outcome reaches status, no resume', async () => {
    restarting = undefined;
    outageIn.add('node-create last');
    await cluster.api.create(nodeRef, testObject('NodeOutage', 'last', {}));
    await apiServerBack();
    const object = await waitFor(
      async () => {
        const current = await get(nodeRef, 'last');
        const entry = (current.status as { nodes?: Record<string, Record<string, unknown>> } | undefined)?.nodes?.[
          'outage-node'
        ];
        return entry?.applied !== undefined && current;
      },
      { timeoutMs: 60_000, message: 'the return value in status' },
    );
    expect(cycleFailed('last'), 'the outage made a write of the cycle fail').toBe(true);
    expect(object.status).toMatchObject({
      nodes: {
        'outage-node': { state: 'Applied', applied: 'applied', handlers: { applied: { outcome: 'success' } } },
      },
    });
    expect(countOf('node-create last')).toBe(1);
    expect(countOf('node-resume last')).toBe(0);
  }, 180_000);

  test('a delete: the handler runs once, then the finalizer is released and the object is gone', async () => {
    await cluster.api.create(clusterRef, testObject('Outage', 'leaving', {}));
    await waitFor(async () => {
      const current = await get(clusterRef, 'leaving');
      return current.metadata.annotations?.['opkit.dev/last-handled-configuration'] !== undefined;
    });
    restarting = undefined;
    outageIn.add('delete leaving');
    await cluster.api.delete(clusterRef, 'leaving');
    await apiServerBack();
    await waitFor(async () => (await get(clusterRef, 'leaving').catch(() => 'gone')) === 'gone', {
      timeoutMs: 60_000,
      message: 'the object to be released and gone',
    });
    expect(cycleFailed('leaving'), 'the outage made a write of the cycle fail').toBe(true);
    expect(countOf('delete leaving')).toBe(1);
    expect(countOf('resume leaving')).toBe(0);
  }, 180_000);
});
