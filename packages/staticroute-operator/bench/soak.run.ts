/**
 * Soak: many simulated nodes (an agent on each) and the aggregator (the release's settings), many StaticRoutes,
 * churned in bursts for a while. Reports, and asserts nothing about: per-agent and aggregator memory over time,
 * Warning events, convergence time after each burst (tables, then READY N/N written by the aggregator), API requests
 * per change (StaticRoute writes, node report writes per node) and watch connections per node. Run through
 * scripts/soak.sh (not part of the test suites):
 *
 *   bash scripts/soak.sh --nodes 20 --objects 2000 --duration 600
 *
 * Settings (environment): SOAK_NODES (20), SOAK_OBJECTS (2000), SOAK_DURATION_S (600), SOAK_MAX_DESTINATIONS (50),
 * SOAK_BURST (40 changes), SOAK_CONVERGE_TIMEOUT_S (600, failure bound of one convergence wait), SOAK_STATUS_WAIT_S
 * (how long the initial phase and each burst wait for every status before going on; defaults to the failure bound),
 * SOAK_SEED (34), SOAK_OUT (JSON summary file). A tables wait that times out ends the churn; the figures are still
 * reported. A status wait that ends at SOAK_STATUS_WAIT_S is reported (how many objects still lagged) and the churn
 * goes on: on a machine whose API server cannot keep up, the tables (what the product is for) are still measured
 * burst by burst. After the churn, every status must converge within the bound.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'vitest';
import { E2eCluster, GATEWAY_A, GATEWAY_B, ourRoutes, type StaticRouteJson } from '../test/e2e/support/cluster.js';
import { Churn, sleep, type ModelObject } from '../test/reliability/support/churn.js';
import { recordFigures } from '../test/reliability/support/converge.js';
import {
  metricSum,
  percentile,
  rssBytes,
  scrapeApiServer,
  scrapeOperator,
  warnings,
  logsOf,
  parseLogs,
  type Metrics,
} from '../test/reliability/support/observe.js';
import { seededRandom } from '../test/reliability/support/random.js';
import { runtimeOf, startAggregator, type AggregatorProcess } from './lib/operators.js';

function setting(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const NODES = setting('SOAK_NODES', 20);
const OBJECTS = setting('SOAK_OBJECTS', 2000);
const DURATION_MS = setting('SOAK_DURATION_S', 600) * 1000;
const MAX_DESTINATIONS = setting('SOAK_MAX_DESTINATIONS', 50);
const BURST = setting('SOAK_BURST', 40);
const SEED = setting('SOAK_SEED', 34);
const CONCURRENCY = 8;
/** Failure bound of one convergence wait (SOAK_CONVERGE_TIMEOUT_S, default 600 s). */
const CONVERGE_TIMEOUT_MS = setting('SOAK_CONVERGE_TIMEOUT_S', 600) * 1000;
/** How long the initial phase and each burst wait for every status (SOAK_STATUS_WAIT_S, default the bound above). */
const STATUS_WAIT_MS = setting('SOAK_STATUS_WAIT_S', CONVERGE_TIMEOUT_MS / 1000) * 1000;

/** Runs a convergence wait; a timeout is recorded in `failures` (and yields NaN) instead of ending the soak. */
async function measured(failures: string[], what: string, wait: () => Promise<number>): Promise<number> {
  try {
    return await wait();
  } catch (error) {
    failures.push(`${what}: ${(error as Error).message}`);
    return Number.NaN;
  }
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

/** Waits until every node's table holds exactly the model's routes; resolves with the time it took. */
async function converge(cluster: E2eCluster, churn: Churn, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
  const started = Date.now();
  const want = JSON.stringify(churn.expectedRoutes());
  for (const node of cluster.nodes) {
    for (;;) {
      if (JSON.stringify(await ourRoutes(node)) === want) break;
      if (Date.now() - started > timeoutMs) throw new Error(`${node.name} did not converge within ${timeoutMs} ms`);
      await sleep(250);
    }
  }
  return Date.now() - started;
}

/** A status wait that ended at its bound: how many objects still lagged, and a description. */
class StatusLag extends Error {
  constructor(
    readonly lagging: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Waits until the aggregator shows every live object READY N/N for its current generation (the per-object view, which
 * follows the tables: agents' reports, then the aggregator's summary); resolves with the time. Throws a
 * {@link StatusLag} at the bound.
 */
async function statusConverged(cluster: E2eCluster, churn: Churn, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<number> {
  const started = Date.now();
  const ready = `${cluster.nodes.length}/${cluster.nodes.length}`;
  let lagging: string[] = [...churn.live.keys()];
  // Lagging objects by what holds them back (the state of their first not-ready group, or no status yet).
  let reasons = new Map<string, number>();
  for (;;) {
    // A loaded API server can take long to list every object: a failed poll is just tried again.
    const list = await cluster.controlPlane
      .request<{ items?: StaticRouteJson[] }>('GET', '/apis/networking.digitalocean.com/v1/staticroutes')
      .catch(() => undefined);
    if (list?.status === 200) {
      const byName = new Map((list.body.items ?? []).map((object) => [object.metadata.name, object]));
      lagging = [];
      reasons = new Map();
      for (const name of churn.live.keys()) {
        const object = byName.get(name);
        const status = object?.status;
        if (!object) lagging.push(`${name}: missing`);
        else if (status?.ready !== ready || status.observedGeneration !== object.metadata.generation) {
          const reason = status?.notReady?.[0]?.state ?? (status ? 'stale' : 'no status');
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          lagging.push(
            `${name} (generation ${object.metadata.generation}): ready ${status?.ready ?? '-'} for generation ` +
              `${status?.observedGeneration ?? '-'}, not ready ${JSON.stringify(status?.notReady ?? [])}`,
          );
        }
      }
      if (lagging.length === 0) return Date.now() - started;
    }
    if (Date.now() - started > timeoutMs) {
      const shown = lagging.slice(0, 5).join('; ');
      const why = [...reasons].map(([reason, count]) => `${reason} ${count}`).join(', ');
      throw new StatusLag(
        lagging.length,
        `${lagging.length} objects not READY ${ready} after ${timeoutMs} ms (by reason: ${why}), e.g. ${shown}`,
      );
    }
    await sleep(2000);
  }
}

/**
 * A status wait bounded by SOAK_STATUS_WAIT_S: the time it took (NaN at the bound) and how many objects still lagged
 * then. Only a bound shorter than the failure bound can end it without convergence.
 */
async function statusWait(
  cluster: E2eCluster,
  churn: Churn,
  failures: string[],
  what: string,
): Promise<{ ms: number; lagging: number }> {
  try {
    return { ms: await statusConverged(cluster, churn, STATUS_WAIT_MS), lagging: 0 };
  } catch (error) {
    const lagging = error instanceof StatusLag ? error.lagging : Number.NaN;
    if (!(error instanceof StatusLag) || STATUS_WAIT_MS >= CONVERGE_TIMEOUT_MS) {
      failures.push(`${what}: ${(error as Error).message}`);
    }
    return { ms: Number.NaN, lagging };
  }
}

/** Retries a read that a loaded API server may time out (5 attempts). */
async function retrying<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(2000);
    }
  }
}

function rssMiB(cluster: E2eCluster): number[] {
  return cluster.nodes.map((node) =>
    Math.round((rssBytes(cluster.operators.get(node.name)?.child.pid) ?? 0) / 1048576),
  );
}

const aggregatorRssMiB = (aggregator: AggregatorProcess): number => Math.round(aggregator.memory().rss / 1048576);

async function operatorMetrics(cluster: E2eCluster): Promise<Metrics[]> {
  return Promise.all(cluster.nodes.map((node) => scrapeOperator(node)));
}

/** Min, median, p99 and max of the finite values (a wait that ended at its bound counts as NaN and is left out). */
const stats = (all: number[]) => {
  const values = all.filter(Number.isFinite);
  return {
    min: Math.min(...values),
    median: percentile(values, 50),
    p99: percentile(values, 99),
    max: Math.max(...values),
  };
};

it(`soak: ${NODES} nodes, ${OBJECTS} StaticRoutes (1-${MAX_DESTINATIONS} destinations), churned ${DURATION_MS / 1000} s`, async () => {
  const cluster = await E2eCluster.start(NODES);
  const random = seededRandom(SEED);
  let aggregator: AggregatorProcess | undefined;
  try {
    const startedAt = Date.now();
    // The shipped settings (the e2e fixture's are tuned for tests): the aggregator as the release runs it; agents
    // with info logs and a full pass every 60 s.
    aggregator = await startAggregator({
      runtime: runtimeOf(process.execPath),
      kubeconfig: await cluster.aggregatorKubeconfig(),
      dir: mkdtempSync(path.join(os.tmpdir(), 'sr-soak-aggregator-')),
    });
    await cluster.startOperators({ env: { LOG_LEVEL: 'info', RECONCILE_INTERVAL_SECONDS: '60' } });
    const startupMs = Date.now() - startedAt;
    const rssStart = rssMiB(cluster);
    const aggregatorRssStart = aggregatorRssMiB(aggregator);
    const churn = new Churn(cluster, {
      seed: SEED,
      gateways: [GATEWAY_A, GATEWAY_B],
      prefix: 'soak',
      maxLive: OBJECTS,
      maxDestinations: MAX_DESTINATIONS,
    });

    // Load: create every object, then wait for every node.
    const createStarted = Date.now();
    await pool(Array.from({ length: OBJECTS }), CONCURRENCY, () => churn.create());
    const createIssuedMs = Date.now() - createStarted;
    const failures: string[] = [];
    const initialConvergeMs = await measured(failures, 'initial tables', () => converge(cluster, churn));
    const initialStatus = await statusWait(cluster, churn, failures, 'initial status');
    const initialStatusMs = initialConvergeMs + initialStatus.ms;
    const routesPerNode = churn.expectedRoutes().length;
    const rssWarm = rssMiB(cluster);
    const aggregatorRssWarm = aggregatorRssMiB(aggregator);
    console.log(
      `[soak] ${OBJECTS} objects (${routesPerNode} routes per node) issued in ${createIssuedMs} ms; tables converged ${initialConvergeMs} ms later, every status ${initialStatusMs} ms later`,
    );

    // Churn in bursts: patch destinations, patch gateways, replace objects (delete + create keeps the count).
    const apiBefore = await retrying(() => scrapeApiServer(cluster));
    const operatorsBefore = await retrying(() => operatorMetrics(cluster));
    const churnStarted = Date.now();
    const bursts: Array<{
      changes: number;
      issueMs: number;
      convergeMs: number;
      statusMs: number;
      statusLagging: number;
    }> = [];
    const rssSamples: number[][] = [];
    let changes = 0;
    // A soak that cannot converge is not churned further: the figures so far are reported, and the run fails.
    while (Date.now() - churnStarted < DURATION_MS && failures.length === 0) {
      const targets = random.shuffle([...churn.live.values()]).slice(0, BURST);
      const issued = Date.now();
      await pool(targets, CONCURRENCY, async (object: ModelObject) => {
        const roll = random.next();
        if (roll < 0.4) await churn.patchDestinations(object);
        else if (roll < 0.7) await churn.patchGateway(object);
        else {
          await churn.remove(object);
          await churn.create();
          changes++;
        }
        changes++;
      });
      const issueMs = Date.now() - issued;
      const convergeMs = await measured(failures, `burst ${bursts.length + 1} tables`, () => converge(cluster, churn));
      const status = await statusWait(cluster, churn, failures, `burst ${bursts.length + 1} status`);
      const statusMs = convergeMs + status.ms;
      bursts.push({ changes: targets.length, issueMs, convergeMs, statusMs, statusLagging: status.lagging });
      rssSamples.push(rssMiB(cluster));
      console.log(
        `[soak] burst ${bursts.length}: ${targets.length} changes issued in ${issueMs} ms; tables converged ${convergeMs} ms later, ${status.lagging === 0 ? `every status ${statusMs} ms later` : `${status.lagging} objects' status still lagging after ${STATUS_WAIT_MS} ms`}`,
      );
    }
    // Every status must catch up once the churn stops (the waits above may have gone on without it).
    const finalStatusMs = await measured(failures, 'final status', () => statusConverged(cluster, churn));
    const churnMs = Date.now() - churnStarted;
    const apiAfter = await retrying(() => scrapeApiServer(cluster));
    const operatorsAfter = await retrying(() => operatorMetrics(cluster));
    const rssEnd = rssMiB(cluster);
    const aggregatorRssEnd = aggregatorRssMiB(aggregator);
    const aggregatorWarnings = warnings(parseLogs(readFileSync(aggregator.logFile, 'utf8'))).length;

    // API load: what the operators sent (their own counters) and what the API server saw.
    const perNodeRequests = operatorsAfter.map((after, index) => {
      const before = operatorsBefore[index] ?? new Map();
      const delta = (verb: string) =>
        metricSum(after, 'opkit_api_requests_total', { verb }) -
        metricSum(before, 'opkit_api_requests_total', { verb });
      return {
        list: delta('list'),
        get: delta('get'),
        patch: delta('patch'),
        create: delta('create'),
        watch: delta('watch'),
      };
    });
    const totalPerNode = perNodeRequests.map((counts) => Object.values(counts).reduce((a, b) => a + b, 0));
    const serverDelta = (labels: Record<string, string>) =>
      metricSum(apiAfter, 'apiserver_request_total', labels) - metricSum(apiBefore, 'apiserver_request_total', labels);
    const watches = (resource: string) =>
      metricSum(apiAfter, 'apiserver_longrunning_requests', { resource, verb: 'WATCH' });
    const events = await retrying(() =>
      cluster.controlPlane.request<{
        items: Array<{ type: string; reason: string; count?: number }>;
      }>('GET', '/api/v1/events?fieldSelector=type%3DWarning'),
    );
    const warningEvents: Record<string, number> = {};
    for (const event of events.body.items ?? [])
      warningEvents[event.reason] = (warningEvents[event.reason] ?? 0) + (event.count ?? 1);
    const logWarnings = cluster.nodes.map((node) => warnings(logsOf(cluster.operators.get(node.name)!)).length);
    const restarts = [...cluster.operators.values()].filter(
      (operator) => operator.child.exitCode !== null || operator.child.signalCode !== null,
    ).length;

    const summary = {
      settings: {
        nodes: NODES,
        objects: OBJECTS,
        maxDestinations: MAX_DESTINATIONS,
        burst: BURST,
        durationMs: DURATION_MS,
        seed: SEED,
      },
      startupMs,
      routesPerNode,
      initial: {
        createIssuedMs,
        tablesConvergedMs: initialConvergeMs,
        statusConvergedMs: initialStatusMs,
        statusLaggingAtWaitEnd: initialStatus.lagging,
      },
      churn: {
        ms: churnMs,
        bursts: bursts.length,
        changes,
        tablesConvergedMs: stats(bursts.map((burst) => burst.convergeMs)),
        statusConvergedMs: stats(bursts.map((burst) => burst.statusMs)),
        statusWaitMs: STATUS_WAIT_MS,
        burstsWithStatusLagging: bursts.filter((burst) => burst.statusLagging > 0).length,
        statusLaggingAtWaitEnd: bursts.map((burst) => burst.statusLagging),
        finalStatusConvergedMs: finalStatusMs,
        issueMs: stats(bursts.map((burst) => burst.issueMs)),
      },
      rssMiB: {
        start: stats(rssStart),
        afterLoad: stats(rssWarm),
        end: stats(rssEnd),
        perBurstMedian: rssSamples.map((sample) => percentile(sample, 50)),
        aggregator: { start: aggregatorRssStart, afterLoad: aggregatorRssWarm, end: aggregatorRssEnd },
      },
      operatorsExited: restarts,
      convergenceFailures: failures,
      warningEvents,
      operatorLogWarnings: { total: logWarnings.reduce((a, b) => a + b, 0), perNode: stats(logWarnings) },
      aggregatorLogWarnings: aggregatorWarnings,
      api: {
        operatorRequestsPerNode: stats(totalPerNode),
        operatorRequestsPerChangePerNode: Number((percentile(totalPerNode, 50) / Math.max(1, changes)).toFixed(2)),
        operatorRequestsByVerbNode0: perNodeRequests[0],
        serverStaticRouteRequests: {
          patch: serverDelta({ resource: 'staticroutes', verb: 'PATCH' }),
          list: serverDelta({ resource: 'staticroutes', verb: 'LIST' }),
          get: serverDelta({ resource: 'staticroutes', verb: 'GET' }),
          watch: serverDelta({ resource: 'staticroutes', verb: 'WATCH' }),
        },
        serverNodeReportRequests: {
          patch: serverDelta({ resource: 'staticroutenodestatuses', verb: 'PATCH' }),
          get: serverDelta({ resource: 'staticroutenodestatuses', verb: 'GET' }),
          conflicts: serverDelta({ resource: 'staticroutenodestatuses', code: '409' }),
        },
        // The aggregator's writes (finalizers, status) and the churn's own (creates, patches, deletes).
        serverStaticRouteWritesPerChange: Number(
          (
            (serverDelta({ resource: 'staticroutes', verb: 'PATCH' }) +
              serverDelta({ resource: 'staticroutes', verb: 'POST' }) +
              serverDelta({ resource: 'staticroutes', verb: 'DELETE' })) /
            Math.max(1, changes)
          ).toFixed(2),
        ),
        serverReportWritesPerChangePerNode: Number(
          (serverDelta({ resource: 'staticroutenodestatuses', verb: 'PATCH' }) / Math.max(1, changes) / NODES).toFixed(
            2,
          ),
        ),
        serverStaticRouteConflicts: serverDelta({ resource: 'staticroutes', code: '409' }),
        serverThrottled: serverDelta({ code: '429' }),
        serverRequestsPerChangePerNode: Number(
          (serverDelta({ resource: 'staticroutes' }) / Math.max(1, changes) / NODES).toFixed(2),
        ),
        watchConnectionsPerNode: {
          staticroutes: Number((watches('staticroutes') / NODES).toFixed(2)),
          nodes: Number((watches('nodes') / NODES).toFixed(2)),
          staticroutenodestatuses: Number((watches('staticroutenodestatuses') / NODES).toFixed(2)),
        },
      },
    };
    console.log(`[soak] summary\n${JSON.stringify(summary, null, 2)}`);
    recordFigures('soak', summary);
    if (process.env.SOAK_OUT) writeFileSync(process.env.SOAK_OUT, `${JSON.stringify(summary, null, 2)}\n`);
    if (failures.length > 0) throw new Error(`the soak did not converge: ${failures.join('; ')}`);
  } finally {
    await aggregator?.stop();
    await cluster.destroy();
  }
});
