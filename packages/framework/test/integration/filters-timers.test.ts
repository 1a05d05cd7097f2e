/**
 * Per-handler filters, field handlers on create, and timers, against a real API server:
 * - `labels` (value, `PRESENT`), `annotations` (`ABSENT`) and `when` on change handlers and timers: a handler never
 *   runs for an object that does not match, and runs once it does;
 * - `@OnField` on create runs in declaration order with the create handlers (after `@OnCreate` when declared below
 *   it, and only once it finished), and not at all with `onCreate: false`;
 * - timers run while the create handler is retrying and after it failed for good (as Kopf's do);
 * - `idleMs` timers run only once the object was quiet that long.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ABSENT,
  OnCreate,
  OnField,
  OnTimer,
  OnUpdate,
  Operator,
  PermanentError,
  PRESENT,
  TemporaryError,
  type HandlerContext,
  type KubeObject,
  type ResourceRef,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import { GROUP, sleep, startCluster, type TestCluster } from './helpers.js';

interface GadgetSpec {
  size?: number;
  color?: string;
  failOnce?: boolean;
}

interface Call {
  handler: string;
  name: string;
  cause: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  size: number | undefined;
}

const calls: Call[] = [];
const failedOnce = new Set<string>();

function record(handler: string, ctx: HandlerContext<GadgetSpec, unknown, unknown>): void {
  calls.push({
    handler,
    name: ctx.name,
    cause: ctx.cause,
    labels: { ...ctx.body.metadata.labels },
    annotations: { ...ctx.body.metadata.annotations },
    size: ctx.spec.size,
  });
}
const callsOf = (name: string, handler?: string): Call[] =>
  calls.filter((call) => call.name === name && (handler === undefined || call.handler === handler));

@Operator({ group: GROUP, version: 'v1', plural: 'gadgets', kind: 'Gadget' })
class GadgetOperator {
  /** Declared above the create handlers: on create it runs before them. */
  @OnField('spec.color')
  colorFirst(ctx: HandlerContext<GadgetSpec, unknown, string>): void {
    record('colorFirst', ctx);
  }

  @OnCreate({ labels: { tier: 'gold' } })
  gold(ctx: HandlerContext<GadgetSpec>): void {
    if (ctx.spec.failOnce && !failedOnce.has(ctx.name)) {
      failedOnce.add(ctx.name);
      record('gold!', ctx);
      throw new TemporaryError('once', { delayMs: 100 });
    }
    record('gold', ctx);
  }

  @OnCreate({ annotations: { 'example.com/skip': ABSENT } })
  notSkipped(ctx: HandlerContext<GadgetSpec>): void {
    record('notSkipped', ctx);
  }

  @OnCreate({ when: (object) => ((object.spec as GadgetSpec | undefined)?.size ?? 0) > 2 })
  big(ctx: HandlerContext<GadgetSpec>): void {
    record('big', ctx);
  }

  /** Declared below the create handlers: on create it runs after them. */
  @OnField('spec.size')
  sizeAfterCreate(ctx: HandlerContext<GadgetSpec, unknown, number>): void {
    record('sizeAfterCreate', ctx);
  }

  @OnField('spec.size', { id: 'sizeOnUpdateOnly', onCreate: false })
  sizeOnUpdateOnly(ctx: HandlerContext<GadgetSpec, unknown, number>): void {
    record('sizeOnUpdateOnly', ctx);
  }

  @OnUpdate({ labels: { tier: PRESENT } })
  tiered(ctx: HandlerContext<GadgetSpec>): void {
    record('tiered', ctx);
  }

  @OnTimer(100, { labels: { ticking: 'yes' } })
  tick(ctx: HandlerContext<GadgetSpec>): void {
    record('tick', ctx);
  }
}

interface ClockSpec {
  fail?: 'temporary' | 'permanent';
  value?: number;
}

const ticks = new Map<string, number>();
const idleRuns: Array<{ name: string; value: number | undefined; at: number }> = [];

@Operator({ group: GROUP, version: 'v1', plural: 'clocks', kind: 'Clock' })
class ClockOperator {
  @OnCreate()
  create(ctx: HandlerContext<ClockSpec>): void {
    if (ctx.spec.fail === 'temporary') throw new TemporaryError('not yet', { delayMs: 60_000 });
    if (ctx.spec.fail === 'permanent') throw new PermanentError('never');
  }

  @OnTimer(100)
  tick(ctx: HandlerContext<ClockSpec>): void {
    ticks.set(ctx.name, (ticks.get(ctx.name) ?? 0) + 1);
  }

  @OnTimer(100, { idleMs: 700 })
  quiet(ctx: HandlerContext<ClockSpec>): void {
    idleRuns.push({ name: ctx.name, value: ctx.spec.value, at: Date.now() });
  }
}

let cluster: TestCluster;
let gadgets: ResourceRef;
let clocks: ResourceRef;
let operator: OperatorHandle | undefined;

const gadget = (name: string, spec: GadgetSpec, metadata: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Gadget',
  metadata: { name, ...metadata } as KubeObject['metadata'],
  spec,
});
const clock = (name: string, spec: ClockSpec): KubeObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Clock',
  metadata: { name } as KubeObject['metadata'],
  spec,
});
const handlerOutcome = async (name: string): Promise<string | undefined> => {
  const object = await cluster.api.get<KubeObject & { status?: { handlers?: { create?: { outcome: string } } } }>(
    clocks,
    name,
  );
  return object.status?.handlers?.create?.outcome;
};

beforeAll(async () => {
  cluster = await startCluster();
  gadgets = await cluster.installCrd('gadgets', 'Gadget');
  clocks = await cluster.installCrd('clocks', 'Clock');
  operator = await startOperator({
    classes: [GadgetOperator, ClockOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    backoff: { initialMs: 100, maxMs: 400 },
  });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('filters and field handlers on create', () => {
  test('create: matching handlers run in declaration order, field handlers included, after a retry too', async () => {
    await cluster.api.create(
      gadgets,
      gadget('gold', { size: 3, color: 'red', failOnce: true }, { labels: { tier: 'gold' } }),
    );
    await waitFor(() => callsOf('gold', 'sizeAfterCreate').length === 1);
    expect(callsOf('gold').map((call) => call.handler)).toEqual([
      'colorFirst',
      'gold!',
      'gold',
      'notSkipped',
      'big',
      'sizeAfterCreate',
    ]);
    expect(callsOf('gold', 'sizeAfterCreate')[0]?.cause).toBe('create');
  });

  test('create: handlers whose filters do not match are left out; onCreate: false field handlers too', async () => {
    await cluster.api.create(
      gadgets,
      gadget('plain', { size: 1 }, { labels: { tier: 'silver' }, annotations: { 'example.com/skip': 'yes' } }),
    );
    await waitFor(() => callsOf('plain', 'sizeAfterCreate').length === 1);
    // The create completed (its diff-base is stored) with only the field handler of a field that is set.
    await waitFor(async () => {
      const object = await cluster.api.get(gadgets, 'plain');
      return object.metadata.annotations?.['opkit.dev/last-handled-configuration'] !== undefined;
    });
    expect(callsOf('plain').map((call) => call.handler)).toEqual(['sizeAfterCreate']);
  });

  test('update: onCreate: false field handlers run when the field changes; label filters hold', async () => {
    await cluster.api.patch(gadgets, 'plain', { spec: { size: 2 } }, { type: 'merge' });
    await waitFor(() => callsOf('plain', 'sizeOnUpdateOnly').length === 1);
    expect(callsOf('plain', 'sizeOnUpdateOnly')[0]).toMatchObject({ cause: 'update', size: 2 });
    // tier=silver is present: the update handler with `tier: PRESENT` ran for the same change.
    await waitFor(() => callsOf('plain', 'tiered').length === 1);
    await cluster.api.patch(gadgets, 'plain', { metadata: { labels: { tier: null } } }, { type: 'merge' });
    await cluster.api.patch(gadgets, 'plain', { spec: { size: 5 } }, { type: 'merge' });
    await waitFor(() => callsOf('plain', 'sizeOnUpdateOnly').length === 2);
    expect(callsOf('plain', 'tiered')).toHaveLength(1);
    for (const call of calls.filter((candidate) => candidate.handler === 'tiered')) {
      expect(call.labels.tier).toBeDefined();
    }
  });

  test('timers: a tick runs only while the object matches the filter', async () => {
    await cluster.api.create(gadgets, gadget('ticker', { size: 1 }));
    await cluster.api.create(gadgets, gadget('companion', { size: 1 }, { labels: { ticking: 'yes' } }));
    // Not matching: no tick, while the companion, created after it, ticked several times; then labelled, it ticks.
    await waitFor(() => callsOf('companion', 'tick').length >= 3);
    expect(callsOf('ticker', 'tick')).toEqual([]);
    await cluster.api.patch(gadgets, 'ticker', { metadata: { labels: { ticking: 'yes' } } }, { type: 'merge' });
    await waitFor(() => callsOf('ticker', 'tick').length >= 2);
    await cluster.api.patch(gadgets, 'ticker', { metadata: { labels: { ticking: 'no' } } }, { type: 'merge' });
    const after = await waitFor(async () => {
      const object = await cluster.api.get(gadgets, 'ticker');
      return object.metadata.labels?.ticking === 'no' && callsOf('ticker', 'tick').length;
    });
    // Every tick saw the label (the last one may have raced with the patch, but never without the label).
    for (const call of callsOf('ticker', 'tick')) expect(call.labels.ticking).toBe('yes');
    expect(after).toBeGreaterThanOrEqual(2);
  });
});

describe('timers', () => {
  test('run while the create handler is retrying, and after it failed for good', async () => {
    await cluster.api.create(clocks, clock('retrying', { fail: 'temporary' }));
    await cluster.api.create(clocks, clock('failed', { fail: 'permanent' }));
    await waitFor(async () => (await handlerOutcome('retrying')) === 'retrying');
    await waitFor(async () => (await handlerOutcome('failed')) === 'failed');
    const retrying = ticks.get('retrying') ?? 0;
    const failed = ticks.get('failed') ?? 0;
    await waitFor(() => (ticks.get('retrying') ?? 0) >= retrying + 2 && (ticks.get('failed') ?? 0) >= failed + 2);
    expect(await handlerOutcome('retrying')).toBe('retrying');
  });

  test('idle timers run only once the object has not changed for idleMs', async () => {
    const sentAt = new Map<number, number>([[0, Date.now()]]);
    await cluster.api.create(clocks, clock('busy', { value: 0 }));
    for (let value = 1; value <= 5; value++) {
      await sleep(150);
      sentAt.set(value, Date.now());
      await cluster.api.patch(clocks, 'busy', { spec: { value } }, { type: 'merge' });
    }
    await waitFor(() => idleRuns.some((run) => run.name === 'busy' && run.value === 5));
    // Every run came at least idleMs after the change it saw was sent (the operator observed it later still).
    for (const run of idleRuns.filter((candidate) => candidate.name === 'busy')) {
      expect(run.at - (sentAt.get(run.value as number) as number)).toBeGreaterThanOrEqual(700);
    }
    // And it keeps ticking every interval while the object stays quiet.
    const runs = idleRuns.length;
    await waitFor(() => idleRuns.length >= runs + 2);
  });
});
