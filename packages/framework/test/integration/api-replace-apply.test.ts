/**
 * The API client's replace (PUT), server-side apply and `isNotFound`, against a real API server, and the same verbs
 * on `ctx.api` in a handler (also when the runtime was given an API client without them).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ApiError,
  isNotFound,
  OnCreate,
  Operator,
  type HandlerContext,
  type KubeApi,
  type KubeObject,
  type ResourceRef,
} from 'opkit';
import { handlerApi } from '../../src/engine/handler-api.js';
import { startOperator, waitFor } from '../../src/testing/index.js';
import { GROUP, startCluster, type TestCluster } from './helpers.js';

const NS = 'writes';
const CONFIGMAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let cluster: TestCluster;

const configMap = (name: string, data: Record<string, string>): ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: NS } as KubeObject['metadata'],
  data,
});
const failure = async (promise: Promise<unknown>): Promise<ApiError> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
};
const managers = (object: KubeObject): string[] =>
  ((object.metadata.managedFields as Array<{ manager: string }> | undefined) ?? []).map((entry) => entry.manager);

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.api.create({ group: '', version: 'v1', plural: 'namespaces' }, { metadata: { name: NS } });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('replace (PUT)', () => {
  test('replaces the whole object; a stale resourceVersion is a conflict; a missing object is not found', async () => {
    const created = await cluster.api.create<ConfigMap>(CONFIGMAPS, configMap('r1', { a: '1', b: '2' }), NS);
    const replaced = await cluster.api.replace<ConfigMap>(CONFIGMAPS, 'r1', { ...created, data: { a: '3' } });
    expect(replaced.data).toEqual({ a: '3' });
    expect(replaced.metadata.resourceVersion).not.toBe(created.metadata.resourceVersion);

    const stale = await failure(cluster.api.replace(CONFIGMAPS, 'r1', { ...created, data: { a: '4' } }));
    expect(stale.statusCode).toBe(409);
    expect(isNotFound(stale)).toBe(false);

    const missing = await failure(cluster.api.replace(CONFIGMAPS, 'nope', configMap('nope', {}), { namespace: NS }));
    expect(isNotFound(missing)).toBe(true);
    expect(cluster.api.isNotFound(missing)).toBe(true);
    expect(isNotFound(new Error('404'))).toBe(false);
  });
});

describe('server-side apply', () => {
  test('creates, then merges the applied fields, owned by the field manager', async () => {
    const first = await cluster.api.apply<ConfigMap>(CONFIGMAPS, configMap('s1', { a: '1' }), {
      fieldManager: 'alpha',
    });
    expect(first.data).toEqual({ a: '1' });
    expect(managers(first)).toEqual(['alpha']);
    // Another manager adds a key: both keys stay, each owned by its manager.
    const second = await cluster.api.apply<ConfigMap>(CONFIGMAPS, configMap('s1', { b: '2' }), {
      fieldManager: 'beta',
    });
    expect(second.data).toEqual({ a: '1', b: '2' });
    expect(managers(second).sort()).toEqual(['alpha', 'beta']);
    // Applying again without a field the manager owned removes it (apply means "this is what I want").
    const third = await cluster.api.apply<ConfigMap>(CONFIGMAPS, configMap('s1', {}), { fieldManager: 'beta' });
    expect(third.data).toEqual({ a: '1' });
  });

  test('a field another manager owns is a conflict, unless force', async () => {
    await cluster.api.apply(CONFIGMAPS, configMap('s2', { a: '1' }), { fieldManager: 'alpha' });
    const conflict = await failure(
      cluster.api.apply(CONFIGMAPS, configMap('s2', { a: '2' }), { fieldManager: 'beta' }),
    );
    expect(conflict.statusCode).toBe(409);
    const forced = await cluster.api.apply<ConfigMap>(CONFIGMAPS, configMap('s2', { a: '2' }), {
      fieldManager: 'beta',
      force: true,
    });
    expect(forced.data).toEqual({ a: '2' });
  });

  test('the default field manager is the client one; an object without a name is refused', async () => {
    const applied = await cluster.api.apply(CONFIGMAPS, configMap('s3', { a: '1' }));
    expect(managers(applied)).toEqual(['opkit']);
    await expect(cluster.api.apply(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })).rejects.toThrow(
      /metadata.name/,
    );
  });
});

describe('ctx.api in handlers', () => {
  test('a handler applies, replaces and tells a 404 with ctx.api', async () => {
    const outcomes = new Map<string, unknown>();
    @Operator({ group: GROUP, version: 'v1', plural: 'appliers', kind: 'Applier' })
    class ApplierOperator {
      @OnCreate()
      async create(ctx: HandlerContext): Promise<void> {
        const applied = await ctx.api.apply<ConfigMap>(CONFIGMAPS, configMap(`${ctx.name}-cm`, { v: '1' }), {
          fieldManager: 'applier',
        });
        const replaced = await ctx.api.replace<ConfigMap>(CONFIGMAPS, applied.metadata.name, {
          ...applied,
          data: { v: '2' },
        });
        let missing = false;
        try {
          await ctx.api.get(CONFIGMAPS, 'absent', NS);
        } catch (error) {
          missing = ctx.api.isNotFound(error);
        }
        outcomes.set(ctx.name, { appliedBy: managers(applied), data: replaced.data, missing });
      }
    }
    const ref = await cluster.installCrd('appliers', 'Applier');
    const operator = await startOperator({
      classes: [ApplierOperator],
      kubeconfigPath: cluster.kubeconfigPath,
      component: 'applier-operator',
    });
    try {
      await cluster.api.create(ref, { apiVersion: `${GROUP}/v1`, kind: 'Applier', metadata: { name: 'x' } });
      expect(await waitFor(() => outcomes.get('x'))).toEqual({
        appliedBy: ['applier'],
        data: { v: '2' },
        missing: true,
      });
      // The replace took the field over, as the runtime's field manager (its `component`).
      const object = await cluster.api.get<ConfigMap>(CONFIGMAPS, 'x-cm', NS);
      expect(managers(object)).toContain('applier-operator');
    } finally {
      await operator.stop();
    }
  });

  test('with an API client that lacks replace and apply, ctx.api says so when they are called', async () => {
    const api = cluster.api;
    const bare: KubeApi = {
      get requestCount() {
        return api.requestCount;
      },
      list: (...args) => api.list(...args),
      get: (...args) => api.get(...args),
      create: (...args) => api.create(...args),
      patch: (...args) => api.patch(...args),
      delete: (...args) => api.delete(...args),
      watch: (...args) => api.watch(...args),
    };
    const view = handlerApi(bare);
    expect(handlerApi(bare)).toBe(view);
    expect(handlerApi(api)).toBe(api);
    await expect(view.replace(CONFIGMAPS, 'r1', {})).rejects.toThrow(/does not implement replace/);
    await expect(view.apply(CONFIGMAPS, configMap('z', {}))).rejects.toThrow(/does not implement apply/);
    expect((await view.get<ConfigMap>(CONFIGMAPS, 's1', NS)).data).toEqual({ a: '1' });
    expect(view.isNotFound(new ApiError(404, 'gone'))).toBe(true);
  });
});
