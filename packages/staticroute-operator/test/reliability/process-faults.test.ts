/**
 * Faults of the control plane and of the operator process, injected while StaticRoutes are created, patched
 * (destinations and gateways) and deleted:
 * - the API server restarted (2x short / 5x long) and etcd killed and restarted (1x / 2x);
 * - operator processes SIGKILLed at random moments (5 short / 50 long) and started again.
 * Afterwards every node's table equals the desired set exactly, deleted objects are gone, live objects hold one
 * finalizer per node, and (without process kills) no handler ran twice for one change.
 * Short form by default; `CHAOS_LONG=1` (scripts/chaos.sh --long) runs the long one. `CHAOS_SEED` replays a run.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { E2eCluster, GATEWAY_A, GATEWAY_B, waitForRoutes } from '../e2e/support/cluster.js';
import { Churn, sleep } from './support/churn.js';
import {
  expectConverged,
  expectEachChangeHandledOnce,
  expectNoOrphanState,
  LONG,
  recordFigures,
  scrapeAll,
} from './support/converge.js';
import { allLogsOf, isAlive, logsOf, warnings } from './support/observe.js';
import { seededRandom, seedFrom } from './support/random.js';

const SEED = seedFrom('CHAOS_SEED', 34);
const PLAN = LONG
  ? { apiRestarts: 5, etcdRestarts: 2, operations: 200, kills: 50 }
  : { apiRestarts: 2, etcdRestarts: 1, operations: 30, kills: 5 };
const TIMEOUT = LONG ? 3_600_000 : 240_000;

let cluster: E2eCluster;

beforeAll(async () => {
  cluster = await E2eCluster.start(3);
  await cluster.startOperators();
});

afterEach(async () => {
  await cluster.deleteAllStaticRoutes();
  await waitForRoutes(cluster.nodes, [], 60_000);
});

afterAll(async () => {
  await cluster?.destroy();
});

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

function operatorsAlive(): void {
  for (const operator of cluster.operators.values()) {
    expect(isAlive(operator), `operator on ${operator.node.name} exited:\n${operator.logs().slice(-2000)}`).toBe(true);
  }
}

describe('control plane faults during churn', () => {
  it(
    `API server restarted ${PLAN.apiRestarts}x during ${PLAN.operations} changes: converges, each change handled once`,
    async () => {
      const before = await scrapeAll(cluster.nodes);
      const churn = new Churn(cluster, { seed: SEED, gateways: [GATEWAY_A, GATEWAY_B], prefix: 'api' });
      const restarts = await churnWithFaults(churn, PLAN.operations, PLAN.apiRestarts, () =>
        cluster.controlPlane.restartApiServer(),
      );
      expect(restarts).toHaveLength(PLAN.apiRestarts);
      const convergedMs = await expectConverged(cluster, churn);
      operatorsAlive();
      const logs = new Map(cluster.nodes.map((node) => [node.name, logsOf(cluster.operators.get(node.name)!)]));
      const handled = expectEachChangeHandledOnce(before, await scrapeAll(cluster.nodes), churn, logs);
      recordFigures('api-server-restarts', {
        seed: SEED,
        restarts: restarts.length,
        restartMs: restarts,
        changes: churn.counts,
        convergedAfterChurnMs: convergedMs,
        handlerSuccessesPerNode: handled,
        operatorWarnings: [...logs.values()].map((entries) => warnings(entries).length),
      });
    },
    TIMEOUT,
  );

  it(
    `etcd killed and restarted ${PLAN.etcdRestarts}x during ${PLAN.operations} changes: converges, each change handled once`,
    async () => {
      const before = await scrapeAll(cluster.nodes);
      const churn = new Churn(cluster, {
        seed: SEED + 1,
        gateways: [GATEWAY_A, GATEWAY_B],
        prefix: 'etcd',
        firstSerial: 1000,
      });
      const restarts = await churnWithFaults(churn, PLAN.operations, PLAN.etcdRestarts, () =>
        cluster.controlPlane.restartEtcd(),
      );
      expect(restarts).toHaveLength(PLAN.etcdRestarts);
      const convergedMs = await expectConverged(cluster, churn);
      operatorsAlive();
      const logs = new Map(cluster.nodes.map((node) => [node.name, logsOf(cluster.operators.get(node.name)!)]));
      const handled = expectEachChangeHandledOnce(before, await scrapeAll(cluster.nodes), churn, logs);
      recordFigures('etcd-restarts', {
        seed: SEED + 1,
        restarts: restarts.length,
        restartMs: restarts,
        changes: churn.counts,
        convergedAfterChurnMs: convergedMs,
        handlerSuccessesPerNode: handled,
      });
    },
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
