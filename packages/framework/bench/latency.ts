/**
 * Figure 2, latency: from the API accepting a change to the handler starting, with the operator in this process
 * (`opkit/testing`), so both instants come from one monotonic clock (`performance.now()`): "accepted" is taken
 * right after the create/patch request returned, "started" is the handler's first statement. The handler may start
 * slightly before the response arrives (the watch event and the response race), so small negatives are possible.
 *
 * Baselines, measured in the same run and interleaved sample by sample:
 * - the round trip of a bare merge patch of an object nobody handles;
 * - the delivery of that patch to a plain watch in this process (accepted -> watch event), the floor under which no
 *   watch-based operator can start a handler.
 *
 * Create latency includes the framework's finalizer write, which happens before the first handler by design (an
 * object deleted while being created must still get its delete handlers), so it is about one more round trip.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/latency.ts
 *        [--samples=100] [--warmup=5] [--quick]
 */
import { figure, fixed, numericOptions, printTable, summarize } from '@opkit/testbed/bench';
import { OnCreate, OnDelete, OnUpdate, Operator, type HandlerContext } from 'opkit';
import { startOperator } from 'opkit/testing';
import type { BenchObject } from './lib/api.js';
import { collectionPath, GROUP, kindOf, objectPath, startBenchCluster, widget } from './lib/cluster.js';
import { writeResults } from './lib/report.js';

const opts = numericOptions({ samples: 100, warmup: 5 }, { samples: 30 });
const HANDLED = 'latencywidgets';
const UNHANDLED = 'floorwidgets';
/** The object patched for the baseline (in the unhandled CRD; names are unique across both CRDs here). */
const BARE = 'w-99999';

/** Handler start times by `<name>@<spec.seq>`. */
const handlerStarts = new Map<string, number>();
const startKey = (name: string, seq: unknown): string => `${name}@${String(seq)}`;

interface WidgetSpec {
  seq: number;
}

@Operator({ group: GROUP, version: 'v1', plural: HANDLED, kind: kindOf(HANDLED) })
class LatencyOperator {
  @OnCreate({ id: 'created' })
  created(ctx: HandlerContext<WidgetSpec>): void {
    handlerStarts.set(startKey(ctx.name, ctx.spec.seq), performance.now());
  }

  @OnUpdate({ id: 'updated' })
  updated(ctx: HandlerContext<WidgetSpec>): void {
    handlerStarts.set(startKey(ctx.name, ctx.spec.seq), performance.now());
  }

  @OnDelete({ id: 'removed' })
  removed(): void {}
}

/** Resolves `until(name, predicate)` when the driver's watch shows the object satisfying the predicate. */
class Observer {
  private readonly waiters = new Set<{ name: string; test: (o: BenchObject) => boolean; done: () => void }>();
  private readonly latest = new Map<string, { object: BenchObject; at: number }>();

  onEvent(object: BenchObject): void {
    const now = performance.now();
    this.latest.set(object.metadata.name, { object, at: now });
    for (const waiter of this.waiters) {
      if (waiter.name === object.metadata.name && waiter.test(object)) {
        this.waiters.delete(waiter);
        waiter.done();
      }
    }
  }

  /** Resolves with the time the object was seen satisfying `test` (at once if it already did). */
  until(name: string, test: (object: BenchObject) => boolean, timeoutMs = 30_000): Promise<number> {
    const latest = this.latest.get(name);
    if (latest && test(latest.object)) return Promise.resolve(latest.at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: not observed within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add({
        name,
        test,
        done: () => {
          clearTimeout(timer);
          resolve(performance.now());
        },
      });
    });
  }
}

/**
 * The diff-base annotation shows that a cycle for spec.seq `seq` completed: it is the cycle's last write, since the
 * handlers return nothing and patch no status (a plain success with nothing else to write costs no status write).
 */
function handledSeq(object: BenchObject, seq: number): boolean {
  const base = object.metadata.annotations?.['opkit.dev/last-handled-configuration'];
  if (!base) return false;
  const essence = JSON.parse(base) as { spec?: { seq?: number } };
  return essence.spec?.seq === seq;
}

async function main(): Promise<void> {
  console.log(`latency: ${opts.samples} samples per kind (+${opts.warmup} warm-up), operator in-process`);
  const cluster = await startBenchCluster();
  const { client } = cluster;
  const stopWatch = new AbortController();
  const samples = {
    bareRtt: [] as number[],
    bareWatch: [] as number[],
    bareSentToWatch: [] as number[],
    update: [] as number[],
    create: [] as number[],
    updateFromSent: [] as number[],
    createFromSent: [] as number[],
  };
  const cycles = { update: [] as number[], create: [] as number[] };
  let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
  try {
    await cluster.installCrd(HANDLED);
    await cluster.installCrd(UNHANDLED);
    await client.ok('POST', collectionPath(UNHANDLED), widget(UNHANDLED, 99_999));
    await client.ok('POST', collectionPath(HANDLED), widget(HANDLED, 0));
    const observer = new Observer();
    for (const plural of [HANDLED, UNHANDLED]) {
      await client.watch(collectionPath(plural), (event) => observer.onEvent(event.object), stopWatch.signal);
    }
    operator = await startOperator({ classes: [LatencyOperator], kubeconfigPath: cluster.controlPlane.kubeconfigPath });
    await observer.until('w-0', (o) => handledSeq(o, 0));

    for (let i = 1; i <= opts.warmup + opts.samples; i += 1) {
      const keep = i > opts.warmup;
      // Baseline: a bare patch of an object no operator handles, and its delivery to a plain watch.
      const bareSent = performance.now();
      await client.ok('PATCH', objectPath(UNHANDLED, BARE), { spec: { seq: i } });
      const bareAccepted = performance.now();
      const bareSeen = await observer.until(BARE, (o) => o.spec?.seq === i);
      // Update of the handled object.
      const updateSent = performance.now();
      await client.ok('PATCH', objectPath(HANDLED, 'w-0'), { spec: { seq: i } });
      const updateAccepted = performance.now();
      const updateDone = await observer.until('w-0', (o) => handledSeq(o, i));
      // Create of a new handled object.
      const created = widget(HANDLED, 10_000 + i) as { metadata: { name: string } };
      const createSent = performance.now();
      await client.ok('POST', collectionPath(HANDLED), created);
      const createAccepted = performance.now();
      const createDone = await observer.until(created.metadata.name, (o) => handledSeq(o, 0));
      if (!keep) continue;
      samples.bareRtt.push(bareAccepted - bareSent);
      samples.bareWatch.push(bareSeen - bareAccepted);
      samples.bareSentToWatch.push(bareSeen - bareSent);
      const updateStarted = handlerStarts.get(startKey('w-0', i)) ?? Number.NaN;
      const createStarted = handlerStarts.get(startKey(created.metadata.name, 0)) ?? Number.NaN;
      samples.update.push(updateStarted - updateAccepted);
      samples.create.push(createStarted - createAccepted);
      samples.updateFromSent.push(updateStarted - updateSent);
      samples.createFromSent.push(createStarted - createSent);
      cycles.update.push(updateDone - updateAccepted);
      cycles.create.push(createDone - createAccepted);
    }
  } finally {
    stopWatch.abort();
    await operator?.stop();
    await cluster.stop();
  }

  const s = {
    bareRtt: summarize(samples.bareRtt),
    bareWatch: summarize(samples.bareWatch),
    bareSentToWatch: summarize(samples.bareSentToWatch),
    update: summarize(samples.update),
    create: summarize(samples.create),
    updateFromSent: summarize(samples.updateFromSent),
    createFromSent: summarize(samples.createFromSent),
    updateCycle: summarize(cycles.update),
    createCycle: summarize(cycles.create),
  };
  const row = (label: string, x: ReturnType<typeof summarize>, vs?: number): string[] => [
    label,
    fixed(x.median),
    fixed(x.p90),
    fixed(x.min),
    fixed(x.max),
    vs === undefined ? '' : `${fixed(x.median / vs, 2)}x`,
  ];
  printTable(
    `Latency in ms, ${opts.samples} samples each (accepted = the create/patch request returned)`,
    ['figure', 'median', 'p90', 'min', 'max', 'vs bare patch'],
    [
      row('baseline: bare patch, sent -> returned (round trip)', s.bareRtt, s.bareRtt.median),
      row('baseline: bare patch, accepted -> plain watch event', s.bareWatch),
      row('baseline: bare patch, sent -> plain watch event', s.bareSentToWatch, s.bareRtt.median),
      row('update: accepted -> handler starts (target < 20)', s.update),
      row('update: sent -> handler starts', s.updateFromSent, s.bareRtt.median),
      row('create: accepted -> handler starts (after finalizer write)', s.create),
      row('create: sent -> handler starts', s.createFromSent, s.bareRtt.median),
      row('update: accepted -> cycle written, seen by a watch', s.updateCycle, s.bareRtt.median),
      row('create: accepted -> cycle written, seen by a watch', s.createCycle, s.bareRtt.median),
    ],
  );
  writeResults(
    'latency',
    [
      figure('update: accepted -> handler starts, median', s.update.median, 'ms', {
        target: { op: '<', value: 20 },
        baseline: { name: 'bare patch round trip', value: s.bareRtt.median },
      }),
      figure('update: accepted -> handler starts, p90', s.update.p90, 'ms'),
      figure('create: accepted -> handler starts, median', s.create.median, 'ms', {
        target: { op: '<', value: 20 },
        baseline: { name: 'bare patch round trip', value: s.bareRtt.median },
      }),
      figure('create: accepted -> handler starts, p90', s.create.p90, 'ms'),
    ],
    { options: opts, summaries: s, samples, cycles },
  );
}

await main();
