/**
 * Timer retries against a real API server: a failed `@OnTimer` run is retried like a change handler's.
 * - `TemporaryError(delay)`: retried (ctx.retry 1, 2) until it succeeds, then the timer resumes its interval
 *   (ctx.retry 0 again); one log line per failed attempt, without a stack trace; one deduplicated `HandlerRetrying`
 *   Warning;
 * - `PermanentError`: not retried; a `HandlerFailed` Warning, and the next regular tick still comes;
 * - `retries` used up: a `HandlerFailed` Warning, and the next regular tick still comes.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  OnTimer,
  Operator,
  PermanentError,
  TemporaryError,
  type HandlerContext,
  type KubeObject,
  type ResourceRef,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import { EVENTS } from './kube-fixtures.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

/** Per object: `ctx.retry` of every run, in order. */
const runs = new Map<string, number[]>();
const succeeded = new Set<string>();

function record(ctx: HandlerContext): void {
  runs.set(ctx.name, [...(runs.get(ctx.name) ?? []), ctx.retry]);
}

/** Long enough that a retry (50 ms) is never confused with a tick, short enough to wait for the next one. */
const INTERVAL_MS = 1_500;

@Operator({ group: GROUP, version: 'v1', plural: 'tickers', kind: 'Ticker' })
class TickerOperator {
  /** Fails twice on the first tick of each object, then succeeds (and every tick after). */
  @OnTimer(INTERVAL_MS, { initialDelayMs: 0, labels: { case: 'temporary' } })
  flaky(ctx: HandlerContext): void {
    record(ctx);
    if (!succeeded.has(ctx.name) && ctx.retry < 2) throw new TemporaryError('not ready yet', { delayMs: 50 });
    succeeded.add(ctx.name);
  }

  @OnTimer(INTERVAL_MS, { initialDelayMs: 0, labels: { case: 'permanent' } })
  refused(ctx: HandlerContext): void {
    record(ctx);
    throw new PermanentError('refused for good');
  }

  @OnTimer(INTERVAL_MS, {
    initialDelayMs: 0,
    retries: 2,
    backoff: { initialMs: 50, maxMs: 50 },
    labels: { case: 'exhausted' },
  })
  broken(ctx: HandlerContext): void {
    record(ctx);
    throw new Error('always broken');
  }
}

interface LogLine {
  msg: string;
  handler?: string;
  retry?: number;
  error?: unknown;
  err?: unknown;
}
const lines: LogLine[] = [];

interface KubeEvent extends KubeObject {
  type: string;
  reason: string;
  message: string;
  count?: number;
}

let cluster: TestCluster;
let ref: ResourceRef;
let operator: OperatorHandle;

const eventsOf = async (name: string): Promise<KubeEvent[]> =>
  (await cluster.api.list<KubeEvent>(EVENTS, { namespace: 'default', fieldSelector: `involvedObject.name=${name}` }))
    .items;

/** The `ctx.retry` of the object's first `count` runs, once it had them. */
const firstRuns = async (name: string, count: number): Promise<number[]> =>
  (await waitFor(() => (runs.get(name)?.length ?? 0) >= count && runs.get(name))).slice(0, count);

/** The object's Events once one with `reason` was posted (at least `count` times), and that one. */
async function eventsOnce(name: string, reason: string, count = 1): Promise<{ event: KubeEvent; all: KubeEvent[] }> {
  return waitFor(async () => {
    const all = await eventsOf(name);
    const event = all.find((candidate) => candidate.reason === reason);
    return event && (event.count ?? 1) >= count && { event, all };
  });
}

const create = (name: string, kase: string) =>
  cluster.api.create(ref, testObject('Ticker', name, {}, { labels: { case: kase } }));

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('tickers', 'Ticker');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  operator = await startOperator({
    classes: [TickerOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    logger: pino({ level: 'info' }, sink),
  });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('timer retries', () => {
  test('TemporaryError: retried after its delay until it succeeds, then the interval resumes', async () => {
    await create('temp-1', 'temporary');
    // Two failed attempts, the retry that succeeds, then the next regular tick: a new series.
    expect(await firstRuns('temp-1', 4)).toEqual([0, 1, 2, 0]);

    const failed = lines.filter((line) => line.msg === 'handler failed' && line.handler === 'flaky');
    expect(failed.map((line) => line.retry)).toEqual([0, 1]);
    // One line per failed attempt, with the message and no stack trace.
    for (const line of failed) {
      expect(line.error).toBe('not ready yet');
      expect(line.err).toBeUndefined();
    }
    expect(lines.filter((line) => line.msg === 'timer failed')).toEqual([]);

    // Both failures in one Event (the message carries no count), and no final failure.
    const { event, all } = await eventsOnce('temp-1', 'HandlerRetrying', 2);
    expect(event).toMatchObject({
      type: 'Warning',
      message: "Handler 'flaky' failed (timer), will retry: not ready yet",
    });
    expect(all.filter((candidate) => candidate.reason === 'HandlerRetrying')).toHaveLength(1);
    expect(all.map((candidate) => candidate.reason)).not.toContain('HandlerFailed');
  });

  test('PermanentError: not retried; the failure is a Warning; the next regular tick still runs', async () => {
    await create('perm-1', 'permanent');
    // A retry would have run with ctx.retry 1 (after 1 s of default backoff, before the next tick).
    expect(await firstRuns('perm-1', 2)).toEqual([0, 0]);
    const { event, all } = await eventsOnce('perm-1', 'HandlerFailed');
    expect(event).toMatchObject({
      type: 'Warning',
      message: "Handler 'refused' failed permanently (timer) after 1 attempt(s): refused for good",
    });
    expect(all.map((candidate) => candidate.reason)).not.toContain('HandlerRetrying');
  });

  test('retries used up: the failure is final, and the next regular tick still runs', async () => {
    await create('exhausted-1', 'exhausted');
    // `retries: 2`: two attempts per tick, then the next tick starts a new series.
    expect(await firstRuns('exhausted-1', 4)).toEqual([0, 1, 0, 1]);
    const { event } = await eventsOnce('exhausted-1', 'HandlerFailed');
    expect(event).toMatchObject({
      type: 'Warning',
      message: "Handler 'broken' failed permanently (timer) after 2 attempt(s): always broken",
    });
  });
});
