/**
 * Bad input: at least 100 malformed or hostile StaticRoutes (seeded, see support/hostile-routes.ts) are sent while
 * good objects keep changing. Each hostile object is either refused at admission with a message naming the field at
 * fault, or accepted and then reported by every node in its own report (Refused or Failed, with a message) without any
 * kernel change, and summarized so by the aggregator (READY 0/N; status forged by a user, the previous layout's
 * `status.nodes` included, is replaced). Meanwhile the good objects are handled normally, no agent or aggregator
 * process restarts or crashes, and the final tables equal the desired set exactly.
 * `FUZZ_SEED` replays another input set; `FUZZ_COUNT` sends more (scripts/chaos.sh --long sends 400).
 *
 * Then garbage in the state of the split design (it replaces the garbage in opkit's node-local state files, which the
 * agents no longer keep): node reports deleted, forged, stale or of a ghost node, entries the report schema refuses,
 * and the aggregator's finalizer and summary spoiled; each repaired by its owner (the agent at its next report
 * heartbeat, 3 s in this file; the aggregator at the next watch event), without losing a route.
 */
import { describe, expect, it } from 'vitest';
import type { RouteMonitor, SimNode } from '@opkit/testbed';
import {
  E2eCluster,
  eventually,
  GATEWAY_A,
  GATEWAY_B,
  OURS,
  waitForRoutes,
  type NodeReportJson,
  type StaticRouteJson,
} from '../e2e/support/cluster.js';
import { Churn } from './support/churn.js';
import { expectConverged, expectNoOrphanEntries, LONG, recordFigures } from './support/converge.js';
import {
  createReport,
  deleteReport,
  patchReport,
  SCHEMA_GARBAGE,
  setFinalizers,
  spoilAnnotations,
  spoilSummary,
  tryEntry,
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
import { isAlive, logsOf, parseLogs } from './support/observe.js';
import { seedFrom } from './support/random.js';
import {
  AGGREGATOR_FINALIZER,
  appliedProblems,
  entryIn,
  listReports,
  listStaticRoutes,
  REPORTS_API,
} from './support/reports.js';

const SEED = seedFrom('FUZZ_SEED', 34);
const COUNT = Number(process.env.FUZZ_COUNT ?? (LONG ? 400 : 100));
const TIMEOUT = LONG ? 3_600_000 : 300_000;

/**
 * The agents' report heartbeat in this file: the garbage test waits for the agents to repair their reports, which
 * they re-read at every heartbeat (60 s by default).
 */
const HEARTBEAT_SECONDS = 3;

// The tests clean up after themselves (and check that they can): no clean-up between them.
const cluster = E2eCluster.forSuite({
  cleanAfterEach: false,
  operators: { env: { REPORT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } },
});

/** The one aggregator the fixture started. */
function aggregatorOf(cluster: E2eCluster) {
  const aggregator = cluster.aggregators[0];
  if (!aggregator) throw new Error('no aggregator');
  return aggregator;
}

describe('hostile StaticRoutes', () => {
  it(
    `${COUNT} hostile objects: refused naming the field, or reported with no kernel change; good objects unaffected`,
    async () => {
      const nodes = cluster.nodes;
      const pids = new Map(nodes.map((node) => [node.name, cluster.operators.get(node.name)!.child.pid]));
      const aggregatorPid = aggregatorOf(cluster).child.pid;
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
        const nodeReports: Map<string, NodeReportJson> = await listReports(cluster);
        const names = nodes.map((node) => node.name);
        pending = pending.filter((item) => {
          const object = byName.get(item.name);
          const entries = names.map((node) => entryIn(nodeReports, node, item.name) ?? null);
          lastSeen.set(item.name, JSON.stringify({ status: object?.status ?? null, entries }).slice(0, 800));
          if (!object || !reportedEverywhere(object, nodeReports, names)) {
            if (object && settledElsewise(object, nodeReports, names)) {
              settledWrongSince.set(item.name, settledWrongSince.get(item.name) ?? Date.now());
            } else settledWrongSince.delete(item.name);
            return true;
          }
          const first = entries[0];
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
            `${item.name} (${item.description}) is not reported Refused/Failed by every node and summarized READY 0/${nodes.length}`,
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
      // No agent or aggregator process restarted or crashed.
      for (const node of nodes) {
        const operator = cluster.operators.get(node.name)!;
        expect(operator.child.pid).toBe(pids.get(node.name));
        expect(isAlive(operator), `${node.name}:\n${operator.logs().slice(-2000)}`).toBe(true);
        expect(logsOf(operator).filter((entry) => entry.level >= 60)).toEqual([]);
      }
      const aggregator = aggregatorOf(cluster);
      expect(aggregator.child.pid).toBe(aggregatorPid);
      expect(isAlive(aggregator), `aggregator:\n${aggregator.logs().slice(-2000)}`).toBe(true);
      expect(parseLogs(aggregator.logs()).filter((entry) => entry.level >= 60)).toEqual([]);

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

/** What every node's report must hold for `names` once repaired: exactly their entries, Applied, and the counts. */
function reportProblems(
  node: string,
  report: NodeReportJson | undefined,
  objects: ReadonlyMap<string, StaticRouteJson>,
  names: readonly string[],
  routesPerObject: number,
  since: number,
): string[] {
  if (!report) return [`${node}: no report`];
  const want = Object.fromEntries(
    names.map((name) => {
      const object = objects.get(name);
      return [
        name,
        {
          uid: object?.metadata.uid,
          generation: object?.metadata.generation,
          state: 'Applied',
          routes: routesPerObject,
        },
      ];
    }),
  );
  const problems: string[] = [];
  const entries = report.status?.staticRoutes ?? {};
  if (JSON.stringify(sortKeys(entries)) !== JSON.stringify(sortKeys(want))) {
    problems.push(`${node}: entries ${JSON.stringify(entries)}`);
  }
  const summary = { staticRoutes: names.length, notReady: 0, routes: names.length * routesPerObject };
  if (JSON.stringify(sortKeys(report.status?.summary)) !== JSON.stringify(sortKeys(summary))) {
    problems.push(`${node}: summary ${JSON.stringify(report.status?.summary)}`);
  }
  const heartbeat = Date.parse(report.status?.heartbeatTime ?? '');
  // Written after the damage (heartbeat times have whole seconds).
  if (!(heartbeat >= Math.floor(since / 1000) * 1000))
    problems.push(`${node}: heartbeat ${report.status?.heartbeatTime}`);
  return problems;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, inner]) => [key, sortKeys(inner)]),
  );
}

describe('garbage in the node reports and in the aggregator’s marks', () => {
  it(
    'deleted, forged, stale and ghost reports, schema-refused entries, a removed finalizer and a spoiled summary: each repaired by its owner, no route lost',
    async () => {
      // From empty tables, whatever the test before left.
      await cluster.deleteAllStaticRoutes();
      await waitForRoutes(cluster.nodes, [], 60_000);
      const nodes = cluster.nodes;
      const nodeNames = nodes.map((node) => node.name);
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
      const settled = async (what: string, routesPerObject: number, since: number, timeoutMs = 60_000) =>
        eventually(
          async () => {
            const [objects, reports] = await Promise.all([listStaticRoutes(cluster), listReports(cluster)]);
            const problems = [
              ...names.flatMap((name) => appliedProblems(objects.get(name), name, nodeNames, reports)),
              ...nodeNames.flatMap((node) =>
                reportProblems(node, reports.get(node), objects, names, routesPerObject, since),
              ),
            ];
            if (problems.length > 0) throw new Error(problems.slice(0, 8).join('; '));
            return objects;
          },
          what,
          timeoutMs,
        );
      const before = await settled('every report exact and every object READY 3/3', 1, 0);
      const monitors = await Promise.all(nodes.map((node) => node.monitorRoutes()));
      const [node1, node2, node3] = nodes as [SimNode, SimNode, SimNode];
      const uid = (name: string) => before.get(name)!.metadata.uid;
      const generation = (name: string) => before.get(name)!.metadata.generation;

      // The report's schema refuses malformed entries: they never reach the aggregator.
      const reportBefore = await cluster.nodeReport(node1);
      const refusals: Record<string, string> = {};
      for (const garbage of SCHEMA_GARBAGE) {
        const answer = await tryEntry(cluster, node1.name, 'garbage-new', garbage.entry);
        expect(answer.status, `${garbage.what}: ${answer.text}`).toBe(422);
        expect(answer.text, garbage.what).toContain(garbage.field);
        refusals[garbage.what] = (JSON.parse(answer.text) as { message: string }).message.slice(0, 200);
      }
      expect((await cluster.nodeReport(node1))?.status).toEqual(reportBefore?.status);

      // Phase 1, the reports (nothing else changes meanwhile: only the agents' heartbeat re-reads and repairs them).
      const reportsSpoiledAt = Date.now();
      await deleteReport(cluster, node1.name);
      await patchReport(cluster, node2.name, {
        summary: { staticRoutes: 999, notReady: 999, routes: 999 },
        staticRoutes: {
          // Another object's entry under this name, a failure that did not happen, an object that does not exist.
          'garbage-a': { uid: '00000000-0000-0000-0000-000000000000', generation: 99, state: 'Applied', routes: 99 },
          'garbage-b': {
            uid: uid('garbage-b'),
            generation: generation('garbage-b'),
            state: 'Failed',
            message: 'forged failure',
            routes: 0,
          },
          'ghost-object': { uid: 'ghost', state: 'Applied', routes: 1 },
        },
      });
      // A report that stopped beating long ago and lost an entry.
      await patchReport(cluster, node3.name, {
        heartbeatTime: '2000-01-01T00:00:00Z',
        staticRoutes: { 'garbage-c': null },
      });
      // The report of a node that does not exist, claiming an object Applied.
      await createReport(cluster, 'ghost-node', {
        heartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        staticRoutes: {
          'garbage-a': { uid: uid('garbage-a'), generation: generation('garbage-a'), state: 'Applied', routes: 1 },
        },
      });
      await settled('every agent to repair its report (heartbeat) and the summaries to follow', 1, reportsSpoiledAt);
      const reportsRepairedMs = Date.now() - reportsSpoiledAt;
      // The aggregator believes reports (only agents and admins write them): if it saw the forged failure before the
      // agent's heartbeat repaired it, it said so (a Warning Event). A race, so a figure only.
      const events = await cluster.kubectl([
        'get',
        'events',
        '-n',
        'default',
        '--field-selector',
        'involvedObject.name=garbage-b,type=Warning',
        '-o',
        'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
      ]);
      const forgedShown = events.stdout.includes('forged failure');
      // The ghost node's report is never counted: READY stays 3/3 (checked above), the ghost node is named nowhere.
      for (const name of names) {
        expect(JSON.stringify((await cluster.getStaticRoute(name))?.status)).not.toContain('ghost-node');
      }

      // Phase 2, the aggregator's marks on the objects.
      const marksSpoiledAt = Date.now();
      await setFinalizers(cluster, 'garbage-a', null);
      await spoilAnnotations(cluster, 'garbage-a');
      // Finalizers of earlier layouts put back on a live object (say, by an agent of the previous version still
      // running during the upgrade): they stay while it lives and are released with the aggregator's own.
      const foreign = ['staticroute.opkit.dev/ghost-node', 'kopf.zalando.org/KopfFinalizerMarker'];
      await setFinalizers(cluster, 'garbage-b', [AGGREGATOR_FINALIZER, ...foreign]);
      await spoilSummary(cluster, 'garbage-c');
      await eventually(
        async () => {
          const [objects, reports] = await Promise.all([listStaticRoutes(cluster), listReports(cluster)]);
          const problems = ['garbage-a', 'garbage-c'].flatMap((name) =>
            appliedProblems(objects.get(name), name, nodeNames, reports),
          );
          if (problems.length > 0) throw new Error(problems.join('; '));
          return true;
        },
        'the aggregator to put its finalizer back and rewrite the spoiled summary',
        60_000,
      );
      const marksRepairedMs = Date.now() - marksSpoiledAt;
      const stored = await cluster.getStaticRoute('garbage-c');
      expect(stored?.status).not.toHaveProperty('nodes');
      expect(stored?.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));

      // Phase 3: an agent down while its report is replaced by a forged one, every spec changed meanwhile; its start
      // (a re-read of its report) repairs it.
      await cluster.operators.get(node3.name)!.stop();
      await deleteReport(cluster, node3.name);
      await createReport(cluster, node3.name, {
        heartbeatTime: '2000-01-01T00:00:00Z',
        summary: { staticRoutes: 1, notReady: 1, routes: 0 },
        staticRoutes: { 'garbage-a': { uid: 'forged', state: 'Refused', message: 'forged', routes: 0 } },
      });
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
      const restartedAt = Date.now();
      await cluster.startOperator(node3, { env: { REPORT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } });
      await cluster.waitReady(node3, 90_000);
      await waitForRoutes(nodes, desired(true), 90_000);
      // garbage-b keeps the foreign finalizers besides the aggregator's (see above): checked apart.
      await eventually(
        async () => {
          const [objects, reports] = await Promise.all([listStaticRoutes(cluster), listReports(cluster)]);
          const problems = [
            ...names.flatMap((name) =>
              appliedProblems(objects.get(name), name, nodeNames, reports).filter(
                (problem) => !(name === 'garbage-b' && problem.startsWith('garbage-b: finalizers')),
              ),
            ),
            ...nodeNames.flatMap((node) => reportProblems(node, reports.get(node), objects, names, 2, restartedAt)),
          ];
          if (problems.length > 0) throw new Error(problems.slice(0, 8).join('; '));
          return true;
        },
        'every report exact and every object READY 3/3 for its new generation',
        90_000,
      );
      expect((await cluster.getStaticRoute('garbage-b'))?.metadata.finalizers).toEqual([
        AGGREGATOR_FINALIZER,
        ...foreign,
      ]);

      // No route that stayed wanted was ever removed, on any node.
      for (const [index, monitor] of monitors.entries()) {
        await monitor.stop();
        const lost = monitor
          .events()
          .filter(
            (event) =>
              event.kind === 'delete' &&
              event.route.protocol === OURS &&
              desired(true).some((line) => line.startsWith(`${event.route.dst} `)),
          );
        expect(
          lost.map((event) => event.route.dst),
          `${nodes[index]!.name}: wanted routes removed`,
        ).toEqual([]);
      }

      // Nothing stuck: every object can be deleted (garbage-b with its foreign finalizers too), every entry goes.
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
      await expectNoOrphanEntries(cluster);
      for (const node of nodes) expect(isAlive(cluster.operators.get(node.name)!), `${node.name} alive`).toBe(true);
      expect(isAlive(aggregatorOf(cluster)), 'aggregator alive').toBe(true);
      // Nobody owns the ghost node's report (a real node's report goes with its Node): removed by hand.
      await cluster.controlPlane.request('DELETE', `${REPORTS_API}/ghost-node`);
      recordFigures('garbage-state', {
        heartbeatSeconds: HEARTBEAT_SECONDS,
        schemaRefusals: refusals,
        forgedFailureShownInSummary: forgedShown,
        reportsRepairedAfterMs: reportsRepairedMs,
        marksRepairedAfterMs: marksRepairedMs,
      });
    },
    TIMEOUT,
  );
});
