/**
 * Bad input: at least 100 malformed or hostile StaticRoutes (seeded, see support/hostile-routes.ts) are sent while
 * good objects keep changing. Each hostile object is either refused at admission with a message naming the field at
 * fault, or accepted and then reported by every node (Refused or Failed, with a message) without any kernel change;
 * status forged by a user is corrected. Meanwhile the good objects are handled normally, no operator process
 * restarts or crashes, and the final tables equal the desired set exactly.
 * `FUZZ_SEED` replays another input set; `FUZZ_COUNT` sends more (scripts/chaos.sh --long sends 400).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RouteMonitor } from '@opkit/testbed';
import {
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  OURS,
  waitForRoutes,
  type StaticRouteJson,
} from '../e2e/support/cluster.js';
import { Churn } from './support/churn.js';
import { expectConverged, LONG, recordFigures } from './support/converge.js';
import {
  addStrayFiles,
  spoilAnnotations,
  spoilFinalizers,
  spoilStateFile,
  spoilStatus,
  type StateGarbage,
} from './support/garbage.js';
import {
  reportedEverywhere,
  routeLine,
  settledElsewise,
  STATIC_ROUTES_PATH as BASE,
  submit,
  targetOf,
  type Outcome,
} from './support/fuzz.js';
import { generateHostileRoutes } from './support/hostile-routes.js';
import { allLogsOf, isAlive, logsOf, PREFIX, stateDirOf, warnings } from './support/observe.js';
import { seedFrom } from './support/random.js';

const SEED = seedFrom('FUZZ_SEED', 34);
const COUNT = Number(process.env.FUZZ_COUNT ?? (LONG ? 400 : 100));
const TIMEOUT = LONG ? 3_600_000 : 300_000;

// The tests clean up after themselves (and check that they can): no clean-up between them.
const cluster = E2eCluster.forSuite({ cleanAfterEach: false });

/** A core/v1 Event as far as the garbage test reads it. */
interface EventJson {
  reason: string;
  type: string;
  message: string;
  involvedObject: { uid?: string; name?: string };
}

/** Every `StateDiscarded` event in the cluster. */
async function stateDiscardedEvents(cluster: E2eCluster): Promise<EventJson[]> {
  const response = await cluster.controlPlane.request<{ items: EventJson[] }>(
    'GET',
    '/api/v1/events?fieldSelector=reason%3DStateDiscarded',
  );
  return response.status === 200 ? response.body.items : [];
}

/** `event` reports discarded state of the object `uid` on node `node` (the framework prefixes the instance). */
function isDiscardOf(event: EventJson, uid: string, node: string): boolean {
  return event.type === 'Warning' && event.involvedObject.uid === uid && event.message.startsWith(`${node}:`);
}

describe('hostile StaticRoutes', () => {
  it(
    `${COUNT} hostile objects: refused naming the field, or reported with no kernel change; good objects unaffected`,
    async () => {
      const nodes = cluster.nodes;
      const pids = new Map(nodes.map((node) => [node.name, cluster.operators.get(node.name)!.child.pid]));
      const baseline = new Map(
        await Promise.all(nodes.map(async (node) => [node.name, (await node.routes()).map(routeLine)] as const)),
      );
      const monitors = new Map<string, RouteMonitor>(
        await Promise.all(nodes.map(async (node) => [node.name, await node.monitorRoutes()] as const)),
      );
      const cases = generateHostileRoutes(targetOf(cluster), { seed: SEED, count: COUNT });
      expect(cases.length).toBeGreaterThanOrEqual(100);

      // Good objects keep changing while the hostile ones arrive.
      const good = new Churn(cluster, {
        seed: SEED,
        gateways: [GATEWAY_A, GATEWAY_B],
        prefix: 'good',
        firstSerial: 64_000,
        maxLive: 6,
        pauseMs: [100, 300],
      });
      const churning = good.run(LONG ? 80 : 25);
      const outcomes: Outcome[] = [];
      for (let index = 0; index < cases.length; index += 8) {
        outcomes.push(...(await Promise.all(cases.slice(index, index + 8).map((item) => submit(cluster, item)))));
      }
      await churning;

      // Refused at admission: the message names the field at fault.
      const refused = outcomes.filter((outcome) => !outcome.admitted);
      for (const outcome of refused) {
        expect(outcome.status, `${outcome.item.name}: ${outcome.message}`).toBeGreaterThanOrEqual(400);
        expect(outcome.status, `${outcome.item.name}: ${outcome.message}`).toBeLessThan(500);
        expect(outcome.message, `${outcome.item.name} (${outcome.item.description})`).toContain(outcome.item.field);
      }
      // Admitted: every node reports it as Refused or Failed for its generation, with a message, and `ready` counts
      // none; forged status is replaced by the truth. All objects are watched together until each settles, so that
      // one that never does is reported alongside every other one.
      const admitted = outcomes.filter((outcome) => outcome.admitted);
      const reports = new Map<string, string>();
      const lastSeen = new Map<string, string>();
      // Failure bounds: 45 s overall, or 10 s in a settled wrong state (every node reported this generation, with a
      // state other than Refused/Failed).
      const deadline = Date.now() + 45_000;
      const settledWrongSince = new Map<string, number>();
      let pending = admitted.map((outcome) => outcome.item);
      let waiting = pending;
      while (waiting.length > 0 && Date.now() < deadline) {
        const list = await cluster.controlPlane.request<{ items: StaticRouteJson[] }>('GET', BASE);
        const byName = new Map(list.body.items.map((object) => [object.metadata.name, object]));
        pending = pending.filter((item) => {
          const object = byName.get(item.name);
          lastSeen.set(item.name, JSON.stringify(object?.status ?? null).slice(0, 600));
          if (
            !object ||
            !reportedEverywhere(
              object,
              nodes.map((node) => node.name),
            )
          ) {
            if (
              object &&
              settledElsewise(
                object,
                nodes.map((node) => node.name),
              )
            )
              settledWrongSince.set(item.name, settledWrongSince.get(item.name) ?? Date.now());
            else settledWrongSince.delete(item.name);
            return true;
          }
          const first = object.status?.nodes?.[nodes[0]!.name];
          reports.set(item.name, `${first?.state}: ${first?.message}`);
          return false;
        });
        waiting = pending.filter((item) => Date.now() - (settledWrongSince.get(item.name) ?? Date.now()) < 10_000);
        if (waiting.length > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      for (const item of pending) {
        expect
          .soft(
            lastSeen.get(item.name),
            `${item.name} (${item.description}) is not reported Refused/Failed by every node with ready 0/${nodes.length}`,
          )
          .toBe('reported');
      }

      // The good objects were handled normally; the tables hold exactly their routes on top of what was there.
      await expectConverged(cluster, good, 120_000);
      const wanted = good.expectedRoutes().map((line) => `254 unicast ${line} proto ${OURS}`);
      for (const node of nodes) {
        const now = (await node.routes()).map(routeLine).sort();
        expect(now, `${node.name}: every table`).toEqual([...(baseline.get(node.name) ?? []), ...wanted].sort());
        const monitor = monitors.get(node.name)!;
        await monitor.stop();
        const strays = monitor
          .events()
          .filter((event) => event.kind === 'add' && !good.everDesired.has(event.route.dst));
        expect(
          strays.map((event) => `${event.route.dst} proto ${event.route.protocol}`),
          `${node.name}: routes added for hostile objects`,
        ).toEqual([]);
      }
      // No operator process restarted or crashed.
      for (const node of nodes) {
        const operator = cluster.operators.get(node.name)!;
        expect(operator.child.pid).toBe(pids.get(node.name));
        expect(isAlive(operator), `${node.name}:\n${operator.logs().slice(-2000)}`).toBe(true);
        expect(logsOf(operator).filter((entry) => entry.level >= 60)).toEqual([]);
      }

      const byCategory: Record<string, { refusedAtAdmission: number; reportedInStatus: number }> = {};
      for (const outcome of outcomes) {
        const counts = (byCategory[outcome.item.category] ??= { refusedAtAdmission: 0, reportedInStatus: 0 });
        if (outcome.admitted) counts.reportedInStatus++;
        else counts.refusedAtAdmission++;
      }
      recordFigures('bad-input', {
        seed: SEED,
        cases: outcomes.length,
        refusedAtAdmission: refused.length,
        reportedInStatus: admitted.length,
        byCategory,
        notReported: pending.map((item) => ({
          name: item.name,
          what: item.description,
          status: lastSeen.get(item.name),
        })),
        goodChanges: good.counts,
        samples: outcomes.map((outcome) => ({
          name:
            outcome.item.name.length > 60
              ? `${outcome.item.name.slice(0, 40)}…(${outcome.item.name.length} chars)`
              : outcome.item.name,
          what: outcome.item.description,
          result: outcome.admitted
            ? `status: ${reports.get(outcome.item.name)?.slice(0, 200)}`
            : `HTTP ${outcome.status}: ${outcome.message.slice(0, 200)}`,
        })),
      });
      await cluster.deleteAllStaticRoutes();
      await waitForRoutes(nodes, [], 60_000);
    },
    TIMEOUT,
  );
});

describe("garbage in the framework's own state", () => {
  it(
    'spoiled state files, finalizers, annotations and status entries are detected, reported and recovered without losing routes',
    async () => {
      const nodes = cluster.nodes;
      const names = ['garbage-a', 'garbage-b', 'garbage-c'];
      const desired = (extra: boolean) =>
        names
          .flatMap((name, index) => [
            `34.92.${index}.1/32 via ${GATEWAY_A}`,
            ...(extra ? [`34.92.${index}.2/32 via ${GATEWAY_A}`] : []),
          ])
          .sort();
      for (const [index, name] of names.entries()) {
        await cluster.apply(cluster.staticRoute(name, { destinations: [`34.92.${index}.1`], gateway: GATEWAY_A }));
      }
      await waitForRoutes(nodes, desired(false));
      const uids = new Map<string, string>();
      await eventually(async () => {
        for (const name of names) {
          const object = await cluster.getStaticRoute(name);
          if (object?.status?.ready !== `${nodes.length}/${nodes.length}`) return undefined;
          uids.set(name, (object.metadata as { uid?: string }).uid ?? '');
        }
        return true;
      }, 'the objects to be Applied everywhere');
      const monitors = await Promise.all(nodes.map((node) => node.monitorRoutes()));
      const spoiledAt = new Date().toISOString();

      // Node-local state files: every kind of garbage, three per node.
      const plan: StateGarbage[][] = [
        ['not-json', 'wrong-types', 'other-uid'],
        ['far-future-delete-retry', 'garbage-handler-entry', 'truncated'],
        ['directory', 'empty', 'binary'],
      ];
      nodes.forEach((node, nodeIndex) =>
        names.forEach((name, index) =>
          spoilStateFile(cluster, node.name, uids.get(name)!, plan[nodeIndex % plan.length]![index]!),
        ),
      );
      const strays = addStrayFiles(cluster, nodes[2]!.name);
      // The framework's marks on the objects.
      await spoilAnnotations(cluster, 'garbage-a');
      await spoilFinalizers(cluster, 'garbage-b', nodes[0]!.name);
      await spoilStatus(
        cluster,
        'garbage-c',
        nodes.map((node) => node.name),
      );

      // Changes after the damage, and a restart that reads the damaged state at startup.
      for (const [index, name] of names.entries()) {
        await cluster.kubectl([
          'patch',
          'sr',
          name,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { destinations: [`34.92.${index}.1`, `34.92.${index}.2`] } }),
        ]);
      }
      await cluster.operators.get(nodes[2]!.name)!.stop();
      await cluster.startOperator(nodes[2]!);
      await cluster.waitReady(nodes[2]!, 90_000);

      // Recovered: every table converges, and no route that stayed wanted was ever removed.
      await waitForRoutes(nodes, desired(true), 90_000);
      for (const [index, monitor] of monitors.entries()) {
        await monitor.stop();
        const lost = monitor
          .events()
          .filter(
            (event) => event.kind === 'delete' && desired(true).some((line) => line.startsWith(`${event.route.dst} `)),
          );
        expect(
          lost.map((event) => event.route.dst),
          `${nodes[index]!.name}: wanted routes removed`,
        ).toEqual([]);
      }
      // The framework's marks are repaired: one finalizer per live node, each node's own entry true again.
      await eventually(
        async () => {
          const objects = await Promise.all(names.map((name) => cluster.getStaticRoute(name)));
          const ok = objects.every(
            (object) =>
              object &&
              nodes.every((node) => object.metadata.finalizers?.includes(`${PREFIX}/${node.name}`)) &&
              nodes.every(
                (node) =>
                  object.status?.nodes?.[node.name]?.state === 'Applied' &&
                  object.status.nodes[node.name]?.observedGeneration === object.metadata.generation,
              ) &&
              object.status?.ready === `${nodes.length}/${nodes.length}`,
          );
          return ok ? objects : undefined;
        },
        'finalizers re-added and status entries repaired',
        90_000,
      );
      // Marks of an instance that does not exist are garbage too: released like a removed node's. (The janitor looks
      // after every Node (re)list, such as the restarted instance's first one; nothing else would make it look.)
      const ghostsGone = await eventually(
        async () => {
          const b = await cluster.getStaticRoute('garbage-b');
          const c = await cluster.getStaticRoute('garbage-c');
          return (
            !b?.metadata.finalizers?.includes(`${PREFIX}/ghost-node`) && c?.status?.nodes?.['ghost-node'] === undefined
          );
        },
        'the ghost finalizer and status entry to be released',
        30_000,
      ).catch(() => false);
      expect.soft(ghostsGone, 'ghost finalizer on garbage-b / ghost status entry on garbage-c released').toBe(true);
      // Reported: each node whose state files were spoiled says so, in its log (a warning naming the object, from any
      // process that ran on the node: node-3's old instance may have met the damage before its restart) and with a
      // Warning Event `StateDiscarded` on the object (message prefixed with the instance, i.e. the node). Warnings of
      // failed cycles (an unreadable file retried for ever) do not count: the damage must be named as such.
      const discardEvents = await eventually(
        async () => {
          const events = await stateDiscardedEvents(cluster);
          const complete = nodes.every((node) =>
            names.every((name) => events.some((event) => isDiscardOf(event, uids.get(name)!, node.name))),
          );
          return complete ? events : undefined;
        },
        'a StateDiscarded event for every spoiled state file',
        15_000,
      ).catch(() => stateDiscardedEvents(cluster));
      const discardReports: Record<string, Record<string, string>> = {};
      for (const node of nodes) {
        const after = warnings(allLogsOf(cluster, node.name)).filter(
          (entry) => entry.time >= spoiledAt && /state discarded/i.test(entry.msg),
        );
        for (const name of names) {
          const kind = plan[nodes.indexOf(node) % plan.length]![names.indexOf(name)]!;
          const logged = after.find(
            (entry) => JSON.stringify(entry).includes(uids.get(name)!) || JSON.stringify(entry).includes(`"${name}"`),
          );
          const event = discardEvents.find((item) => isDiscardOf(item, uids.get(name)!, node.name));
          (discardReports[node.name] ??= {})[kind] = String(logged?.reason ?? event?.message ?? 'not reported');
          expect.soft(logged, `${node.name}: a warning about the spoiled state of ${name} (${kind})`).toBeDefined();
          expect.soft(event, `${node.name}: a StateDiscarded event on ${name} (${kind})`).toBeDefined();
        }
      }
      recordFigures('garbage-state', { reports: discardReports, ghostsReleased: ghostsGone });
      const leftovers = strays.filter((stray) => existsSync(path.join(stateDirOf(cluster, nodes[2]!.name), stray)));
      expect.soft(leftovers, `${nodes[2]!.name}: stray files after a restart`).toEqual([]);
      // Nothing stuck: every object can be deleted.
      for (const name of names) await cluster.deleteStaticRoute(name);
      const stuck: string[] = [];
      await Promise.all(names.map((name) => cluster.waitGone(name, 30_000).catch(() => stuck.push(name))));
      const finalizersLeft = await Promise.all(
        stuck.map(
          async (name) => `${name}: ${JSON.stringify((await cluster.getStaticRoute(name))?.metadata.finalizers)}`,
        ),
      );
      expect(finalizersLeft, 'objects stuck in deletion').toEqual([]);
      await waitForRoutes(nodes, [], 30_000);
      for (const node of nodes) expect(isAlive(cluster.operators.get(node.name)!), `${node.name} alive`).toBe(true);
    },
    TIMEOUT,
  );
});
