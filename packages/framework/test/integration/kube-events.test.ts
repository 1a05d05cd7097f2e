import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { EventRecorder, type EventOutcome } from '../../src/kube/events.js';
import type { KubeObject } from '../../src/kube/types.js';
import { CONFIGMAPS, EVENTS, TcpProxy, ensureNamespace } from './kube-fixtures.js';

interface CoreEvent extends KubeObject {
  involvedObject: Record<string, string>;
  type: string;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host: string };
  reportingComponent: string;
  reportingInstance: string;
}

let cp: ControlPlane;
let api: KubeClient;

beforeAll(async () => {
  cp = await startControlPlane();
  api = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
  await ensureNamespace(cp, 'ev');
});

afterAll(async () => {
  api?.close();
  await cp?.stop();
});

/** A target object with type metadata, as the watcher delivers it. */
async function configMap(name: string): Promise<KubeObject> {
  const created = await api.create<KubeObject>(CONFIGMAPS, { metadata: { name } }, 'ev');
  return { ...created, apiVersion: 'v1', kind: 'ConfigMap' };
}

async function eventsAbout(target: KubeObject, namespace = 'ev'): Promise<CoreEvent[]> {
  const list = await api.list<CoreEvent>(EVENTS, {
    namespace,
    fieldSelector: `involvedObject.uid=${target.metadata.uid}`,
  });
  return list.items;
}

function manualClock(start = Date.parse('2026-11-27T10:00:00Z')): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('EventRecorder', () => {
  it('posts a core/v1 Event describing the target, its source and reporting instance', async () => {
    const target = await configMap('described');
    const recorder = new EventRecorder(api, { component: 'test-operator', instance: 'node-a' });
    recorder.record(target, 'Normal', 'Applied', 'routes applied');
    await recorder.flush();
    const [event, ...rest] = await eventsAbout(target);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'Normal',
      reason: 'Applied',
      message: 'routes applied',
      count: 1,
      source: { component: 'test-operator', host: 'node-a' },
      reportingComponent: 'test-operator',
      reportingInstance: 'node-a',
      involvedObject: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'described',
        namespace: 'ev',
        uid: target.metadata.uid,
        resourceVersion: target.metadata.resourceVersion,
      },
    });
    expect(event!.metadata.namespace).toBe('ev');
  });

  it('deduplicates repeats into one Event with a count and a moving lastTimestamp', async () => {
    const target = await configMap('repeated');
    const clock = manualClock();
    const outcomes: EventOutcome[] = [];
    const recorder = new EventRecorder(api, {
      component: 'test-operator',
      now: clock.now,
      onOutcome: (o) => outcomes.push(o),
    });
    for (let i = 0; i < 3; i += 1) {
      recorder.record(target, 'Warning', 'Failed', 'gateway unreachable');
      await recorder.flush();
      clock.advance(5000);
    }
    recorder.record(target, 'Warning', 'Failed', 'a different message');
    await recorder.flush();
    const events = await eventsAbout(target);
    expect(events).toHaveLength(2);
    const repeated = events.find((e) => e.message === 'gateway unreachable')!;
    expect(repeated.count).toBe(3);
    expect(repeated.firstTimestamp).toBe('2026-11-27T10:00:00Z');
    expect(repeated.lastTimestamp).toBe('2026-11-27T10:00:10Z');
    expect(outcomes).toEqual(['created', 'deduplicated', 'deduplicated', 'created']);
  });

  it('folds repeats still in the queue into one request', async () => {
    const target = await configMap('burst');
    const before = api.requestCount;
    const recorder = new EventRecorder(api, { component: 'test-operator' });
    for (let i = 0; i < 5; i += 1) recorder.record(target, 'Warning', 'Failed', 'same thing');
    await recorder.flush();
    expect(api.requestCount - before).toBe(1);
    const [event] = await eventsAbout(target);
    expect(event!.count).toBe(5);
  });

  it('starts a new Event after the dedupe window, and when the old one was deleted (404)', async () => {
    const target = await configMap('windowed');
    const clock = manualClock();
    const recorder = new EventRecorder(api, { component: 'test-operator', now: clock.now, dedupeWindowMs: 60_000 });
    recorder.record(target, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    clock.advance(61_000);
    recorder.record(target, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    expect((await eventsAbout(target)).map((e) => e.count)).toEqual([1, 1]);

    for (const event of await eventsAbout(target)) await api.delete(EVENTS, event.metadata.name, 'ev');
    clock.advance(1000);
    recorder.record(target, 'Normal', 'Synced', 'ok');
    await recorder.flush();
    const after = await eventsAbout(target);
    expect(after).toHaveLength(1);
    expect(after[0]!.count).toBe(1);
  });

  it('puts Events about cluster-scoped objects in namespace default', async () => {
    const ns = await api.get<KubeObject>({ group: '', version: 'v1', plural: 'namespaces' }, 'ev');
    const recorder = new EventRecorder(api, { component: 'test-operator' });
    recorder.record({ ...ns, apiVersion: 'v1', kind: 'Namespace' }, 'Normal', 'Seen', 'cluster-scoped');
    await recorder.flush();
    const [event] = await eventsAbout(ns, 'default');
    expect(event?.metadata.namespace).toBe('default');
    expect(event?.involvedObject.namespace).toBeUndefined();
    expect(event?.involvedObject.kind).toBe('Namespace');
  });

  it('rate-limits per target object, dropping and counting the excess', async () => {
    const limited = await configMap('limited');
    const other = await configMap('other');
    const clock = manualClock();
    const outcomes: EventOutcome[] = [];
    const recorder = new EventRecorder(api, {
      component: 'test-operator',
      burst: 2,
      refillPerSecond: 0.1,
      now: clock.now,
      onOutcome: (o) => outcomes.push(o),
    });
    for (let i = 0; i < 5; i += 1) recorder.record(limited, 'Warning', 'Failed', `attempt ${i}`);
    recorder.record(other, 'Warning', 'Failed', 'attempt 0');
    await recorder.flush();
    expect((await eventsAbout(limited)).map((e) => e.message).sort()).toEqual(['attempt 0', 'attempt 1']);
    expect(await eventsAbout(other)).toHaveLength(1);
    expect(recorder.dropped).toBe(3);
    expect(outcomes.filter((o) => o === 'dropped')).toHaveLength(3);
    clock.advance(10_000); // one token back
    recorder.record(limited, 'Warning', 'Failed', 'attempt 5');
    await recorder.flush();
    expect(await eventsAbout(limited)).toHaveLength(3);
  });

  it('never throws into the caller when the API refuses, and flush() still resolves', async () => {
    const outcomes: EventOutcome[] = [];
    const recorder = new EventRecorder(api, { component: 'test-operator', onOutcome: (o) => outcomes.push(o) });
    const ghost: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ghost', namespace: 'no-such-namespace', uid: 'uid-ghost', resourceVersion: '1' },
    };
    expect(() => recorder.record(ghost, 'Warning', 'Failed', 'nowhere to go')).not.toThrow();
    await recorder.flush();
    expect(outcomes).toEqual(['failed']);
  });

  it('flush(timeout) returns while the API server does not answer', async () => {
    const proxy = await TcpProxy.start(cp.server);
    proxy.stallNew(true);
    const silent = createKubeApi({
      credentials: { server: proxy.url, ca: cp.caPem, token: cp.adminToken },
      requestTimeoutMs: 3_600_000,
    });
    try {
      const target = await configMap('unanswered');
      const recorder = new EventRecorder(silent, { component: 'test-operator' });
      recorder.record(target, 'Normal', 'Waiting', 'no answer');
      await recorder.flush(200);
      expect(await eventsAbout(target)).toEqual([]);
    } finally {
      silent.close();
      await proxy.stop();
    }
  });
});
