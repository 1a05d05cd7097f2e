/**
 * Faults of the control plane, of the operator process, of the network and of the node's routing table, injected
 * on one cluster (one cluster start for both groups; scripts/chaos.sh process-faults / network-faults pick a group):
 *
 * Process faults, with the operators' default periodic pass (30 s in the fixture), so that convergence comes from
 * the event-driven handling and not from the safety net; StaticRoutes are created, patched (destinations and
 * gateways) and deleted meanwhile:
 * - the API server restarted (2x short / 5x long) and etcd killed and restarted (1x / 2x);
 * - operator processes SIGKILLed at random moments (5 short / 50 long) and started again.
 * Afterwards every node's table equals the desired set exactly, deleted objects are gone, live objects hold one
 * finalizer per node, and (without process kills) no handler ran twice for one change.
 *
 * Network faults, with the operators restarted with RECONCILE_INTERVAL_SECONDS=1 so that every observation window
 * spans several periodic passes:
 * - routes changed behind the operator's back (deleted, gateway altered, a conflicting foreign route, a hostile
 *   process deleting a route over and over): restored or reported, and never flapping (route notifications counted
 *   over a quiet window of 4 s short / 30 s long, i.e. at least 3 periodic passes);
 * - a node cut off from the API server (15 s short / 60 s long) while objects change: its installed routes stay,
 *   the other nodes converge meanwhile, and it catches up once back;
 * - a node removed from the cluster while it holds finalizers: its finalizers and status entries are released and
 *   the objects can be deleted (last: the node does not come back).
 *
 * Short form by default; `CHAOS_LONG=1` (scripts/chaos.sh --long) runs the long one. `CHAOS_SEED` replays a run.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RouteEvent, SimNode } from '@opkit/testbed';
import { E2eCluster, eventually, GATEWAY_A, GATEWAY_B, ourRoutes, waitForRoutes } from '../e2e/support/cluster.js';
import { Churn, sleep } from './support/churn.js';
import {
  expectConverged,
  expectConvergedPhases,
  expectEachChangeHandledOnce,
  expectNoOrphanState,
  LONG,
  recordFigures,
  scrapeAll,
} from './support/converge.js';
import { allLogsOf, isAlive, logsOf, PREFIX, warnings } from './support/observe.js';
import { seededRandom, seedFrom } from './support/random.js';

const SEED = seedFrom('CHAOS_SEED', 34);
const PLAN = LONG
  ? { apiRestarts: 5, etcdRestarts: 2, operations: 200, kills: 50 }
  : { apiRestarts: 2, etcdRestarts: 1, operations: 30, kills: 5 };
const TIMEOUT = LONG ? 3_600_000 : 240_000;
const CUT_MS = LONG ? 60_000 : 15_000;
/** Periodic pass of the operators in the network-fault tests. */
const RECONCILE_SECONDS = 1;
/** Spans at least 3 periodic passes (4 in the short form, 30 in the long one). */
const QUIET_WINDOW_MS = LONG ? 30_000 : 4_000;

const cluster = E2eCluster.forSuite({ cleanTimeoutMs: 60_000 });

function operatorsAlive(nodes: readonly SimNode[] = cluster.nodes): void {
  for (const node of nodes) {
    const operator = cluster.operators.get(node.name)!;
    expect(isAlive(operator), `operator on ${node.name} exited:\n${operator.logs().slice(-2000)}`).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Process faults
// ---------------------------------------------------------------------------------------------------------------

/** Operation indices after which a fault is injected: evenly spread, never at the very start or end. */
function faultPoints(operations: number, faults: number): Set<number> {
  return new Set(Array.from({ length: faults }, (_, index) => Math.floor(((index + 1) * operations) / (faults + 1))));
}

/**
 * Runs the churn and the faults together; resolves with the duration of each fault. Each fault strikes together
 * with a delete, so that the nodes are in the middle of releasing an object when the control plane goes away.
 */
async function churnWithFaults(
  churn: Churn,
  operations: number,
  faults: number,
  inject: () => Promise<void>,
): Promise<number[]> {
  const points = faultPoints(operations, faults);
  const durations: number[] = [];
  let chain = Promise.resolve();
  await churn.run(operations, (index) => {
    if (!points.has(index)) return;
    // In the background: the churn goes on while the control plane is down (its requests retry).
    chain = chain.then(async () => {
      const started = Date.now();
      const deleting = churn.removeAny();
      await inject();
      await deleting;
      durations.push(Date.now() - started);
    });
  });
  await chain;
  return durations;
}

/** One control-plane fault scenario: churn with `faults` injections, then convergence and the handled-once check. */
async function churnThroughControlPlaneFaults(scenario: {
  figure: string;
  seed: number;
  prefix: string;
  firstSerial?: number;
  faults: number;
  inject: () => Promise<void>;
}): Promise<void> {
  const startedAt = new Date().toISOString();
  const before = await scrapeAll(cluster.nodes);
  const churn = new Churn(cluster, {
    seed: scenario.seed,
    gateways: [GATEWAY_A, GATEWAY_B],
    prefix: scenario.prefix,
    ...(scenario.firstSerial === undefined ? {} : { firstSerial: scenario.firstSerial }),
  });
  const restarts = await churnWithFaults(churn, PLAN.operations, scenario.faults, scenario.inject);
  expect(restarts).toHaveLength(scenario.faults);
  const converged = await expectConvergedPhases(cluster, churn);
  operatorsAlive();
  const logs = new Map(
    cluster.nodes.map((node) => [
      node.name,
      logsOf(cluster.operators.get(node.name)!).filter((entry) => entry.time >= startedAt),
    ]),
  );
  const handled = expectEachChangeHandledOnce(before, await scrapeAll(cluster.nodes), churn, logs);
  recordFigures(scenario.figure, {
    seed: scenario.seed,
    restarts: restarts.length,
    restartMs: restarts,
    changes: churn.counts,
    convergedAfterChurnMs: converged.totalMs,
    convergedPhasesMs: converged,
    handlerSuccessesPerNode: handled,
    operatorWarnings: [...logs.values()].map((entries) => warnings(entries).length),
  });
}

describe('process faults', () => {
  describe('control plane faults during churn', () => {
    it(
      `API server restarted ${PLAN.apiRestarts}x during ${PLAN.operations} changes: converges, each change handled once`,
      () =>
        churnThroughControlPlaneFaults({
          figure: 'api-server-restarts',
          seed: SEED,
          prefix: 'api',
          faults: PLAN.apiRestarts,
          inject: () => cluster.controlPlane.restartApiServer(),
        }),
      TIMEOUT,
    );

    it(
      `etcd killed and restarted ${PLAN.etcdRestarts}x during ${PLAN.operations} changes: converges, each change handled once`,
      () =>
        churnThroughControlPlaneFaults({
          figure: 'etcd-restarts',
          seed: SEED + 1,
          prefix: 'etcd',
          firstSerial: 1000,
          faults: PLAN.etcdRestarts,
          inject: () => cluster.controlPlane.restartEtcd(),
        }),
      TIMEOUT,
    );
  });

  describe('operator processes killed during churn', () => {
    it(
      `SIGKILL at ${PLAN.kills} random moments: same end state, no orphan route, no stuck finalizer, no orphan state`,
      async () => {
        const random = seededRandom(SEED + 2);
        const churn = new Churn(cluster, {
          seed: SEED + 3,
          gateways: [GATEWAY_A, GATEWAY_B],
          prefix: 'kill',
          firstSerial: 2000,
        });
        const kills: Array<{ node: string; atMs: number; uptimeMs: number }> = [];
        const started = Date.now();
        let killing = true;
        const killer = (async () => {
          const startedAt = new Map(cluster.nodes.map((node) => [node.name, Date.now()]));
          for (let index = 0; index < PLAN.kills; index++) {
            await sleep(random.int(300, 2500));
            const node = random.pick(cluster.nodes);
            const operator = cluster.operators.get(node.name)!;
            const exited = new Promise((resolve) => operator.child.once('exit', resolve));
            if (isAlive(operator)) operator.child.kill('SIGKILL');
            await exited;
            kills.push({
              node: node.name,
              atMs: Date.now() - started,
              uptimeMs: Date.now() - (startedAt.get(node.name) ?? 0),
            });
            // Down for a random while, then started again (a DaemonSet restarts the pod); the next kill may hit it
            // before it is ready.
            await sleep(random.int(0, 1500));
            await cluster.startOperator(node);
            startedAt.set(node.name, Date.now());
          }
          killing = false;
        })();
        let operations = 0;
        while (killing || operations < PLAN.operations) {
          await churn.step();
          operations++;
          await sleep(random.int(50, 250));
        }
        await killer;
        for (const node of cluster.nodes) await cluster.waitReady(node, 120_000);
        const convergedMs = await expectConverged(cluster, churn);
        await expectNoOrphanState(cluster);
        operatorsAlive();
        // Every process that ever ran logged nothing at fatal level (a crash other than our SIGKILL).
        for (const node of cluster.nodes) {
          const fatal = allLogsOf(cluster, node.name).filter((entry) => entry.level >= 60);
          expect(fatal, `${node.name}: fatal log lines`).toEqual([]);
        }
        recordFigures('operator-sigkill', {
          seed: SEED + 2,
          kills: kills.length,
          killedUptimeMs: kills.map((kill) => kill.uptimeMs),
          operations,
          changes: churn.counts,
          convergedAfterChurnMs: convergedMs,
        });
      },
      TIMEOUT,
    );
  });

  describe('status writes refused for a while', () => {
    it('are retried with backoff once the API accepts them again, without waiting for a periodic pass', async () => {
      // A periodic pass of an hour: only the status writer's own retries can bring the entries within the bound.
      await cluster.stopOperators();
      await cluster.startOperators({ env: { RECONCILE_INTERVAL_SECONDS: '3600' } });
      const patchRole = async (ops: object[]) => {
        const result = await cluster.kubectl([
          'patch',
          'clusterrole',
          'k8s-staticroute-operator',
          '--type=json',
          '-p',
          JSON.stringify(ops),
        ]);
        expect(result.code, result.stderr).toBe(0);
      };
      const read = await cluster.kubectl(['get', 'clusterrole', 'k8s-staticroute-operator', '-o', 'json']);
      const role = JSON.parse(read.stdout) as { rules: Array<{ resources: string[] }> };
      const statusRule = role.rules.findIndex((rule) => rule.resources.includes('staticroutes/status'));
      expect(statusRule, 'the shipped role grants staticroutes/status').toBeGreaterThanOrEqual(0);
      await patchRole([{ op: 'remove', path: `/rules/${statusRule}` }]);
      try {
        await cluster.apply(
          cluster.staticRoute('refused-status', { destinations: ['34.118.0.0/16'], gateway: GATEWAY_A }),
        );
        await waitForRoutes(cluster.nodes, [`34.118.0.0/16 via ${GATEWAY_A}`]);
        await eventually(
          async () =>
            cluster.nodes.every((node) =>
              logsOf(cluster.operators.get(node.name)!).some((entry) => /cannot write status/.test(entry.msg)),
            ),
          'every node logged a refused status write',
        );
      } finally {
        await patchRole([{ op: 'add', path: `/rules/${statusRule}`, value: role.rules[statusRule] }]);
      }
      await eventually(
        async () => {
          const object = await cluster.getStaticRoute('refused-status');
          const generation = object?.metadata.generation;
          return (
            object?.status?.ready === '3/3' &&
            cluster.nodes.every((node) => {
              const entry = object.status?.nodes?.[node.name];
              return entry?.state === 'Applied' && entry.observedGeneration === generation;
            })
          );
        },
        'every node reported Applied after the role was restored',
        60_000,
      );
      await cluster.deleteStaticRoute('refused-status');
      await cluster.waitGone('refused-status');
      await cluster.stopOperators();
      await cluster.startOperators();
      operatorsAlive();
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Network faults
// ---------------------------------------------------------------------------------------------------------------

/** Route notifications about `dst` with the operator's protocol. */
function ours(events: RouteEvent[], dst: string): RouteEvent[] {
  return events.filter((event) => event.route.dst === dst && event.route.protocol === 201);
}

async function entryOf(name: string, node: SimNode) {
  return (await cluster.getStaticRoute(name))?.status?.nodes?.[node.name];
}

describe('network faults', () => {
  beforeAll(async () => {
    await cluster.stopOperators();
    await cluster.startOperators({ env: { RECONCILE_INTERVAL_SECONDS: String(RECONCILE_SECONDS) } });
  });

  describe('routes changed behind the operator’s back', () => {
    it('a route deleted by hand is restored once, then left alone (no flap)', async () => {
      await cluster.apply(cluster.staticRoute('manual-del', { destinations: ['34.90.0.1'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`34.90.0.1/32 via ${GATEWAY_A}`]);
      const node = cluster.nodes[0]!;
      const monitor = await node.monitorRoutes();
      const deletedAt = Date.now();
      await node.exec(['ip', 'route', 'del', '34.90.0.1/32']);
      const restored = await monitor.waitFor(
        (event) => event.kind === 'add' && event.route.dst === '34.90.0.1/32',
        30_000,
      );
      await sleep(QUIET_WINDOW_MS);
      await monitor.stop();
      const events = ours(monitor.events(), '34.90.0.1/32');
      // Our delete, the operator's one add; nothing in the quiet window that follows.
      expect(events.map((event) => event.kind)).toEqual(['delete', 'add']);
      expect(await ourRoutes(node)).toEqual([`34.90.0.1/32 via ${GATEWAY_A}`]);
      recordFigures('drift-deleted-route', {
        restoredAfterMs: restored.at - deletedAt,
        eventsInWindow: events.length,
        windowMs: QUIET_WINDOW_MS,
      });
    });

    it('a gateway altered by hand is put back once, then left alone (no flap)', async () => {
      await cluster.apply(cluster.staticRoute('manual-gw', { destinations: ['34.90.1.0/24'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`34.90.1.0/24 via ${GATEWAY_A}`]);
      const node = cluster.nodes[1]!;
      const monitor = await node.monitorRoutes();
      const alteredAt = Date.now();
      await node.exec(['ip', 'route', 'replace', '34.90.1.0/24', 'via', GATEWAY_B, 'proto', '201']);
      const restored = await monitor.waitFor(
        (event) => event.kind === 'add' && event.route.dst === '34.90.1.0/24' && event.route.gateway === GATEWAY_A,
        30_000,
      );
      await sleep(QUIET_WINDOW_MS);
      await monitor.stop();
      const events = ours(monitor.events(), '34.90.1.0/24');
      const afterRestore = events.filter((event) => event.at > restored.at);
      expect(afterRestore).toEqual([]);
      // Our replace (an add via B); the repair (delete of B's, add of A's, or a replace); bounded either way.
      expect(events.length).toBeLessThanOrEqual(3);
      expect(await ourRoutes(node)).toEqual([`34.90.1.0/24 via ${GATEWAY_A}`]);
      recordFigures('drift-altered-gateway', {
        restoredAfterMs: restored.at - alteredAt,
        eventsInWindow: events.length,
        windowMs: QUIET_WINDOW_MS,
      });
    });

    it('a conflicting foreign route is reported on that node and never fought; ours returns when it goes', async () => {
      await cluster.apply(cluster.staticRoute('manual-foreign', { destinations: ['34.90.2.7'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`34.90.2.7/32 via ${GATEWAY_A}`]);
      const node = cluster.nodes[2]!;
      const monitor = await node.monitorRoutes();
      await node.exec(['ip', 'route', 'replace', '34.90.2.7/32', 'via', GATEWAY_B, 'proto', 'static']);
      const reported = await eventually(async () => {
        const entry = await entryOf('manual-foreign', node);
        return entry?.state === 'Failed' ? entry : undefined;
      }, `${node.name} to report the foreign route`);
      expect(reported.message).toContain('34.90.2.7/32');
      // Several periodic reconciles pass: the foreign route stays, the operator makes no change for it.
      await sleep(QUIET_WINDOW_MS);
      const during = monitor.events().filter((event) => event.route.dst === '34.90.2.7/32');
      expect(during.map((event) => `${event.kind} ${event.route.gateway} ${event.route.protocol}`)).toEqual([
        `add ${GATEWAY_B} 4`,
      ]);
      const table = await node.routes({ table: 254 });
      expect(table.filter((route) => route.dst === '34.90.2.7/32')).toEqual([
        expect.objectContaining({ gateway: GATEWAY_B, protocol: 4 }),
      ]);
      // The other nodes were never affected.
      await waitForRoutes(
        cluster.nodes.filter((other) => other !== node),
        [`34.90.2.7/32 via ${GATEWAY_A}`],
        5_000,
      );
      await node.exec(['ip', 'route', 'del', '34.90.2.7/32']);
      await waitForRoutes([node], [`34.90.2.7/32 via ${GATEWAY_A}`], 30_000);
      await eventually(async () => (await entryOf('manual-foreign', node))?.state === 'Applied', 'Applied again');
      await monitor.stop();
      recordFigures('drift-foreign-route', { eventsInWindow: during.length, windowMs: QUIET_WINDOW_MS });
    });

    it('a process deleting our route over and over is answered one add per delete, and quiet after it stops', async () => {
      await cluster.apply(cluster.staticRoute('manual-fight', { destinations: ['34.90.3.3'], gateway: GATEWAY_A }));
      await waitForRoutes(cluster.nodes, [`34.90.3.3/32 via ${GATEWAY_A}`]);
      const node = cluster.nodes[0]!;
      const monitor = await node.monitorRoutes();
      const fightMs = LONG ? 30_000 : 5_000;
      const until = Date.now() + fightMs;
      let deletions = 0;
      while (Date.now() < until) {
        const result = await node.exec(['ip', 'route', 'del', '34.90.3.3/32'], { allowFailure: true });
        if (result.code === 0) deletions++;
        await sleep(300);
      }
      await waitForRoutes([node], [`34.90.3.3/32 via ${GATEWAY_A}`], 30_000);
      const stoppedAt = Date.now();
      await sleep(QUIET_WINDOW_MS);
      await monitor.stop();
      const events = ours(monitor.events(), '34.90.3.3/32');
      const adds = events.filter((event) => event.kind === 'add').length;
      expect(deletions).toBeGreaterThan(3);
      expect(adds).toBeGreaterThanOrEqual(1);
      expect(adds).toBeLessThanOrEqual(deletions);
      expect(events.filter((event) => event.at > stoppedAt)).toEqual([]);
      operatorsAlive();
      recordFigures('drift-hostile-deleter', {
        fightMs,
        deletions,
        operatorAdds: adds,
        quietWindowMs: QUIET_WINDOW_MS,
      });
    });
  });

  describe('a node cut off from the API server', () => {
    it(`keeps its routes during a ${CUT_MS / 1000} s cut, the others converge meanwhile, and it catches up`, async () => {
      const churn = new Churn(cluster, {
        seed: SEED + 10,
        gateways: [GATEWAY_A, GATEWAY_B],
        prefix: 'cut',
        firstSerial: 3000,
        pauseMs: [20, 80],
      });
      for (let index = 0; index < 5; index++) await churn.create();
      await expectConverged(cluster, churn, 60_000);
      const cut = cluster.nodes[0]!;
      const others = cluster.nodes.filter((node) => node !== cut);
      const installed = await ourRoutes(cut);
      const cutSince = new Date().toISOString();
      await cluster.network.blockApi(cut.name);
      const cutAt = Date.now();
      await churn.run(LONG ? 30 : 10);
      await waitForRoutes(others, churn.expectedRoutes(), 60_000);
      const othersConvergedMs = Date.now() - cutAt;
      // The cut node's table stays as it was for the whole cut (sampled every second).
      let samples = 0;
      while (Date.now() - cutAt < CUT_MS) {
        expect(await ourRoutes(cut), `${cut.name} during the cut`).toEqual(installed);
        samples++;
        await sleep(1000);
      }
      expect(samples).toBeGreaterThan(0);
      await cluster.network.unblockApi(cut.name);
      const backAt = Date.now();
      // The periodic pass kept reconciling from the watch-fed view while its LIST failed (B6): a failed LIST is logged
      // as a list outage, never as a failed reconcile (a reconcile touches only the kernel, which stayed reachable).
      const duringCut = logsOf(cluster.operators.get(cut.name)!).filter((entry) => entry.time >= cutSince);
      const listOutage = duringCut.filter((entry) => /cannot list StaticRoutes/.test(entry.msg));
      expect(
        duringCut.filter((entry) => entry.msg === 'periodic reconcile failed').map((entry) => JSON.stringify(entry)),
        `${cut.name}: periodic reconciles that failed during the cut`,
      ).toEqual([]);
      await waitForRoutes([cut], churn.expectedRoutes(), 180_000);
      const caughtUpMs = Date.now() - backAt;
      await expectConverged(cluster, churn, 180_000);
      operatorsAlive();
      recordFigures('api-cut-node', {
        cutMs: CUT_MS,
        changesDuringCut: churn.counts,
        othersConvergedMs,
        caughtUpAfterUnblockMs: caughtUpMs,
        listFailuresLoggedDuringCut: listOutage.length,
        samples,
      });
    });
  });

  describe('a node removed from the cluster', () => {
    // Last in this file: the node does not come back.
    it('releases the finalizers and status entries it held; the objects can be deleted', async () => {
      const names = ['held-a', 'held-b', 'held-c'];
      for (const [index, name] of names.entries()) {
        await cluster.apply(cluster.staticRoute(name, { destinations: [`34.91.${index}.1`], gateway: GATEWAY_A }));
      }
      const gone = cluster.nodes[2]!;
      await eventually(async () => {
        for (const name of names) {
          const object = await cluster.getStaticRoute(name);
          if (!object?.metadata.finalizers?.includes(`${PREFIX}/${gone.name}`)) return undefined;
          if (object.status?.nodes?.[gone.name]?.state !== 'Applied') return undefined;
        }
        return true;
      }, `${gone.name} to hold its finalizers`);
      const removedAt = Date.now();
      await cluster.network.removeNode(gone.name);
      await eventually(
        async () => {
          for (const name of names) {
            const object = await cluster.getStaticRoute(name);
            if (object?.metadata.finalizers?.includes(`${PREFIX}/${gone.name}`)) return undefined;
            if (object?.status?.nodes?.[gone.name] !== undefined) return undefined;
            if (object?.status?.ready !== '2/2') return undefined;
          }
          return true;
        },
        `the survivors to release ${gone.name}'s finalizers and status entries`,
        120_000,
      );
      const releasedMs = Date.now() - removedAt;
      for (const name of names) await cluster.deleteStaticRoute(name);
      for (const name of names) await cluster.waitGone(name, 60_000);
      await waitForRoutes(cluster.nodes, [], 30_000);
      operatorsAlive();
      recordFigures('node-removed', { releasedAfterMs: releasedMs, objects: names.length });
    });
  });
});
