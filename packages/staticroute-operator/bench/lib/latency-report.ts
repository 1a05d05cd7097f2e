/** Tables, figures and the JSON of apply-latency.ts. */
import { figure, fixed, printTable, summarize, type Figure } from '@opkit/testbed/bench';
import { printFigures, writeResults } from './report.js';

export interface NodeSample {
  /** accepted -> the route change seen on this node (for a gateway change: the later of delete and add). */
  routeMs: number;
  /** Gateway change only: the new route's add minus the old route's delete. */
  windowMs?: number;
}

export interface Sample {
  name: string;
  cause: 'create' | 'update';
  acceptedAt: number;
  roundTripMs: number;
  allNodesMs: number;
  /** accepted -> every node's report holds the object's entry for this generation (20 ms polls). */
  reportMs: number;
  /** accepted -> the aggregator's READY N/N for this generation (20 ms polls). */
  statusMs: number;
  nodes: Record<string, NodeSample>;
}

export interface WindowRun {
  acceptedAt: number;
  roundTripMs: number;
  convergedMs: number;
  nodes: Record<string, { windows: number[]; convergedMs: number; spanMs: number }>;
}

export interface LatencyResults {
  options: Record<string, unknown>;
  runtime: { version: string };
  nodes: string[];
  creates: Sample[];
  changes: Sample[];
  windowRuns: WindowRun[];
  destinations: number;
  bigCreate: {
    roundTripMs: number;
    allRoutesMs: number;
  };
  /** Dry-run label patches: what one write of an object costs the API server, by object size. */
  writeCost: {
    smallMs: number[];
    bigMs: number[];
    statusSmallMs: number[];
    statusBigMs: number[];
  };
  /** CEL evaluation and request-duration lines of the API server's /metrics at the end. */
  apiServerMetrics: string[];
  baseline: { perReplaceUs: number[]; oneProcessMs: number[] };
}

const values = (samples: Sample[], pick: (s: Sample) => number | undefined): number[] =>
  samples.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));

export function reportLatency(results: LatencyResults): void {
  const { creates, changes, windowRuns, baseline, nodes, writeCost } = results;
  const N = nodes.length;
  const rows: (string | number)[][] = [];
  const row = (name: string, list: number[], digits = 1): void => {
    const s = summarize(list);
    rows.push([name, s.n, fixed(s.median, digits), fixed(s.p90, digits), fixed(s.max, digits)]);
  };
  row(
    `create -> route on all ${N} nodes`,
    values(creates, (s) => s.allNodesMs),
  );
  for (const node of nodes)
    row(
      `  ${node}`,
      values(creates, (s) => s.nodes[node]?.routeMs),
    );
  row(
    '  same, from the request sent',
    values(creates, (s) => s.allNodesMs + s.roundTripMs),
  );
  row(
    `create -> every node's report holds it (20 ms polls)`,
    values(creates, (s) => s.reportMs),
  );
  row(
    `create -> READY ${N}/${N} seen (20 ms polls)`,
    values(creates, (s) => s.statusMs),
  );
  row(
    'create API round trip (baseline)',
    values(creates, (s) => s.roundTripMs),
  );
  row(
    `gateway change -> converged on all ${N} nodes`,
    values(changes, (s) => s.allNodesMs),
  );
  for (const node of nodes)
    row(
      `  ${node}`,
      values(changes, (s) => s.nodes[node]?.routeMs),
    );
  row(
    '  same, from the request sent',
    values(changes, (s) => s.allNodesMs + s.roundTripMs),
  );
  row(
    `gateway change -> every node's report holds it`,
    values(changes, (s) => s.reportMs),
  );
  row(
    `gateway change -> READY ${N}/${N} seen`,
    values(changes, (s) => s.statusMs),
  );
  row(
    'patch API round trip (baseline)',
    values(changes, (s) => s.roundTripMs),
  );
  row('ip route replace, per route in ip -batch (us, baseline)', baseline.perReplaceUs, 2);
  row('one `ip route replace` process, wall (baseline)', baseline.oneProcessMs, 2);
  row('dry-run label patch, 1-destination object', writeCost.smallMs);
  row(`dry-run label patch, ${results.destinations}-destination object`, writeCost.bigMs);
  row('dry-run status patch, 1-destination object', writeCost.statusSmallMs);
  row(`dry-run status patch, ${results.destinations}-destination object`, writeCost.statusBigMs);
  printTable(
    `Figure 1: apply latency (ms), operators on ${results.runtime.version}`,
    ['', 'n', 'median', 'p90', 'max'],
    rows,
  );

  // The path of a change: kernel (each node's agent, from the watch event) -> the node's report (coalesced, at most
  // one write per second) -> the aggregator's status (after its settling delay when nodes lag).
  const breakdown: (string | number)[][] = [];
  for (const [label, samples] of [
    ['create', creates],
    ['gateway change', changes],
  ] as const) {
    const med = (list: number[]): string => fixed(summarize(list).median);
    breakdown.push([
      label,
      med(samples.flatMap((s) => nodes.map((node) => s.nodes[node]?.routeMs ?? Number.NaN))),
      med(samples.map((s) => s.allNodesMs)),
      med(samples.map((s) => s.reportMs)),
      med(samples.map((s) => s.statusMs)),
    ]);
  }
  printTable(
    'Where the time goes (medians, ms after "accepted")',
    ['', 'route on a node', `route on all ${N}`, `${N} reports written`, `READY ${N}/${N}`],
    breakdown,
  );

  const windowRows: (string | number)[][] = [];
  const oneWindow = (node: string): number[] => values(changes, (s) => s.nodes[node]?.windowMs);
  for (const node of nodes) {
    const s = summarize(oneWindow(node));
    windowRows.push([`1 destination, ${node}`, s.n, fixed(s.median, 3), fixed(s.max, 3)]);
  }
  for (const node of nodes) {
    const s = summarize(windowRuns.flatMap((run) => run.nodes[node]?.windows ?? []));
    windowRows.push([`${results.destinations} destinations, ${node}`, s.n, fixed(s.median, 2), fixed(s.max, 2)]);
  }
  printTable(
    'Figure 2: window without a route during a gateway change (ms, old route deleted -> new route added)',
    ['', 'n', 'median', 'max'],
    windowRows,
  );
  const converged = summarize(windowRuns.map((run) => run.convergedMs));
  const span = summarize(windowRuns.flatMap((run) => Object.values(run.nodes).map((n) => n.spanMs)));
  const bigRtt = summarize(windowRuns.map((run) => run.roundTripMs));
  console.log(
    `${results.destinations} destinations, ${windowRuns.length} gateway changes: accepted -> converged on all nodes ` +
      `median ${fixed(converged.median)} ms (max ${fixed(converged.max)}); patch round trip median ` +
      `${fixed(bigRtt.median)} ms; first -> last kernel change on a node median ${fixed(span.median)} ms.\n` +
      `Create of that object: round trip ${fixed(results.bigCreate.roundTripMs)} ms, accepted -> all routes on all ` +
      `nodes ${fixed(results.bigCreate.allRoutesMs)} ms.`,
  );

  const create = summarize(values(creates, (s) => s.allNodesMs));
  const change = summarize(values(changes, (s) => s.allNodesMs));
  const patchRtt = summarize(values(changes, (s) => s.roundTripMs));
  const createRtt = summarize(values(creates, (s) => s.roundTripMs));
  const replaceUs = summarize(baseline.perReplaceUs);
  const one = summarize(nodes.flatMap(oneWindow));
  const many = summarize(windowRuns.flatMap((run) => Object.values(run.nodes).flatMap((n) => n.windows)));
  const target = { op: '<', value: 100 } as const;
  const figures: Figure[] = [
    figure(`create -> route on all ${N} nodes, median`, create.median, 'ms', {
      target,
      baseline: { name: 'create round trip', value: createRtt.median },
    }),
    figure(`create -> route on all ${N} nodes, p90`, create.p90, 'ms', { target }),
    figure(`gateway change converged on all ${N} nodes, median`, change.median, 'ms', {
      target,
      baseline: {
        name: 'patch round trip + 1 replace',
        value: patchRtt.median + replaceUs.median / 1000,
      },
    }),
    figure(`gateway change converged on all ${N} nodes, p90`, change.p90, 'ms', {
      target,
    }),
    figure('no-route window, 1 destination, median', one.median, 'ms', {
      baseline: { name: 'kernel replace', value: replaceUs.median / 1000 },
    }),
    figure('no-route window, 1 destination, max', one.max, 'ms'),
    figure(`no-route window, ${results.destinations} destinations, median`, many.median, 'ms'),
    figure(`no-route window, ${results.destinations} destinations, max`, many.max, 'ms'),
    figure(`gateway change of ${results.destinations} destinations converged, median`, converged.median, 'ms', {
      baseline: { name: 'its patch round trip', value: bigRtt.median },
    }),
  ];
  printFigures(`Figures 1-2 (operators on ${results.runtime.version})`, figures);
  writeResults(N === 3 ? 'apply-latency' : `apply-latency-${N}node${N === 1 ? '' : 's'}`, figures, {
    ...results,
    windowRuns: windowRuns.map((run) => ({
      ...run,
      nodes: Object.fromEntries(
        Object.entries(run.nodes).map(([node, n]) => [
          node,
          {
            ...summarize(n.windows),
            convergedMs: n.convergedMs,
            spanMs: n.spanMs,
          },
        ]),
      ),
    })),
  });
}
