/**
 * Errors and retries (TemporaryError delay, PermanentError, `retries` limit, `timeout`), their outcomes in status
 * and as deduplicated Events; timers; startup and cleanup activities.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  OnCleanup,
  OnCreate,
  OnStartup,
  OnTimer,
  OnUpdate,
  Operator,
  PermanentError,
  TemporaryError,
  type ActivityContext,
  type HandlerContext,
  type KubeObject,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { ResourceRef } from '../../src/kube/types.js';
import { GROUP, sleep, specPatch, startCluster, testObject, type TestCluster } from './helpers.js';

const attempts = new Map<string, number[]>();
const ticks = new Map<string, number>();
let overlap = false;
const busy = new Set<string>();
let startupAttempts = 0;
let cleanups = 0;

function attempt(key: string, retry: number): void {
  attempts.set(key, [...(attempts.get(key) ?? []), retry]);
}

async function exclusive<T>(name: string, work: () => Promise<T> | T): Promise<T> {
  if (busy.has(name)) overlap = true;
  busy.add(name);
  try {
    return await work();
  } finally {
    busy.delete(name);
  }
}

@Operator({ group: GROUP, version: 'v1', plural: 'flakies', kind: 'Flaky' })
class FlakyOperator {
  @OnStartup()
  start(ctx: ActivityContext) {
    startupAttempts += 1;
    if (ctx.retry === 0) throw new TemporaryError('warming up', { delayMs: 50 });
  }

  @OnCreate({ id: 'flaky' })
  flaky(ctx: HandlerContext) {
    attempt(`flaky/${ctx.name}`, ctx.retry);
    if (ctx.name.startsWith('temp') && ctx.retry < 3) throw new TemporaryError('backend not ready', { delayMs: 100 });
    if (ctx.name.startsWith('perm')) throw new PermanentError('spec is invalid');
  }

  @OnCreate({ id: 'limited', retries: 2, backoff: { initialMs: 50, maxMs: 100 } })
  limited(ctx: HandlerContext) {
    attempt(`limited/${ctx.name}`, ctx.retry);
    if (ctx.name.startsWith('limited')) throw new Error('always broken');
  }

  @OnCreate({ id: 'bounded', timeout: 200, retries: 2, backoff: { initialMs: 50, maxMs: 100 } })
  async bounded(ctx: HandlerContext) {
    attempt(`bounded/${ctx.name}`, ctx.retry);
    if (!ctx.name.startsWith('timeout')) return;
    await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
  }

  @OnUpdate()
  async updated(ctx: HandlerContext) {
    await exclusive(ctx.name, () => sleep(150));
  }

  @OnTimer(100, { initialDelayMs: 50 })
  async tick(ctx: HandlerContext) {
    if (!ctx.name.startsWith('ticker')) return;
    await exclusive(ctx.name, () => sleep(20));
    ticks.set(ctx.name, (ticks.get(ctx.name) ?? 0) + 1);
  }

  @OnCleanup()
  cleanup() {
    cleanups += 1;
  }
}

/** The same kind of work without success Events: its handlers report their outcomes elsewhere. */
@Operator({ group: GROUP, version: 'v1', plural: 'quiets', kind: 'Quiet', successEvents: false })
class QuietOperator {
  @OnCreate()
  created() {}

  @OnUpdate()
  updated() {
    throw new PermanentError('refused');
  }
}

let cluster: TestCluster;
let ref: ResourceRef;
let quietRef: ResourceRef;
let operator: OperatorHandle;

interface Outcome {
  outcome: string;
  retries: number;
  message?: string;
}
const outcomeOf = async (name: string, handler: string): Promise<Outcome | undefined> => {
  const object = await cluster.api.get<KubeObject>(ref, name);
  return (object.status as { handlers?: Record<string, Outcome> } | undefined)?.handlers?.[handler];
};
const eventsOf = async (name: string) => {
  const list = await cluster.api.list<KubeObject & { type: string; reason: string; count?: number; message: string }>(
    { group: '', version: 'v1', plural: 'events', namespaced: true },
    { namespace: 'default', fieldSelector: `involvedObject.name=${name}` },
  );
  return list.items;
};

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('flakies', 'Flaky');
  quietRef = await cluster.installCrd('quiets', 'Quiet');
  operator = await startOperator({ classes: [FlakyOperator, QuietOperator], kubeconfigPath: cluster.kubeconfigPath });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('startup', () => {
  test('a failing startup handler is retried and readiness waits for it', () => {
    expect(startupAttempts).toBe(2);
    expect(operator.isReady()).toBe(true);
  });
});

describe('retries', () => {
  test('TemporaryError retries after its delay, counting retries; later handlers wait for it', async () => {
    await cluster.api.create(ref, testObject('Flaky', 'temp-1', {}));
    await waitFor(async () => (await outcomeOf('temp-1', 'flaky'))?.outcome === 'success');
    expect(attempts.get('flaky/temp-1')).toEqual([0, 1, 2, 3]);
    expect(await outcomeOf('temp-1', 'flaky')).toMatchObject({ outcome: 'success', retries: 3 });
    // Handlers of one cause run in order: 'limited' ran only after 'flaky' succeeded.
    expect(attempts.get('limited/temp-1')).toEqual([0]);
  });

  test('retries and successes are Events, repeats deduplicated into one Event with a count', async () => {
    const events = await waitFor(async () => {
      const found = await eventsOf('temp-1');
      const retrying = found.find((e) => e.reason === 'HandlerRetrying');
      return retrying && (retrying.count ?? 1) >= 2 && found.some((e) => e.reason === 'HandlerSucceeded') && found;
    });
    const retrying = events.filter((e) => e.reason === 'HandlerRetrying');
    expect(retrying).toHaveLength(1);
    expect(retrying[0]).toMatchObject({ type: 'Warning' });
    expect(retrying[0]?.message).toContain("Handler 'flaky' failed (create), will retry: backend not ready");
    expect(events.find((e) => e.reason === 'HandlerSucceeded')).toMatchObject({ type: 'Normal' });
  });

  test('`successEvents: false` leaves out HandlerSucceeded, never the failures', async () => {
    await cluster.api.create(quietRef, testObject('Quiet', 'quiet-1', { v: 0 }));
    await waitFor(
      async () =>
        (await cluster.api.get<KubeObject>(quietRef, 'quiet-1')).metadata.annotations?.[
          'opkit.dev/last-handled-configuration'
        ],
    );
    await cluster.api.patch(quietRef, 'quiet-1', specPatch({ v: 1 }), { type: 'merge' });
    // Events are posted in order: once the update's failure is there, the create's success would be too.
    const events = await waitFor(async () => {
      const found = await eventsOf('quiet-1');
      return found.some((e) => e.reason === 'HandlerFailed') && found;
    });
    expect(events.map((e) => e.reason)).not.toContain('HandlerSucceeded');
  });

  test('PermanentError stops retrying; the failure is in status and a Warning Event', async () => {
    await cluster.api.create(ref, testObject('Flaky', 'perm-1', {}));
    await waitFor(async () => (await outcomeOf('perm-1', 'flaky'))?.outcome === 'failed');
    expect(await outcomeOf('perm-1', 'flaky')).toMatchObject({
      outcome: 'failed',
      retries: 1,
      message: 'spec is invalid',
    });
    // The remaining handlers of the cause still run; the diff-base is stored so the failure does not loop. (Their
    // plain successes are not written to status: nothing to say.)
    await waitFor(
      async () =>
        (await cluster.api.get<KubeObject>(ref, 'perm-1')).metadata.annotations?.[
          'opkit.dev/last-handled-configuration'
        ],
    );
    expect(attempts.get('bounded/perm-1')).toEqual([0]);
    expect(await outcomeOf('perm-1', 'bounded')).toBeUndefined();
    expect(attempts.get('flaky/perm-1')).toEqual([0]);
    await waitFor(async () =>
      (await eventsOf('perm-1')).some((e) => e.reason === 'HandlerFailed' && e.type === 'Warning'),
    );
  });

  test('`retries` bounds the attempts, then the failure is permanent', async () => {
    await cluster.api.create(ref, testObject('Flaky', 'limited-1', {}));
    await waitFor(async () => (await outcomeOf('limited-1', 'limited'))?.outcome === 'failed');
    expect(attempts.get('limited/limited-1')).toEqual([0, 1]);
    expect(await outcomeOf('limited-1', 'limited')).toMatchObject({ retries: 2, message: 'always broken' });
  });

  test('`timeout` aborts the attempt through ctx.signal and counts it as a failed attempt', async () => {
    await cluster.api.create(ref, testObject('Flaky', 'timeout-1', {}));
    await waitFor(async () => (await outcomeOf('timeout-1', 'bounded'))?.outcome === 'failed');
    expect(attempts.get('bounded/timeout-1')).toEqual([0, 1]);
    expect((await outcomeOf('timeout-1', 'bounded'))?.message).toContain('timed out after 200 ms');
  });
});

describe('timers', () => {
  test('timers tick per object, never overlap its handlers, and stop when it is deleted', async () => {
    await cluster.api.create(ref, testObject('Flaky', 'ticker-1', { v: 0 }));
    await waitFor(() => (ticks.get('ticker-1') ?? 0) >= 3);
    for (let v = 1; v <= 3; v++) await cluster.api.patch(ref, 'ticker-1', { spec: { v } }, { type: 'merge' });
    const before = ticks.get('ticker-1') ?? 0;
    await waitFor(() => (ticks.get('ticker-1') ?? 0) >= before + 3);
    expect(overlap).toBe(false);
    await cluster.api.delete(ref, 'ticker-1');
    await waitFor(async () => (await cluster.api.get(ref, 'ticker-1').catch(() => 'gone')) === 'gone');
    const final = ticks.get('ticker-1');
    await sleep(500);
    expect(ticks.get('ticker-1')).toBe(final);
  });
});

describe('cleanup', () => {
  test('cleanup handlers run on stop', async () => {
    await operator.stop();
    expect(cleanups).toBe(1);
  });
});
