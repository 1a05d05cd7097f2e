/** Tables, figures and the JSON of cold-start.ts. */
import { figure, fixed, printTable, summarize, type Figure } from '@opkit/testbed/bench';
import type { Runtime } from './operators.js';
import { grouped, printFigures, writeResults } from './report.js';

type Memory = { rss: number; peak: number; anon: number; file: number };

export interface NodeColdStart {
  node: string;
  /** Spawn -> the last expected route in the kernel. */
  allRoutesMs: number;
  firstRouteMs: number;
  /** First -> last expected route (the kernel programming part). */
  programmingMs: number;
  /** Spawn -> `ready` (the StaticRoutes listed and the table converged). */
  readyMs: number;
  /** Spawn -> the node's report holds every object Applied (1 s polls; NaN if not within the timeout). */
  reportMs: number;
  milestones: Record<string, number>;
  cpuMsAtReady: number;
  /** Objects the node's report held Applied once complete, or at the time limit. */
  reported: number;
  /** With the routes in place, a moment after they all are (reports may still be on their way). */
  busyRss: Memory;
  /** With the routes, once ready (or at the time limit), after the settle time. */
  rss: Memory;
  /** The V8 heap at the same moment (from /metrics). */
  heap: Record<string, number>;
}

export interface ColdRun {
  runtime: string;
  run: number;
  /** Creating the objects (8 requests in flight). */
  createMs: number;
  /** Each operator with no StaticRoute, after the settle time. */
  idle: Memory[];
  idleHeap: Array<Record<string, number>>;
  nodes: NodeColdStart[];
  /** First spawn -> every object READY 3/3 in the aggregator's status (NaN if not within the timeout). */
  allAppliedMs: number;
  appliedObjects: number;
  /** The aggregator (running throughout): with no StaticRoute, and with every object at the end. */
  aggregator: { idle: Memory; loaded: Memory };
}

const MB = 1024 * 1024;

export function reportColdStart(
  runs: ColdRun[],
  list: Runtime[],
  options: Record<string, unknown> & {
    objects: number;
    destinations: number;
    convergeTimeoutS: number;
    milestones: string[];
  },
): void {
  const routes = options.objects * options.destinations;
  const figures: Figure[] = [];
  const rows: (string | number)[][] = [];
  const memoryRows: (string | number)[][] = [];
  const stepRows: (string | number)[][] = [];
  for (const runtime of list) {
    const mine = runs.filter((run) => run.runtime === runtime.version);
    const nodes = mine.flatMap((run) => run.nodes);
    const line = (name: string, values: number[], digits = 0): void => {
      const s = summarize(values.filter(Number.isFinite));
      rows.push([
        `${name} (${runtime.version})`,
        s.n,
        fixed(s.median, digits),
        fixed(s.p90, digits),
        fixed(s.max, digits),
      ]);
    };
    line(
      'spawn -> all routes on the node',
      nodes.map((n) => n.allRoutesMs),
    );
    line(
      'spawn -> first route',
      nodes.map((n) => n.firstRouteMs),
    );
    line(
      'first -> last route (kernel programming)',
      nodes.map((n) => n.programmingMs),
    );
    line(
      'spawn -> ready (table converged)',
      nodes.map((n) => n.readyMs),
    );
    line(
      "spawn -> the node's report holds every object",
      nodes.map((n) => n.reportMs),
    );
    line(
      'first spawn -> all objects READY 3/3',
      mine.map((r) => r.allAppliedMs),
    );
    line(
      'CPU time until ready, per operator',
      nodes.map((n) => n.cpuMsAtReady),
    );
    line(
      'creating the objects (API, 8 in flight)',
      mine.map((r) => r.createMs),
    );
    const allRoutes = summarize(nodes.map((n) => n.allRoutesMs));
    const programmingRate = summarize(nodes.map((n) => (routes / n.programmingMs) * 1000));
    figures.push(
      figure(
        `cold start, spawn -> ${grouped(routes)} routes on a node, median (${runtime.label})`,
        allRoutes.median / 1000,
        's',
        {
          target: { op: '<', value: 10 },
        },
      ),
      figure(
        `cold start, spawn -> ${grouped(routes)} routes, max over nodes and runs (${runtime.label})`,
        allRoutes.max / 1000,
        's',
        {
          target: { op: '<', value: 10 },
        },
      ),
      figure(
        `kernel programming inside the operator at cold start (${runtime.label})`,
        programmingRate.median,
        'routes/s',
      ),
      figure(
        `spawn -> ready (${options.objects} objects listed, table converged), median (${runtime.label})`,
        summarize(nodes.map((n) => n.readyMs)).median / 1000,
        's',
      ),
      figure(
        `spawn -> report holds all ${options.objects} objects, median (${runtime.label})`,
        summarize(nodes.map((n) => n.reportMs)).median / 1000,
        's',
      ),
      figure(
        `first spawn -> all ${options.objects} objects READY 3/3, median (${runtime.label})`,
        summarize(mine.map((r) => r.allAppliedMs)).median / 1000,
        's',
      ),
    );

    const idle = summarize(mine.flatMap((r) => r.idle.map((m) => m.rss / MB)));
    const loaded = summarize(nodes.map((n) => n.rss.rss / MB));
    const busy = summarize(nodes.map((n) => n.busyRss.rss / MB));
    const peak = summarize(nodes.map((n) => n.rss.peak / MB));
    const anon = summarize(nodes.map((n) => n.rss.anon / MB));
    const idleAnon = summarize(mine.flatMap((r) => r.idle.map((m) => m.anon / MB)));
    const heapOf = (heaps: Array<Record<string, number>>, key: string) =>
      summarize(heaps.map((h) => (h[key] ?? Number.NaN) / MB).filter(Number.isFinite));
    const idleHeaps = mine.flatMap((r) => r.idleHeap);
    const loadedHeaps = nodes.map((n) => n.heap);
    memoryRows.push(
      [`idle, VmRSS (${runtime.version})`, idle.n, fixed(idle.median), fixed(idle.max)],
      [`idle, RssAnon (${runtime.version})`, idleAnon.n, fixed(idleAnon.median), fixed(idleAnon.max)],
      [
        `${grouped(routes)} routes, just programmed, VmRSS (${runtime.version})`,
        busy.n,
        fixed(busy.median),
        fixed(busy.max),
      ],
      [`${grouped(routes)} routes, VmRSS (${runtime.version})`, loaded.n, fixed(loaded.median), fixed(loaded.max)],
      [`${grouped(routes)} routes, RssAnon (${runtime.version})`, anon.n, fixed(anon.median), fixed(anon.max)],
      [`${grouped(routes)} routes, VmHWM peak (${runtime.version})`, peak.n, fixed(peak.median), fixed(peak.max)],
    );
    const aggregatorIdle = summarize(mine.map((r) => r.aggregator.idle.rss / MB));
    const aggregatorLoaded = summarize(mine.map((r) => r.aggregator.loaded.rss / MB));
    memoryRows.push(
      [
        `aggregator, no StaticRoute, VmRSS (${runtime.version})`,
        aggregatorIdle.n,
        fixed(aggregatorIdle.median),
        fixed(aggregatorIdle.max),
      ],
      [
        `aggregator, ${options.objects} StaticRoutes, VmRSS (${runtime.version})`,
        aggregatorLoaded.n,
        fixed(aggregatorLoaded.median),
        fixed(aggregatorLoaded.max),
      ],
    );
    for (const [label, heaps] of [
      ['idle', idleHeaps],
      [`${grouped(routes)} routes`, loadedHeaps],
    ] as const) {
      for (const [key, name] of [
        ['heap_size_used', 'V8 heap used'],
        ['heap_size_total', 'V8 heap total'],
        ['heap_space_size_total{space="new"}', 'V8 new space total'],
        ['external_memory', 'external (Buffers)'],
      ]) {
        const s = heapOf(heaps, key as string);
        memoryRows.push([`${label}, ${name} (${runtime.version})`, s.n, fixed(s.median), fixed(s.max)]);
      }
    }
    figures.push(
      figure(`RSS with ${grouped(routes)} routes, max over nodes (${runtime.label})`, loaded.max, 'MB', {
        target: { op: '<', value: 100 },
        baseline: { name: 'idle RSS', value: idle.median },
      }),
      figure(`RSS with ${grouped(routes)} routes, median (${runtime.label})`, loaded.median, 'MB', {
        target: { op: '<', value: 100 },
      }),
      figure(`RSS with ${grouped(routes)} routes, just programmed, max (${runtime.label})`, busy.max, 'MB', {
        target: { op: '<', value: 100 },
      }),
      figure(`peak RSS during the cold start, max (${runtime.label})`, peak.max, 'MB'),
      figure(`idle RSS, median (${runtime.label})`, idle.median, 'MB'),
      figure(`aggregator RSS with ${options.objects} StaticRoutes, max (${runtime.label})`, aggregatorLoaded.max, 'MB'),
    );
    for (const milestone of options.milestones) {
      const s = summarize(nodes.map((n) => n.milestones[milestone] ?? Number.NaN).filter(Number.isFinite));
      stepRows.push([`${milestone} (${runtime.version})`, s.n, fixed(s.median, 0), fixed(s.max, 0)]);
    }
  }
  printTable(
    `Figure 3: cold start, ${options.objects} objects x ${options.destinations} destinations, 3 nodes (ms)`,
    ['', 'n', 'median', 'p90', 'max'],
    rows,
  );
  printTable('Start-up steps (ms after spawn, first log line of each)', ['', 'n', 'median', 'max'], stepRows);
  printTable('Figure 5: agent and aggregator memory (MB, /proc/<pid>/status)', ['', 'n', 'median', 'max'], memoryRows);
  printFigures('Figures 3 and 5', figures);
  writeResults('cold-start', figures, { options, runtimes: list, runs });
}
