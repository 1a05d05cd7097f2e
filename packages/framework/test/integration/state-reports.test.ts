/**
 * Against a real API server:
 * - B2: an unreadable node-local state file (a directory in its place) no longer blocks its object: the object is
 *   handled as new, the next write replaces the directory, and a deletion releases the finalizer;
 * - B3: spoiled state (a state file that is not JSON, garbage in the cluster-scope annotations) is reported: a warning
 *   naming the object and the reason, and one `StateDiscarded` Warning Event on the object;
 * - B5: handler log lines (`ctx.logger`, "handler succeeded") carry the object and its uid;
 * - status writes only when there is something to say: plain successes cost no status write (cluster scope: one
 *   request per change, the state annotations; node scope: none), while failures, retries, returned values and the
 *   success that replaces a retrying entry are written.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OnCreate, OnDelete, OnUpdate, Operator, PermanentError, TemporaryError, type HandlerContext } from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { GROUP, sleep, startCluster, testObject, type TestCluster } from './helpers.js';

const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };
const NODE_ID = 'reports-node';
const NODE_PREFIX = 'nr.opkit.dev';

interface Spec {
  v?: number;
  mode?: 'plain' | 'value' | 'flaky' | 'broken';
}

/** Handler runs, as `<handler> <name>`. */
const runs: string[] = [];
const attempts = new Map<string, number>();

@Operator({ group: GROUP, version: 'v1', plural: 'reporteds', kind: 'Reported' })
class ClusterOperator {
  @OnCreate()
  created(ctx: HandlerContext<Spec>) {
    runs.push(`created ${ctx.name}`);
    ctx.logger.info({ marker: 'from-the-handler' }, 'handler says hello');
  }

  @OnUpdate()
  updated(ctx: HandlerContext<Spec>) {
    runs.push(`updated ${ctx.name}`);
    const attempt = (attempts.get(ctx.name) ?? 0) + 1;
    attempts.set(ctx.name, attempt);
    switch (ctx.spec.mode) {
      case 'value':
        return { v: ctx.spec.v };
      case 'flaky':
        if (attempt === 1) throw new TemporaryError('not yet', { delayMs: 300 });
        return undefined;
      case 'broken':
        throw new PermanentError('broken for good');
      default:
        return undefined;
    }
  }
}

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'nodereporteds',
  kind: 'NodeReported',
  scope: 'node',
  persistencePrefix: NODE_PREFIX,
})
class NodeOperator {
  @OnCreate()
  created(ctx: HandlerContext<Spec>) {
    runs.push(`node-created ${ctx.name}`);
  }

  @OnUpdate()
  updated(ctx: HandlerContext<Spec>) {
    runs.push(`node-updated ${ctx.name}`);
  }

  @OnDelete()
  deleted(ctx: HandlerContext<Spec>) {
    runs.push(`node-deleted ${ctx.name}`);
  }
}

let cluster: TestCluster;
let clusterRef: ResourceRef;
let nodeRef: ResourceRef;
let stateDir: string;
let operator: OperatorHandle;
const logLines: Array<Record<string, unknown>> = [];
const requests: Array<{ verb: string; plural: string }> = [];

const countOf = (entry: string): number => runs.filter((run) => run === entry).length;
const get = (ref: ResourceRef, name: string) => cluster.api.get<KubeObject>(ref, name);
const stateFileOf = (uid: string) => join(stateDir, `nodereporteds.${GROUP}`, `${uid}.json`);
const diffBaseOf = (object: KubeObject) => object.metadata.annotations?.['opkit.dev/last-handled-configuration'];
const eventsAbout = async (name: string) =>
  (
    await cluster.api.list<KubeObject & { type: string; reason: string; message: string; count?: number }>(EVENTS, {
      namespace: 'default',
      fieldSelector: `involvedObject.name=${name}`,
    })
  ).items;
const runsOf = async (operatorName: string, handler: string): Promise<number> => {
  const text = await operator.metricsText();
  const pattern = new RegExp(
    `opkit_handler_runs_total\\{operator="${operatorName}",handler="${handler}",[^}]*\\} (\\d+)`,
    'g',
  );
  return [...text.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
};

/** The writes (not list/watch) to `plural` made while `change` is handled until `handled` holds. */
async function writesDuring(
  plural: string,
  change: () => Promise<unknown>,
  handled: () => Promise<boolean>,
): Promise<string[]> {
  const from = requests.length;
  await change();
  await waitFor(handled);
  // Let the watch deliver our own writes and the queue run its (no-op) cycles for them: a write any of those cycles
  // made is counted too. This wait bounds what is observed; it asserts nothing about speed.
  await sleep(700);
  return requests
    .slice(from)
    .filter((request) => request.plural === plural && request.verb !== 'watch' && request.verb !== 'list')
    .map((request) => request.verb);
}

beforeAll(async () => {
  cluster = await startCluster();
  clusterRef = await cluster.installCrd('reporteds', 'Reported');
  nodeRef = await cluster.installCrd('nodereporteds', 'NodeReported');
  stateDir = await cluster.tempDir('reports-state');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as never);
      done();
    },
  });
  operator = await startOperator({
    classes: [ClusterOperator, NodeOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    instanceId: NODE_ID,
    stateDir,
    // No Node objects in this test: the dead-instance janitor would take this instance's marks.
    cleanupDeadInstances: false,
    backoff: { initialMs: 100, maxMs: 500 },
    logger: pino({ level: 'debug' }, sink),
    onApiRequest: (verb, ref) => requests.push({ verb, plural: ref.plural }),
  });
}, 120_000);
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('B5: handler log lines are bound to their object', () => {
  test('ctx.logger and "handler succeeded" carry object and uid (and handler, cause)', async () => {
    const created = await cluster.api.create(clusterRef, testObject('Reported', 'logged', { mode: 'plain' }));
    const uid = created.metadata.uid;
    const ownLine = await waitFor(() => logLines.find((line) => line.marker === 'from-the-handler'));
    expect(ownLine).toMatchObject({ object: 'logged', uid, handler: 'created', cause: 'create', retry: 0 });
    const outcomeLine = await waitFor(() =>
      logLines.find((line) => line.msg === 'handler succeeded' && line.object === 'logged'),
    );
    expect(outcomeLine).toMatchObject({ object: 'logged', uid, handler: 'created', cause: 'create' });
  });
});

describe('B2: an unreadable state file', () => {
  test('a directory in place of the state file: handled as new, replaced by the next write, reported', async () => {
    const created = await cluster.api.create(nodeRef, testObject('NodeReported', 'dir-update', { v: 0 }));
    const file = stateFileOf(created.metadata.uid);
    await waitFor(async () => (await stat(file).catch(() => undefined))?.isFile());
    await rm(file);
    await mkdir(file);
    await writeFile(join(file, 'inside'), 'x');
    await cluster.api.patch(nodeRef, 'dir-update', { spec: { v: 1 } }, { type: 'merge' });
    // Handled as new (the diff-base was lost): the create handler runs again, and the file is a file again.
    await waitFor(() => countOf('node-created dir-update') === 2);
    const stored = await waitFor(async () => {
      const text = await readFile(file, 'utf8').catch(() => undefined);
      return text && (JSON.parse(text) as { diffBase?: { spec?: Spec } }).diffBase?.spec?.v === 1 && text;
    });
    expect(JSON.parse(stored)).toMatchObject({ version: 1, uid: created.metadata.uid });
    const warning = logLines.find(
      (line) => line.msg?.toString().startsWith('stored state discarded') && line.object === 'dir-update',
    );
    expect(warning).toMatchObject({ level: 40, uid: created.metadata.uid });
    expect(String(warning?.reason)).toContain('EISDIR');
  });

  test('a directory in place of the state file does not block a deletion (B2 reproduction)', async () => {
    const created = await cluster.api.create(nodeRef, testObject('NodeReported', 'dir-delete', { v: 0 }));
    const file = stateFileOf(created.metadata.uid);
    await waitFor(async () => (await stat(file).catch(() => undefined))?.isFile());
    await rm(file);
    await mkdir(file);
    await writeFile(join(file, 'inside'), 'x');
    await cluster.api.delete(nodeRef, 'dir-delete');
    await waitFor(async () => (await get(nodeRef, 'dir-delete').catch(() => 'gone')) === 'gone', {
      message: 'the object to be released and gone',
    });
    expect(countOf('node-deleted dir-delete')).toBe(1);
    // Its state (the directory) is gone with it.
    await waitFor(async () => (await stat(file).catch(() => 'gone')) === 'gone');
  });
});

describe('B3: spoiled state is reported', () => {
  test('a state file that is not JSON: a warning naming the object and reason, one StateDiscarded Warning Event', async () => {
    const created = await cluster.api.create(nodeRef, testObject('NodeReported', 'not-json', { v: 0 }));
    const file = stateFileOf(created.metadata.uid);
    await waitFor(async () => (await stat(file).catch(() => undefined))?.isFile());
    await writeFile(file, 'not json {');
    // Two changes, each handled: the garbage is reported once, not once per cycle.
    await cluster.api.patch(nodeRef, 'not-json', { spec: { v: 1 } }, { type: 'merge' });
    await waitFor(() => countOf('node-created not-json') === 2);
    await cluster.api.patch(nodeRef, 'not-json', { spec: { v: 2 } }, { type: 'merge' });
    await waitFor(() => countOf('node-updated not-json') === 1);
    const events = await waitFor(async () => {
      const found = (await eventsAbout('not-json')).filter((event) => event.reason === 'StateDiscarded');
      return found.length > 0 && found;
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Warning', count: 1 });
    expect(events[0]!.message).toBe(`${NODE_ID}: Stored handling state discarded (handled as new): not JSON`);
    const warnings = logLines.filter(
      (line) => line.msg?.toString().startsWith('stored state discarded') && line.object === 'not-json',
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, uid: created.metadata.uid, reason: 'not JSON' });
  });

  test('garbage in the cluster-scope annotations: reported, then replaced by the next state write', async () => {
    await cluster.api.create(clusterRef, testObject('Reported', 'spoiled', { mode: 'plain', v: 0 }));
    await waitFor(async () => diffBaseOf(await get(clusterRef, 'spoiled')));
    await cluster.api.patch(
      clusterRef,
      'spoiled',
      { metadata: { annotations: { 'opkit.dev/last-handled-configuration': '{{{', 'opkit.dev/progress': '[1,2,3]' } } },
      { type: 'merge' },
    );
    const event = await waitFor(async () =>
      (await eventsAbout('spoiled')).find((candidate) => candidate.reason === 'StateDiscarded'),
    );
    expect(event).toMatchObject({ type: 'Warning' });
    expect(event.message).toBe(
      'Stored handling state discarded (handled as new): annotation opkit.dev/last-handled-configuration: not JSON; ' +
        'annotation opkit.dev/progress: not an object',
    );
    const object = await waitFor(async () => {
      const current = await get(clusterRef, 'spoiled');
      return diffBaseOf(current)?.startsWith('{"') && current;
    });
    expect(object.metadata.annotations?.['opkit.dev/progress']).toBeUndefined();
    expect(countOf('created spoiled')).toBe(2);
    expect(
      logLines.find((line) => line.msg?.toString().startsWith('stored state discarded') && line.object === 'spoiled'),
    ).toMatchObject({ level: 40, uid: object.metadata.uid });
  });
});

describe('status is written when there is something to say', () => {
  const handlersOf = (object: KubeObject) =>
    (object.status as { handlers?: Record<string, { outcome: string; retries: number }> } | undefined)?.handlers;

  test('cluster scope: plain successes cost one request per change (state annotations), no status write', async () => {
    await cluster.api.create(clusterRef, testObject('Reported', 'quiet', { mode: 'plain', v: 0 }));
    await waitFor(async () => diffBaseOf(await get(clusterRef, 'quiet')));
    for (const v of [1, 2]) {
      const writes = await writesDuring(
        'reporteds',
        () => cluster.api.patch(clusterRef, 'quiet', { spec: { v } }, { type: 'merge' }),
        async () => diffBaseOf(await get(clusterRef, 'quiet'))?.includes(`"v":${v}`) ?? false,
      );
      expect(writes).toEqual(['patch']);
    }
    expect(countOf('updated quiet')).toBe(2);
    expect((await get(clusterRef, 'quiet')).status).toBeUndefined();
  });

  test('node scope: plain successes cost no request at all (the state is node-local)', async () => {
    const created = await cluster.api.create(nodeRef, testObject('NodeReported', 'node-quiet', { v: 0 }));
    const file = stateFileOf(created.metadata.uid);
    const storedV = async () =>
      (JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as { diffBase?: { spec?: Spec } }).diffBase?.spec?.v;
    await waitFor(async () => (await storedV()) === 0);
    const before = await runsOf('NodeOperator', 'updated');
    const writes = await writesDuring(
      'nodereporteds',
      () => cluster.api.patch(nodeRef, 'node-quiet', { spec: { v: 1 } }, { type: 'merge' }),
      async () => (await storedV()) === 1,
    );
    expect(writes).toEqual([]);
    expect(await runsOf('NodeOperator', 'updated')).toBe(before + 1);
    expect((await get(nodeRef, 'node-quiet')).status).toBeUndefined();
  });

  test('a returned value is written, with the outcome', async () => {
    await cluster.api.create(clusterRef, testObject('Reported', 'valued', { mode: 'value', v: 0 }));
    await waitFor(async () => diffBaseOf(await get(clusterRef, 'valued')));
    const writes = await writesDuring(
      'reporteds',
      () => cluster.api.patch(clusterRef, 'valued', { spec: { v: 7 } }, { type: 'merge' }),
      async () =>
        ((await get(clusterRef, 'valued')).status as { updated?: { v?: number } } | undefined)?.updated?.v === 7,
    );
    expect(writes).toEqual(['patch', 'patch']);
    expect(handlersOf(await get(clusterRef, 'valued'))?.updated).toMatchObject({ outcome: 'success', cause: 'update' });
  });

  test('a retry is written, and the success that follows replaces it', async () => {
    await cluster.api.create(clusterRef, testObject('Reported', 'flaky', { mode: 'plain', v: 0 }));
    await waitFor(async () => diffBaseOf(await get(clusterRef, 'flaky')));
    await cluster.api.patch(clusterRef, 'flaky', { spec: { mode: 'flaky', v: 1 } }, { type: 'merge' });
    const object = await waitFor(async () => {
      const current = await get(clusterRef, 'flaky');
      return handlersOf(current)?.updated?.outcome === 'success' && current;
    });
    expect(handlersOf(object)?.updated).toMatchObject({ outcome: 'success', retries: 1 });
    expect(countOf('updated flaky')).toBe(2);
  });

  test('a permanent failure is written', async () => {
    await cluster.api.create(clusterRef, testObject('Reported', 'broken', { mode: 'plain', v: 0 }));
    await waitFor(async () => diffBaseOf(await get(clusterRef, 'broken')));
    await cluster.api.patch(clusterRef, 'broken', { spec: { mode: 'broken', v: 1 } }, { type: 'merge' });
    const object = await waitFor(async () => {
      const current = await get(clusterRef, 'broken');
      return handlersOf(current)?.updated?.outcome === 'failed' && current;
    });
    expect(handlersOf(object)?.updated).toMatchObject({ outcome: 'failed', message: 'broken for good' });
  });
});
