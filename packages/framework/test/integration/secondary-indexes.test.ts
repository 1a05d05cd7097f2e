/**
 * Secondary resources and indexes against a real API server: `@Operator({ watches })` with `owns` and `map`,
 * `@OnSecondary` (the change, coalescing per object, waiting while the primary's create is retrying, nothing for the
 * initial list), `ctx.caches`, one shared watch per resource and selection, and `@Index` over the primary and over a
 * watched resource (values replaced on update, removed on delete and when an object stops matching).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  Index,
  OnCreate,
  OnSecondary,
  OnUpdate,
  Operator,
  TemporaryError,
  type HandlerContext,
  type KubeObject,
  type ResourceRef,
  type SecondaryContext,
} from 'opkit';
import { SharedWatches } from '../../src/engine/shared-watches.js';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import { GROUP, startCluster, type TestCluster } from './helpers.js';

const NS = 'holders';
const CONFIGMAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

interface HolderSpec {
  color?: string;
  /** The create handler fails until the test releases the object. */
  holdCreate?: boolean;
  bump?: number;
}

interface SecondaryCall {
  handler: string;
  primary: string;
  resource: string;
  type: string;
  name: string;
  data: unknown;
  previousData: unknown;
  /** `cmByHolder` of the primary, as the handler saw it. */
  indexed: readonly unknown[];
}

const secondaryCalls: SecondaryCall[] = [];
const createAttempts = new Map<string, number>();
const released = new Set<string>();
const createViews = new Map<string, { cached: boolean; indexed: readonly unknown[]; versions: readonly unknown[] }>();
const colorSnapshots: Array<{ name: string; red: readonly unknown[]; blue: readonly unknown[] }> = [];
const flakyAttempts: Array<{ name: string; retry: number; v: string | undefined }> = [];
const goldOnlyCalls: string[] = [];

function recordSecondary(handler: string, ctx: SecondaryContext<HolderSpec>): void {
  const { secondary } = ctx;
  secondaryCalls.push({
    handler,
    primary: ctx.name,
    resource: secondary.resource,
    type: secondary.type,
    name: secondary.object.metadata.name,
    data: secondary.object.data,
    previousData: secondary.previous?.data,
    indexed: ctx.index<string>('cmByHolder').get(ctx.name),
  });
}

@Operator({
  group: GROUP,
  version: 'v1',
  plural: 'holders',
  kind: 'Holder',
  namespaced: true,
  watches: [
    { resource: CONFIGMAPS, owns: true },
    {
      id: 'labelled',
      resource: CONFIGMAPS,
      labelSelector: 'holder',
      map: (configMap) => configMap.metadata.labels?.holder,
    },
  ],
})
class HolderOperator {
  @OnCreate()
  async create(ctx: HandlerContext<HolderSpec>): Promise<void> {
    createAttempts.set(ctx.name, (createAttempts.get(ctx.name) ?? 0) + 1);
    createViews.set(ctx.name, {
      cached: ctx.caches.labelled?.get(`${ctx.name}-pre`, ctx.namespace) !== undefined,
      indexed: ctx.index('cmByHolder').get(ctx.name),
      versions: ctx.index('cmVersions').get(`cm-b`),
    });
    if (ctx.spec.holdCreate && !released.has(ctx.name)) throw new TemporaryError('held', { delayMs: 150 });
    await ctx.api
      .create(
        CONFIGMAPS,
        {
          metadata: {
            name: `${ctx.name}-owned`,
            namespace: ctx.namespace,
            ownerReferences: [
              { apiVersion: `${GROUP}/v1`, kind: 'Holder', name: ctx.name, uid: ctx.uid, controller: true },
            ],
          },
          data: { v: '1' },
        },
        ctx.namespace,
      )
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 409) throw error;
      });
  }

  @OnUpdate()
  updated(ctx: HandlerContext<HolderSpec>): void {
    colorSnapshots.push({
      name: ctx.name,
      red: ctx.index('holdersByColor').get('red'),
      blue: ctx.index('holdersByColor').get('blue'),
    });
  }

  @OnSecondary({ resource: 'configmaps' })
  owned(ctx: SecondaryContext<HolderSpec>): void {
    recordSecondary('owned', ctx);
  }

  @OnSecondary({ resource: 'labelled' })
  labelled(ctx: SecondaryContext<HolderSpec>): void {
    recordSecondary('labelled', ctx);
  }

  /** Fails for config maps named `fail-*`: `fail-twice` twice, `fail-always` always, `fail-replaced` while at v1. */
  @OnSecondary({ resource: 'labelled', id: 'flaky', retries: 3, backoff: { initialMs: 50, maxMs: 100 } })
  flaky(ctx: SecondaryContext<HolderSpec, unknown, KubeObject & { data?: { v?: string } }>): void {
    const { object } = ctx.secondary;
    const name = object.metadata.name;
    if (!name.startsWith('fail-') || ctx.secondary.type === 'delete') return;
    flakyAttempts.push({ name, retry: ctx.retry, v: object.data?.v });
    if (name === 'fail-twice' && ctx.retry < 2) throw new Error('not yet');
    if (name === 'fail-always') throw new Error('never');
    if (name === 'fail-replaced' && object.data?.v === '1') throw new TemporaryError('later', { delayMs: 60_000 });
  }

  @OnSecondary({ resource: 'labelled', id: 'goldOnly', labels: { tier: 'gold' } })
  goldOnly(ctx: SecondaryContext<HolderSpec>): void {
    goldOnlyCalls.push(`${ctx.name}/${ctx.secondary.object.metadata.name}`);
  }

  /** Config maps by the holder their label names: over the watch that maps them, so handlers see it current. */
  @Index({ resource: 'labelled' })
  cmByHolder(configMap: KubeObject): Record<string, string> | undefined {
    const holder = configMap.metadata.labels?.holder;
    return holder ? { [holder]: configMap.metadata.name } : undefined;
  }

  /** The data version of every labelled config map, by name: tells the test which change the watch delivered. */
  @Index({ resource: 'labelled' })
  cmVersions(configMap: KubeObject): Record<string, unknown> {
    return { [configMap.metadata.name]: (configMap.data as { v?: string } | undefined)?.v };
  }

  @Index()
  holdersByColor(holder: KubeObject): Record<string, string> | undefined {
    const color = (holder.spec as HolderSpec | undefined)?.color;
    return color ? { [color]: holder.metadata.name } : undefined;
  }
}

/** A second operator class watching config maps like the holder operator's `configmaps` watch: they share it. */
@Operator({ group: GROUP, version: 'v1', plural: 'audits', kind: 'Audit', watches: [{ resource: CONFIGMAPS }] })
class AuditOperator {}

let cluster: TestCluster;
let holders: ResourceRef;
let operator: OperatorHandle | undefined;

const holder = (name: string, spec: HolderSpec, labels?: Record<string, string>): KubeObject => ({
  apiVersion: `${GROUP}/v1`,
  kind: 'Holder',
  metadata: { name, namespace: NS, ...(labels ? { labels } : {}) } as KubeObject['metadata'],
  spec,
});
const configMap = (name: string, labels: Record<string, string>, data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: NS, labels } as KubeObject['metadata'],
  data,
});
const callsFor = (primary: string, handler?: string): SecondaryCall[] =>
  secondaryCalls.filter((call) => call.primary === primary && (handler === undefined || call.handler === handler));
const patchData = (name: string, data: Record<string, string>) =>
  cluster.api.patch(CONFIGMAPS, name, { data }, { namespace: NS, type: 'merge' });
const patchLabels = (name: string, labels: Record<string, string | null>) =>
  cluster.api.patch(CONFIGMAPS, name, { metadata: { labels } }, { namespace: NS, type: 'merge' });

beforeAll(async () => {
  cluster = await startCluster();
  holders = await cluster.installCrd('holders', 'Holder', { namespaced: true });
  await cluster.installCrd('audits', 'Audit');
  await cluster.api.create({ group: '', version: 'v1', plural: 'namespaces' }, { metadata: { name: NS } });
  // Before the operator starts: h1 and a config map that names it (the initial list).
  await cluster.api.create(holders, holder('h1', {}), NS);
  await cluster.api.create(CONFIGMAPS, configMap('h1-pre', { holder: 'h1' }, { v: 'pre' }), NS);
  operator = await startOperator({
    classes: [HolderOperator, AuditOperator],
    kubeconfigPath: cluster.kubeconfigPath,
    backoff: { initialMs: 100, maxMs: 400 },
  });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('secondary resources', () => {
  test('handlers start with complete caches and indexes; the initial list is not delivered as changes', async () => {
    // h1's create handler ran after every watch listed: it saw the config map made before the operator started.
    await waitFor(async () => (await cluster.api.get(CONFIGMAPS, 'h1-owned', NS)) !== undefined);
    expect(createViews.get('h1')).toMatchObject({ cached: true, indexed: ['h1-pre'] });
    // The owned config map the create handler made is a change after the initial list (the watch sees it appear).
    await waitFor(() => callsFor('h1', 'owned').length > 0);
    // h1-pre was in the initial list: no @OnSecondary call for it, before or after h1's create.
    expect(secondaryCalls.filter((call) => call.name === 'h1-pre')).toEqual([]);
  });

  test('owns: an edit and a deletion of an owned object run @OnSecondary of its owner with the change', async () => {
    await waitFor(() => callsFor('h1', 'owned').some((call) => call.type === 'upsert'));
    await patchData('h1-owned', { v: '2' });
    const edit = await waitFor(() =>
      callsFor('h1', 'owned').find((call) => call.type === 'upsert' && (call.data as { v: string }).v === '2'),
    );
    expect(edit).toMatchObject({ resource: 'configmaps', name: 'h1-owned', previousData: { v: '1' } });
    await cluster.api.delete(CONFIGMAPS, 'h1-owned', NS);
    const deletion = await waitFor(() => callsFor('h1', 'owned').find((call) => call.type === 'delete'));
    expect(deletion).toMatchObject({ resource: 'configmaps', name: 'h1-owned', data: { v: '2' } });
    // An object with no owner reference to a holder concerns no holder through `owns`.
    expect(secondaryCalls.filter((call) => call.handler === 'owned' && call.name === 'h1-pre')).toEqual([]);
  });

  test('map: a change runs @OnSecondary of the primary the map names; the index is current in the handler', async () => {
    await cluster.api.create(holders, holder('h2', {}), NS);
    await waitFor(() => callsFor('h2', 'owned').length > 0);
    await cluster.api.create(CONFIGMAPS, configMap('cm-a', { holder: 'h1' }, { v: 'a' }), NS);
    const added = await waitFor(() => callsFor('h1', 'labelled').find((call) => call.name === 'cm-a'));
    expect(added).toMatchObject({ resource: 'labelled', type: 'upsert', previousData: undefined });
    expect(added.indexed).toEqual(['h1-pre', 'cm-a']);

    // Relabelled to h2: both the old and the new primary hear of it; the index moved the value.
    const before = callsFor('h1', 'labelled').length;
    await patchLabels('cm-a', { holder: 'h2' });
    const moved = await waitFor(() => callsFor('h2', 'labelled').find((call) => call.name === 'cm-a'));
    expect(moved.indexed).toEqual(['cm-a']);
    const left = await waitFor(() =>
      callsFor('h1', 'labelled')
        .slice(before)
        .find((call) => call.name === 'cm-a'),
    );
    expect(left.indexed).toEqual(['h1-pre']);

    // The label removed: the object leaves the labelled watch (a deletion for it) and the index.
    const h2Calls = callsFor('h2', 'labelled').length;
    await patchLabels('cm-a', { holder: null });
    const gone = await waitFor(() =>
      callsFor('h2', 'labelled')
        .slice(h2Calls)
        .find((call) => call.name === 'cm-a'),
    );
    expect(gone).toMatchObject({ type: 'delete' });
    expect(gone.indexed).toEqual([]);
  });

  test('coalescing: of several changes of one object before the handler runs, it sees the latest', async () => {
    await cluster.api.create(holders, holder('h3', { holdCreate: true }), NS);
    await waitFor(() => (createAttempts.get('h3') ?? 0) >= 1);
    // h3 is not at rest (its create is retrying): changes wait, and the newer replaces the older.
    await cluster.api.create(CONFIGMAPS, configMap('cm-b', { holder: 'h3' }, { v: '1' }), NS);
    await patchData('cm-b', { v: '2' });
    await patchData('cm-b', { v: '3' });
    // A create attempt ran after the watch delivered the last change (the index, updated with it, says so): that
    // cycle did not run @OnSecondary, since the create is still in progress.
    await waitFor(() => createViews.get('h3')?.versions[0] === '3');
    expect(createViews.get('h3')?.indexed).toEqual(['cm-b']);
    expect(callsFor('h3', 'labelled')).toEqual([]);
    released.add('h3');
    const call = await waitFor(() => callsFor('h3', 'labelled')[0]);
    expect(call).toMatchObject({ name: 'cm-b', type: 'upsert', data: { v: '3' }, previousData: undefined });
    // One call for the three changes.
    await waitFor(() => callsFor('h3', 'owned').length > 0);
    expect(callsFor('h3', 'labelled')).toHaveLength(1);
  });

  test('failures are retried with backoff up to `retries` attempts; a newer change replaces a waiting retry', async () => {
    await cluster.api.create(holders, holder('h4', {}), NS);
    await waitFor(() => callsFor('h4', 'owned').length > 0);
    await cluster.api.create(CONFIGMAPS, configMap('fail-twice', { holder: 'h4' }, { v: '1' }), NS);
    await cluster.api.create(CONFIGMAPS, configMap('fail-always', { holder: 'h4' }, { v: '1' }), NS);
    await waitFor(() => flakyAttempts.filter((a) => a.name === 'fail-twice').length === 3);
    expect(flakyAttempts.filter((a) => a.name === 'fail-twice').map((a) => a.retry)).toEqual([0, 1, 2]);
    // Given up after its third attempt: the failure is counted when decided, so no attempt can follow it.
    await waitFor(async () => {
      const { values } = await (operator as OperatorHandle).metrics.handlerFailures.get();
      return values.some(({ labels }) => labels.handler === 'flaky');
    });
    expect(flakyAttempts.filter((a) => a.name === 'fail-always').map((a) => a.retry)).toEqual([0, 1, 2]);

    // Waiting a minute for its retry (TemporaryError's delay), then changed: the new copy is handled at once.
    await cluster.api.create(CONFIGMAPS, configMap('fail-replaced', { holder: 'h4' }, { v: '1' }), NS);
    await waitFor(() => flakyAttempts.some((a) => a.name === 'fail-replaced'));
    await patchData('fail-replaced', { v: '2' });
    await waitFor(() => flakyAttempts.some((a) => a.name === 'fail-replaced' && a.v === '2'));
    expect(flakyAttempts.filter((a) => a.name === 'fail-replaced')).toEqual([
      { name: 'fail-replaced', retry: 0, v: '1' },
      { name: 'fail-replaced', retry: 0, v: '2' },
    ]);
  });

  test('filters of @OnSecondary apply to the primary object', async () => {
    await cluster.api.create(holders, holder('g1', {}, { tier: 'gold' }), NS);
    await waitFor(() => callsFor('g1', 'owned').length > 0);
    await cluster.api.create(CONFIGMAPS, configMap('cm-g', { holder: 'g1' }, { v: '1' }), NS);
    await waitFor(() => goldOnlyCalls.includes('g1/cm-g'));
    // Every change mapped to a holder without the label (h1, h2, h3, h4 above) was left out.
    expect(goldOnlyCalls).toEqual(['g1/cm-g']);
  });

  test('one watch per resource and selection per runtime, shared by every class that declares it', () => {
    // configmaps (holders' `configmaps` and the audit operator's) and configmaps with `holder` (holders' `labelled`).
    expect(SharedWatches.of(operator?.api as NonNullable<OperatorHandle['api']>).size).toBe(2);
  });
});

describe('indexes', () => {
  test('an index of the primary resource: values replaced when an object changes, removed when it goes', async () => {
    await cluster.api.create(holders, holder('red1', { color: 'red' }), NS);
    await cluster.api.create(holders, holder('red2', { color: 'red' }), NS);
    await cluster.api.patch(holders, 'red1', { spec: { bump: 1 } }, { namespace: NS, type: 'merge' });
    const first = await waitFor(() => colorSnapshots.find((snapshot) => snapshot.name === 'red1'));
    expect(first.red).toEqual(['red1', 'red2']);

    await cluster.api.patch(holders, 'red1', { spec: { color: 'blue' } }, { namespace: NS, type: 'merge' });
    const moved = await waitFor(() => colorSnapshots.filter((snapshot) => snapshot.name === 'red1')[1]);
    expect(moved).toMatchObject({ red: ['red2'], blue: ['red1'] });

    // Deleted (no finalizer: the holder operator has no delete handler), then a later event of the same watch.
    await cluster.api.delete(holders, 'red2', NS);
    await waitFor(
      async () => !(await cluster.api.list(holders, { namespace: NS })).items.some((h) => h.metadata.name === 'red2'),
    );
    await cluster.api.patch(holders, 'red1', { spec: { bump: 2 } }, { namespace: NS, type: 'merge' });
    const after = await waitFor(() => colorSnapshots.filter((snapshot) => snapshot.name === 'red1')[2]);
    expect(after).toMatchObject({ red: [], blue: ['red1'] });
  });

  test('ctx.index of an undeclared id throws rather than reading as empty', async () => {
    let message = '';
    @Operator({ group: GROUP, version: 'v1', plural: 'audits', kind: 'Audit', name: 'IndexTypo' })
    class IndexTypo {
      @OnCreate()
      create(ctx: HandlerContext): void {
        try {
          ctx.index('nope');
        } catch (error) {
          message = (error as Error).message;
        }
      }
    }
    const typo = await startOperator({ classes: [IndexTypo], kubeconfigPath: cluster.kubeconfigPath });
    try {
      await cluster.api.create(
        { group: GROUP, version: 'v1', plural: 'audits' },
        { apiVersion: `${GROUP}/v1`, kind: 'Audit', metadata: { name: 'a1' } },
      );
      await waitFor(() => message !== '');
      expect(message).toContain("has no index 'nope'");
    } finally {
      await typo.stop();
    }
  });
});
