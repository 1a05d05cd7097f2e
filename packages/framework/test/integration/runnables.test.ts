/**
 * Runnables (components the runtime starts and stops beside the operators) and the own-node Nodes watch, against a
 * real API server: what a runnable's context offers, the order of start and stop around `@OnStartup`/`@OnCleanup`,
 * readiness and health in the probes, failed and hanging starts; a node-scope runtime with `nodeWatch: 'own'` that
 * sees only its own Node and runs no dead-instance janitor.
 */
import { Counter } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  OnCleanup,
  OnStartup,
  Operator,
  runOperators,
  type ActivityContext,
  type KubeObject,
  type NodeChange,
  type OperatorRuntime,
  type ResourceRef,
  type Runnable,
  type RunnableContext,
  type RuntimeSettings,
} from 'opkit';
import { waitFor } from '../../src/testing/index.js';
import { GROUP, Gate, startCluster, type TestCluster } from './helpers.js';

const NODES: ResourceRef = { group: '', version: 'v1', plural: 'nodes' };
const CONFIGMAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };

const timeline: string[] = [];

@Operator({ group: GROUP, version: 'v1', plural: 'hosts', kind: 'Host' })
class HostOperator {
  @OnStartup()
  started(): void {
    timeline.push('startup');
  }

  @OnCleanup()
  cleanedUp(): void {
    timeline.push('cleanup');
  }
}

let ownStartup: { nodes: string[]; cleanupDeadInstances: boolean } | undefined;

@Operator({ group: GROUP, version: 'v1', plural: 'hostroutes', kind: 'HostRoute', scope: 'node' })
class NodeScopedOperator {
  @OnStartup()
  async started(ctx: ActivityContext): Promise<void> {
    await ctx.nodes?.whenSynced(ctx.signal);
    ownStartup = {
      nodes: (ctx.nodes?.list() ?? []).map((node) => node.metadata.name),
      cleanupDeadInstances: ctx.settings.cleanupDeadInstances,
    };
  }
}

/** A runnable that records its life and keeps its context; readiness and health are switches. */
class Probe implements Runnable {
  context: RunnableContext | undefined;
  ready = true;
  healthy = true;
  constructor(
    readonly name: string,
    private readonly startWith: () => Promise<void> | void = () => undefined,
  ) {}
  async start(context: RunnableContext): Promise<void> {
    this.context = context;
    timeline.push(`${this.name}:start`);
    await this.startWith();
  }
  async stop(): Promise<void> {
    timeline.push(`${this.name}:stop${this.context?.signal.aborted ? ' (signal aborted)' : ''}`);
  }
  isReady(): boolean {
    return this.ready;
  }
  isHealthy(): boolean {
    return this.healthy;
  }
}

let cluster: TestCluster;
const running: OperatorRuntime[] = [];

function start(classes: Parameters<typeof runOperators>[0], settings: RuntimeSettings): OperatorRuntime {
  const runtime = runOperators(classes, { kubeconfigPath: cluster.kubeconfigPath, logLevel: 'warn', ...settings });
  running.push(runtime);
  return runtime;
}

const probe = async (runtime: OperatorRuntime, path: string) => {
  const port = await waitFor(() => runtime.probePort);
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
};

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCrd('hosts', 'Host');
  await cluster.installCrd('hostroutes', 'HostRoute');
  for (const name of ['node-a', 'node-b', 'node-c']) {
    await cluster.api.create(NODES, { apiVersion: 'v1', kind: 'Node', metadata: { name } });
  }
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
  timeline.length = 0;
});
afterAll(async () => {
  await cluster?.stop();
});

describe('runnables', () => {
  test('runOperators needs operator classes or runnables', () => {
    expect(() => runOperators([], {})).toThrow(/no operator classes/);
    expect(() => runOperators([], { runnables: [new Probe('one'), new Probe('one')] })).toThrow(/two runnables/);
  });

  test('a runtime of runnables only: the context offers the API, a bound logger, metrics, Events and a signal', async () => {
    const probeRunnable = new Probe('watcher');
    const runtime = start([], { instanceId: 'solo', runnables: [probeRunnable] });
    await runtime.ready;
    const ctx = probeRunnable.context as RunnableContext;

    expect(ctx.logger.bindings()).toMatchObject({ runnable: 'watcher' });
    expect(ctx.settings.instanceId).toBe('solo');
    expect(ctx.nodes).toBeUndefined();
    expect(ctx.signal.aborted).toBe(false);
    const target = await ctx.api.create<KubeObject>(
      CONFIGMAPS,
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'seen-by-runnable' } },
      'default',
    );
    ctx.events.about(target).normal('Seen', 'a runnable saw it');
    const events = await waitFor(async () => {
      const list = await cluster.api.list<KubeObject & { reason: string; involvedObject: { kind: string } }>(EVENTS, {
        namespace: 'default',
        fieldSelector: 'involvedObject.name=seen-by-runnable',
      });
      return list.items.length > 0 && list.items;
    });
    expect(events.map((event) => [event.reason, event.involvedObject.kind])).toEqual([['Seen', 'ConfigMap']]);
    new Counter({ name: 'runnable_things_total', help: 'things', registers: [ctx.metrics.registry] }).inc();
    expect(await runtime.metrics.registry.metrics()).toContain('runnable_things_total 1');

    await runtime.stop();
    expect(ctx.signal.aborted).toBe(true);
    expect(await runtime.done).toBe('stop-requested');
  });

  test('started after the startup handlers in order, stopped in reverse before the cleanup handlers', async () => {
    const runtime = start([HostOperator], { runnables: [new Probe('first'), new Probe('second')] });
    await runtime.ready;
    await runtime.stop();
    expect(timeline).toEqual([
      'startup',
      'first:start',
      'second:start',
      'second:stop (signal aborted)',
      'first:stop (signal aborted)',
      'cleanup',
    ]);
  });

  test("readiness and health include the runnables'", async () => {
    const slow = new Probe('slow');
    slow.ready = false;
    const runtime = start([HostOperator], { runnables: [slow], probes: { host: '127.0.0.1', port: 0 } });
    await waitFor(() => timeline.includes('slow:start'));
    expect(runtime.isReady()).toBe(false);
    expect(await probe(runtime, '/readyz')).toBe(503);

    slow.ready = true;
    await runtime.ready;
    expect(await probe(runtime, '/readyz')).toBe(200);
    expect(await probe(runtime, '/healthz')).toBe(200);

    slow.healthy = false;
    expect(runtime.isHealthy()).toBe(false);
    expect(await probe(runtime, '/healthz')).toBe(503);
  });

  test('a runnable that fails to start fails the start; those started before it are stopped', async () => {
    const runtime = start([HostOperator], {
      runnables: [
        new Probe('fine'),
        new Probe('broken', () => {
          throw new Error('no socket');
        }),
      ],
    });
    await expect(runtime.ready).rejects.toThrow("runnable 'broken' failed to start: no socket");
    await runtime.stop();
    expect(timeline).toEqual([
      'startup',
      'fine:start',
      'broken:start',
      'broken:stop (signal aborted)',
      'fine:stop (signal aborted)',
    ]);
  });

  test('a stop during a start that hangs stops the runnable anyway', async () => {
    const never = new Gate();
    const runtime = start([], { runnables: [new Probe('hanging', () => never.wait())] });
    await waitFor(() => timeline.includes('hanging:start'));
    await runtime.stop();
    await expect(runtime.ready).rejects.toThrow();
    expect(timeline).toEqual(['hanging:start', 'hanging:stop (signal aborted)']);
  });
});

describe("nodeWatch: 'own'", () => {
  test('a node-scope runtime sees only its own Node, and its changes only', async () => {
    const agent = new Probe('agent');
    const runtime = start([NodeScopedOperator], {
      instanceId: 'node-a',
      nodeWatch: 'own',
      stateDir: await cluster.tempDir('own'),
      runnables: [agent],
    });
    await runtime.ready;
    expect(ownStartup).toEqual({ nodes: ['node-a'], cleanupDeadInstances: false });
    const nodes = agent.context?.nodes;
    expect(nodes?.list().map((node) => node.metadata.name)).toEqual(['node-a']);
    expect(nodes?.own()?.metadata.name).toBe('node-a');
    expect(nodes?.get('node-b')).toBeUndefined();

    const changes: NodeChange[] = [];
    nodes?.onChange((change) => changes.push(change));
    const label = (name: string, value: string) =>
      cluster.api.patch(NODES, name, { metadata: { labels: { mark: value } } }, { type: 'merge' });
    // One watch stream delivers in resourceVersion order: once node-a's later change arrived, node-b's would have.
    await label('node-b', 'first');
    await label('node-a', 'second');
    await waitFor(() => changes.some((change) => change.type === 'upsert' && change.node.metadata.labels?.mark));
    expect(changes.map((change) => (change.type === 'synced' ? 'synced' : change.node.metadata.name))).toEqual([
      'node-a',
    ]);
  });

  test("by default every Node is watched (the runnables' view included)", async () => {
    const agent = new Probe('agent');
    const runtime = start([], { instanceId: 'node-a', scope: 'node', runnables: [agent] });
    await runtime.ready;
    await agent.context?.nodes?.whenSynced();
    expect(
      agent.context?.nodes
        ?.list()
        .map((node) => node.metadata.name)
        .sort(),
    ).toEqual(['node-a', 'node-b', 'node-c']);
    expect(runtime.settings.cleanupDeadInstances).toBe(true);
  });

  test('the dead-instance janitor cannot be asked for with the own-node watch', () => {
    expect(() => runOperators([NodeScopedOperator], { nodeWatch: 'own', cleanupDeadInstances: true })).toThrow(
      /needs every Node/,
    );
  });
});
