/**
 * Leader election against a real API server: replicas of one operator on one Lease, of which exactly one runs its
 * `@OnStartup` handlers and runnables; a graceful stop releases the Lease and the standby takes over at once; a
 * leader whose renewals stop (no release, or its API cut) is replaced once the Lease expired, after it stopped its
 * work; a leader that sees another holder stops at once.
 *
 * What each replica did is recorded, in order, in one timeline (`<replica>:<what>`), so that "the old leader stopped
 * before the new one started" is an ordering check, not a timing one.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  LEASES,
  LeaderElector,
  OnCleanup,
  OnCreate,
  OnStartup,
  Operator,
  runOperators,
  runUntilSignalled,
  type ActivityContext,
  type HandlerContext,
  type Lease,
  type LeaderElectionSettings,
  type OperatorRuntime,
  type ResourceRef,
  type Runnable,
  type RunnableContext,
  type RuntimeSettings,
} from 'opkit';
import { createKubeApi } from '../../src/kube/client.js';
import { createLogger } from '../../src/ops/logging.js';
import { waitFor } from '../../src/testing/index.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';
import { TcpProxy } from './kube-fixtures.js';

const NAMESPACE = 'default';
const timeline: string[] = [];

@Operator({ group: GROUP, version: 'v1', plural: 'elections', kind: 'Election' })
class ElectedOperator {
  @OnStartup()
  started(ctx: ActivityContext): void {
    timeline.push(`${ctx.instanceId}:startup`);
  }

  @OnCleanup()
  cleanedUp(ctx: ActivityContext): void {
    timeline.push(`${ctx.instanceId}:cleanup`);
  }

  /** Runs until its signal aborts, and records why. */
  @OnCreate()
  async busy(ctx: HandlerContext): Promise<void> {
    timeline.push(`${ctx.instanceId}:handler-start`);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    timeline.push(`${ctx.instanceId}:handler-aborted (${(ctx.signal.reason as Error).message})`);
  }
}

/** A runnable that records its life in the timeline, and the signal it was given. */
function recordingRunnable(replica: string): Runnable & { signal?: AbortSignal } {
  const runnable: Runnable & { signal?: AbortSignal } = {
    name: 'recorder',
    start(ctx: RunnableContext) {
      runnable.signal = ctx.signal;
      timeline.push(`${replica}:runnable-start`);
    },
    async stop() {
      timeline.push(`${replica}:runnable-stop${runnable.signal?.aborted ? ' (signal aborted)' : ''}`);
    },
  };
  return runnable;
}

interface Replica {
  runtime: OperatorRuntime;
  runnable: Runnable & { signal?: AbortSignal };
  logs: Array<Record<string, unknown>>;
  identity: string;
}

let cluster: TestCluster;
let electionsRef: ResourceRef;
const running: OperatorRuntime[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

/** Starts one replica with leader election on `lease`; its log lines are kept for the assertions. */
function startReplica(
  replica: string,
  election: Omit<LeaderElectionSettings, 'namespace'>,
  extra: Partial<RuntimeSettings> = {},
): Replica {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as never);
      done();
    },
  });
  const runnable = recordingRunnable(replica);
  const runtime = runOperators([ElectedOperator], {
    kubeconfigPath: cluster.kubeconfigPath,
    instanceId: replica,
    logger: createLogger({ level: 'info', name: replica, destination: sink }),
    leaderElection: { namespace: NAMESPACE, ...election },
    runnables: [runnable],
    probes: { host: '127.0.0.1', port: 0 },
    ...extra,
  });
  running.push(runtime);
  return { runtime, runnable, logs, identity: runtime.settings.leaderElection?.identity ?? '' };
}

/** Resolves once `replica` observed the Lease held by someone else (it stands by). */
const standingBy = (replica: Replica, holder: string) =>
  waitFor(() => replica.logs.some((line) => line.msg === 'leader election: lease holder' && line.holder === holder), {
    message: 'the replica to see the leader',
  });

const getLease = (name: string) => cluster.api.get<Lease>(LEASES, name, NAMESPACE);
const probe = async (runtime: OperatorRuntime, path: string) => {
  const port = await waitFor(() => runtime.probePort);
  return (await fetch(`http://127.0.0.1:${port}${path}`)).status;
};
const leaderGauge = async (runtime: OperatorRuntime) =>
  (await runtime.metrics.leader.get()).values.map((value) => value.value);

beforeAll(async () => {
  cluster = await startCluster();
  electionsRef = await cluster.installCrd('elections', 'Election');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
  for (const cleanup of cleanups.splice(0)) await cleanup();
  timeline.length = 0;
});
afterAll(async () => {
  await cluster?.stop();
});

describe('leader election', () => {
  test('two replicas on one Lease: exactly one runs; a graceful stop hands over at once', async () => {
    // A lease of 60 s: the standby can take over within the test's waits only because the leader releases it.
    const election = { name: 'handover', leaseDurationSeconds: 60, renewDeadlineSeconds: 5, retryPeriodSeconds: 0.5 };
    const a = startReplica('replica-a', election);
    await a.runtime.ready;
    expect(a.identity).toMatch(/^replica-a_[0-9a-f]{10}$/);
    const b = startReplica('replica-b', election);
    await standingBy(b, a.identity);

    expect(timeline).toEqual(['replica-a:startup', 'replica-a:runnable-start']);
    expect((await getLease('handover')).spec).toMatchObject({ holderIdentity: a.identity, leaseDurationSeconds: 60 });
    // The standby is alive but not ready; the leader is both.
    expect([b.runtime.isReady(), b.runtime.isHealthy()]).toEqual([false, true]);
    expect([await probe(b.runtime, '/readyz'), await probe(b.runtime, '/healthz')]).toEqual([503, 200]);
    expect([await probe(a.runtime, '/readyz'), await probe(a.runtime, '/healthz')]).toEqual([200, 200]);
    expect(await leaderGauge(a.runtime)).toEqual([1]);
    expect(await leaderGauge(b.runtime)).toEqual([0]);
    const transitionsBefore = (await getLease('handover')).spec?.leaseTransitions ?? 0;

    await a.runtime.stop();
    expect(await a.runtime.done).toBe('stop-requested');
    expect(await leaderGauge(a.runtime)).toEqual([0]);
    await waitFor(() => b.runtime.isReady(), { timeoutMs: 30_000, message: 'the standby to take over' });

    expect(timeline).toEqual([
      'replica-a:startup',
      'replica-a:runnable-start',
      'replica-a:runnable-stop (signal aborted)',
      'replica-a:cleanup',
      'replica-b:startup',
      'replica-b:runnable-start',
    ]);
    expect(a.logs.some((line) => line.msg === 'leader election: lease released')).toBe(true);
    const lease = await getLease('handover');
    expect(lease.spec?.holderIdentity).toBe(b.identity);
    expect(lease.spec?.leaseTransitions).toBe(transitionsBefore + 1);
    expect(await leaderGauge(b.runtime)).toEqual([1]);
  });

  test('a standby stopped before it leads runs nothing and leaves the Lease alone', async () => {
    const election = {
      name: 'standby-stop',
      leaseDurationSeconds: 60,
      renewDeadlineSeconds: 5,
      retryPeriodSeconds: 0.5,
    };
    const a = startReplica('replica-a', election);
    await a.runtime.ready;
    const b = startReplica('replica-b', election);
    await standingBy(b, a.identity);

    await b.runtime.stop();
    expect(await b.runtime.done).toBe('stop-requested');
    await expect(b.runtime.ready).rejects.toThrow();
    expect(timeline).toEqual(['replica-a:startup', 'replica-a:runnable-start']);
    expect((await getLease('standby-stop')).spec?.holderIdentity).toBe(a.identity);
    expect(a.runtime.isReady()).toBe(true);
  });

  test('a leader whose API is cut stops its work and exits non-zero; the standby takes over after expiry', async () => {
    const proxy = await TcpProxy.start(cluster.cp.server);
    cleanups.push(() => proxy.stop());
    const election = { name: 'cut', leaseDurationSeconds: 4, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 };
    const a = startReplica('replica-a', election, {
      credentials: { server: proxy.url, ca: cluster.cp.caPem, token: cluster.cp.adminToken },
    });
    const exitCode = runUntilSignalled(a.runtime);
    await a.runtime.ready;
    const b = startReplica('replica-b', election);
    await standingBy(b, a.identity);

    proxy.refuse(true);
    proxy.cutAll();

    expect(await a.runtime.done).toBe('leadership-lost');
    expect(await exitCode).toBe(1);
    expect(a.logs.some((line) => line.msg === 'leader election: lost')).toBe(true);
    await waitFor(() => b.runtime.isReady(), { timeoutMs: 60_000, message: 'the standby to take over' });
    expect(timeline).toEqual([
      'replica-a:startup',
      'replica-a:runnable-start',
      'replica-a:runnable-stop (signal aborted)',
      'replica-a:cleanup',
      'replica-b:startup',
      'replica-b:runnable-start',
    ]);
    expect((await getLease('cut')).spec?.holderIdentity).toBe(b.identity);
  });

  test('a leader that sees another holder in the Lease stops at once, running handlers aborted', async () => {
    const election = { name: 'intruded', leaseDurationSeconds: 60, renewDeadlineSeconds: 5, retryPeriodSeconds: 0.5 };
    // A grace period longer than the test: the handler ends only because losing the Lease aborts it.
    const a = startReplica('replica-a', election, { gracePeriodMs: 3_600_000 });
    await a.runtime.ready;
    await cluster.api.create(electionsRef, testObject('Election', 'busy', {}));
    await waitFor(() => timeline.includes('replica-a:handler-start'));

    // Someone else writes itself in (with its own resourceVersion): the leader's next renewal conflicts, it reads the
    // Lease again and finds another holder, well before its renew deadline.
    await cluster.api.patch(LEASES, 'intruded', { spec: { holderIdentity: 'intruder' } }, { namespace: NAMESPACE });

    expect(await a.runtime.done).toBe('leadership-lost');
    expect(timeline).toEqual([
      'replica-a:startup',
      'replica-a:runnable-start',
      'replica-a:handler-start',
      'replica-a:handler-aborted (leadership lost)',
      'replica-a:runnable-stop (signal aborted)',
      'replica-a:cleanup',
    ]);
    expect(a.logs.find((line) => line.msg === 'leader election: lost')?.reason).toBe(
      'the lease is held by intruder now',
    );
    // Not ours to release.
    expect((await getLease('intruded')).spec?.holderIdentity).toBe('intruder');
    await cluster.api.delete(electionsRef, 'busy');
  });
});

describe('LeaderElector', () => {
  test('without a release, a candidate takes over only once the Lease expired', async () => {
    const api = createKubeApi({
      credentials: { server: cluster.cp.server, ca: cluster.cp.caPem, token: cluster.cp.adminToken },
    });
    cleanups.push(() => api.close());
    const timing = { leaseDurationSeconds: 2, renewDeadlineSeconds: 1.5, retryPeriodSeconds: 0.25 };
    const first = new LeaderElector(api, { namespace: NAMESPACE, name: 'expiry', identity: 'first', ...timing });
    await first.acquire();
    expect(first.leading).toBe(true);
    const second = new LeaderElector(api, { namespace: NAMESPACE, name: 'expiry', identity: 'second', ...timing });
    const acquired = second.acquire();
    cleanups.push(() => second.stop());
    await waitFor(() => second.holder === 'first', { message: 'the candidate to read the Lease' });

    // The leader dies: it stops renewing and does not release.
    await first.stop({ release: false });
    expect((await getLease('expiry')).spec?.holderIdentity).toBe('first');

    await acquired;
    expect(second.leading).toBe(true);
    const lease = await getLease('expiry');
    expect(lease.spec).toMatchObject({ holderIdentity: 'second', leaseDurationSeconds: 2, leaseTransitions: 1 });
  });

  test('candidates racing for a new Lease: one wins, the others see it as the holder', async () => {
    const api = createKubeApi({
      credentials: { server: cluster.cp.server, ca: cluster.cp.caPem, token: cluster.cp.adminToken },
    });
    cleanups.push(() => api.close());
    const timing = { leaseDurationSeconds: 30, renewDeadlineSeconds: 5, retryPeriodSeconds: 0.25 };
    const electors = ['one', 'two', 'three'].map(
      (identity) => new LeaderElector(api, { namespace: NAMESPACE, name: 'race', identity, ...timing }),
    );
    for (const elector of electors) cleanups.push(() => elector.stop());
    const stopCandidates = new AbortController();
    const campaigns = electors.map((elector) => elector.acquire(stopCandidates.signal).catch(() => 'stopped'));

    const winner = await Promise.race(campaigns.map((campaign, index) => campaign.then(() => electors[index])));
    const losers = electors.filter((elector) => elector !== winner);
    await waitFor(() => losers.every((elector) => elector.holder === winner?.identity), {
      message: 'the others to see the winner',
    });
    expect(electors.filter((elector) => elector.leading)).toEqual([winner]);
    expect((await getLease('race')).spec?.holderIdentity).toBe(winner?.identity);
    stopCandidates.abort();
    expect(await Promise.all(losers.map((elector) => campaigns[electors.indexOf(elector)]))).toEqual([
      'stopped',
      'stopped',
    ]);
  });
});
