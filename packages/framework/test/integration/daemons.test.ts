/**
 * `@Daemon` against a real API server: started when the object is seen (also while its create handler retries), a
 * live `ctx.body`, restarts with backoff after failures, no restart after returning, never two at once for one object
 * (also when one ignores its signal), stopped and re-spawned by its filters, the finalizer released only after the
 * daemon returned (or its cancellation timeout passed), and every daemon stopped at shutdown.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  Daemon,
  OnCreate,
  OnDelete,
  OnUpdate,
  Operator,
  PermanentError,
  TemporaryError,
  type DaemonContext,
  type HandlerContext,
  type KubeObject,
  type ResourceRef,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import { Gate, GROUP, sleep, startCluster, type TestCluster } from './helpers.js';

interface SubjectSpec {
  mode?: 'loop' | 'once' | 'flaky' | 'stubborn' | 'fatal';
  failCreate?: boolean;
  value?: string;
}

const starts: Array<{ name: string; retry: number }> = [];
const log: string[] = [];
const active = new Map<string, number>();
let mostAtOnce = 0;
const seen = new Map<string, string | undefined>();
const updates: string[] = [];
const gates = new Map<string, Gate>();
const gate = (name: string): Gate => gates.get(name) ?? (gates.set(name, new Gate()), gates.get(name) as Gate);
const startsOf = (name: string) => starts.filter((start) => start.name === name);

@Operator({ group: GROUP, version: 'v1', plural: 'subjects', kind: 'Subject' })
class SubjectOperator {
  @OnCreate()
  create(ctx: HandlerContext<SubjectSpec>): void {
    if (ctx.spec.failCreate) throw new TemporaryError('not now', { delayMs: 300 });
  }

  @OnUpdate()
  update(ctx: HandlerContext<SubjectSpec>): void {
    updates.push(ctx.name);
  }

  @OnDelete()
  remove(ctx: HandlerContext<SubjectSpec>): void {
    log.push(`${ctx.name}:delete-handler`);
  }

  @Daemon({ labels: { run: 'yes' }, cancellationTimeoutMs: 500, backoff: { initialMs: 50, maxMs: 100 } })
  async follow(ctx: DaemonContext<SubjectSpec>): Promise<void> {
    const { name } = ctx;
    const now = (active.get(name) ?? 0) + 1;
    active.set(name, now);
    mostAtOnce = Math.max(mostAtOnce, now);
    starts.push({ name, retry: ctx.retry });
    try {
      const mode = ctx.spec.mode ?? 'loop';
      if (mode === 'once') return;
      if (mode === 'fatal') throw new PermanentError('cannot ever work');
      if (mode === 'flaky' && ctx.retry < 2) throw new Error('flaky start');
      if (mode === 'stubborn') {
        // Ignores its signal until the test opens the gate.
        await gate(name).wait();
        log.push(`${name}:returned`);
        return;
      }
      while (await ctx.sleep(30)) seen.set(name, ctx.spec.value);
      log.push(`${name}:signalled`);
      // Returning takes a moment: whoever waits for the daemon must wait for this too.
      await sleep(200);
      log.push(`${name}:returned`);
    } finally {
      active.set(name, (active.get(name) ?? 1) - 1);
    }
  }
}

let cluster: TestCluster;
let ref: ResourceRef;
let operator: OperatorHandle | undefined;

const subject = (name: string, spec: SubjectSpec, labels: Record<string, string> = { run: 'yes' }): KubeObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Subject',
  metadata: { name, labels } as KubeObject['metadata'],
  spec,
});
const exists = async (name: string): Promise<boolean> =>
  (await cluster.api.list(ref)).items.some((item) => item.metadata.name === name);
const patch = (name: string, body: unknown) => cluster.api.patch(ref, name, body, { type: 'merge' });

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('subjects', 'Subject');
  operator = await startOperator({
    classes: [SubjectOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    backoff: { initialMs: 100, maxMs: 400 },
  });
});
afterAll(async () => {
  for (const opened of gates.values()) opened.open();
  await operator?.stop();
  await cluster?.stop();
});

describe('daemons', () => {
  test('start when the object is seen, while its create handler is still retrying; ctx.body is live', async () => {
    await cluster.api.create(ref, subject('live', { failCreate: true, value: 'a' }));
    await waitFor(() => startsOf('live').length === 1);
    const status = await waitFor(async () => {
      const object = await cluster.api.get<KubeObject & { status?: { handlers?: { create?: { outcome: string } } } }>(
        ref,
        'live',
      );
      return object.status?.handlers?.create;
    });
    expect(status.outcome).toBe('retrying');
    await waitFor(() => seen.get('live') === 'a');
    await patch('live', { spec: { value: 'b' } });
    await waitFor(() => seen.get('live') === 'b');
  });

  test('deletion aborts the signal; the finalizer goes only after the daemon returned', async () => {
    expect((await cluster.api.get(ref, 'live')).metadata.finalizers).toEqual(['opkit.dev/finalizer']);
    await cluster.api.delete(ref, 'live');
    await waitFor(async () => !(await exists('live')));
    expect(log).toContain('live:signalled');
    expect(log).toContain('live:returned');
    expect(log).toContain('live:delete-handler');
    expect(active.get('live')).toBe(0);
  });

  test('a daemon that throws is restarted with backoff, one at a time', async () => {
    await cluster.api.create(ref, subject('flaky', { mode: 'flaky' }));
    await waitFor(() => startsOf('flaky').length === 3);
    expect(startsOf('flaky').map((start) => start.retry)).toEqual([0, 1, 2]);
    await waitFor(() => seen.has('flaky'));
    expect(active.get('flaky')).toBe(1);
  });

  test('a daemon that returns is not restarted for its object', async () => {
    await cluster.api.create(ref, subject('once', { mode: 'once', value: '1' }));
    await waitFor(() => startsOf('once').length === 1);
    // A later cycle of the object (its update handler ran) considered the daemon again, and did not start it.
    await patch('once', { spec: { value: '2' } });
    await waitFor(() => updates.includes('once'));
    expect(startsOf('once')).toHaveLength(1);
  });

  test('a daemon that fails with PermanentError is not restarted either', async () => {
    await cluster.api.create(ref, subject('fatal', { mode: 'fatal', value: '1' }));
    await waitFor(() => startsOf('fatal').length === 1);
    await patch('fatal', { spec: { value: '2' } });
    await waitFor(() => updates.includes('fatal'));
    expect(startsOf('fatal')).toHaveLength(1);
  });

  test('filters stop and re-spawn it; never two at once, even when one ignores its signal', async () => {
    await cluster.api.create(ref, subject('stubborn', { mode: 'stubborn' }));
    await waitFor(() => startsOf('stubborn').length === 1);
    // No longer matching (label gone): the signal is aborted, but this daemon does not return yet.
    await patch('stubborn', { metadata: { labels: { run: null } } });
    await waitFor(() => updates.filter((name) => name === 'stubborn').length === 1);
    // Matching again while the first still runs: a cycle ran (the update handler) and started no second one.
    await patch('stubborn', { metadata: { labels: { run: 'yes' } } });
    await waitFor(() => updates.filter((name) => name === 'stubborn').length === 2);
    expect(startsOf('stubborn')).toHaveLength(1);
    // Once it returns, it is started again, the object matching.
    gate('stubborn').open();
    await waitFor(() => startsOf('stubborn').length === 2);
    expect(mostAtOnce).toBe(1);
  });

  test('a daemon that does not return within its cancellation timeout is abandoned: the finalizer goes', async () => {
    await cluster.api.create(ref, subject('abandoned', { mode: 'stubborn' }));
    await waitFor(() => startsOf('abandoned').length === 1);
    // The daemon starts before the finalizer is added (it does not wait for the change handlers): wait for it.
    await waitFor(async () => (await cluster.api.get(ref, 'abandoned')).metadata.finalizers?.length === 1);
    await cluster.api.delete(ref, 'abandoned');
    await waitFor(async () => !(await exists('abandoned')), { timeoutMs: 30_000 });
    expect(active.get('abandoned')).toBe(1);
    expect(log).toContain('abandoned:delete-handler');
    gate('abandoned').open();
    await waitFor(() => active.get('abandoned') === 0);
  });

  test('shutdown aborts every daemon and waits until it returned', async () => {
    await cluster.api.create(ref, subject('last', { value: 'x' }));
    await waitFor(() => seen.get('last') === 'x');
    await operator?.stop();
    operator = undefined;
    expect(log).toContain('last:returned');
    expect(log).toContain('flaky:returned');
    expect([...active.values()].every((count) => count === 0)).toBe(true);
  });
});
