/**
 * The status summary converges when many nodes report at the same moment: every writer patches its own entry, and
 * the shared `status.ready` / conditions are written only by checks, with a resourceVersion precondition.
 * Real API server; twelve StatusWriters stand in for twelve nodes.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, type KubeApi, type KubeObject, type Logger, type ResourceRef } from 'opkit';
import { apiRequest, startControlPlane, type ApiResponse, type ControlPlane } from '@opkit/testbed';
import { StatusWriter } from '../../src/handlers/status-writer.js';
import type { StaticRouteObject } from '../../src/logic/spec.js';
import type { NodeOutcome } from '../../src/logic/status.js';
import { REPO_DIR } from '../support/build.js';

let controlPlane: ControlPlane;
const BASE = '/apis/networking.digitalocean.com/v1/staticroutes';
const quiet = { warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;

/** Summary writes (merge patches with a resourceVersion precondition) sent so far, per object. */
const summaryWrites = new Map<string, number>();

type Send = (method: string, apiPath: string, body?: unknown, contentType?: string) => Promise<ApiResponse>;

/** The verbs StatusWriter uses, over the test bed's plain HTTPS client (the API server itself is real). */
function apiFor(send: Send): KubeApi {
  const check = <T>(response: { status: number; body: unknown; text: string }): T => {
    if (response.status >= 400) throw new ApiError(response.status, response.text);
    return response.body as T;
  };
  const unsupported = () => Promise.reject(new Error('not used by StatusWriter'));
  return {
    get: async <T extends KubeObject>(_ref: ResourceRef, name: string) =>
      check<T>(await send('GET', `${BASE}/${name}`)),
    patch: async <T extends KubeObject>(
      _ref: ResourceRef,
      name: string,
      body: unknown,
      options?: { subresource?: string },
    ) => {
      if ((body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion) {
        summaryWrites.set(name, (summaryWrites.get(name) ?? 0) + 1);
      }
      return check<T>(
        await send(
          'PATCH',
          `${BASE}/${name}${options?.subresource ? `/${options.subresource}` : ''}`,
          body,
          'application/merge-patch+json',
        ),
      );
    },
    list: unsupported,
    create: unsupported,
    delete: unsupported,
    watch: unsupported,
    requestCount: 0,
  } as KubeApi;
}

/** The admin's requests. */
const admin: Send = (method, apiPath, body, contentType) => controlPlane.request(method, apiPath, body, contentType);

/** Writes status as someone else would (the framework, a person), without recomputing the summary. */
async function patchStatus(name: string, body: object): Promise<void> {
  const response = await controlPlane.request('PATCH', `${BASE}/${name}/status`, body, 'application/merge-patch+json');
  expect(response.status, response.text).toBe(200);
}

async function readyOf(name: string): Promise<string | undefined> {
  return ((await read(name)).status as { ready?: string } | undefined)?.ready;
}

async function read(name: string): Promise<StaticRouteObject> {
  return (await controlPlane.request<StaticRouteObject>('GET', `${BASE}/${name}`)).body;
}

beforeAll(async () => {
  controlPlane = await startControlPlane();
  await controlPlane.kubectl(['apply', '-f', path.join(REPO_DIR, 'deploy/crd.yaml')]);
  await controlPlane.kubectl(['wait', '--for=condition=Established', 'crd/staticroutes.networking.digitalocean.com']);
});

afterAll(async () => {
  await controlPlane?.stop();
});

describe('StatusWriter', () => {
  const nodeNames = Array.from({ length: 12 }, (_, index) => `node-${index + 1}`);
  const inventory = new Map(nodeNames.map((name) => [name, { 'kubernetes.io/hostname': name }]));
  const applied: NodeOutcome = { state: 'Applied', message: '1/1 routes applied', routes: 1 };

  async function createStaticRoute(name: string, destination: string): Promise<void> {
    await controlPlane.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'networking.digitalocean.com/v1',
        kind: 'StaticRoute',
        metadata: { name },
        spec: { destinations: [destination], gateway: '10.116.0.5' },
      }),
    });
  }

  it.each([1, 2, 3])('twelve nodes reporting at once converge on READY 12/12 (round %i)', async (round) => {
    const name = `concurrent-${round}`;
    await createStaticRoute(name, '198.51.100.1');
    const object = await read(name);
    // No watch feeds these writers: each node's own check after its entry write (at its turn) must be enough.
    const writers = nodeNames.map(
      (node) => new StatusWriter(apiFor(admin), node, quiet, () => inventory, { refreshStepMs: 50 }),
    );
    for (const writer of writers) writer.report(object, applied);
    await Promise.all(writers.map((writer) => writer.flush()));
    const final = (await read(name)) as StaticRouteObject & {
      status: {
        ready: string;
        nodes: Record<string, { state: string }>;
        conditions: Array<{ type: string; status: string }>;
      };
    };
    expect(Object.keys(final.status.nodes).sort()).toEqual([...nodeNames].sort());
    expect(final.status.ready).toBe('12/12');
    expect(final.status.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    // At most one summary write per node: writing it with every entry made the writers contend, each 409 bringing
    // a re-read and another write.
    expect(summaryWrites.get(name)).toBeLessThanOrEqual(nodeNames.length);
  });

  it('a summary made stale by someone else is fixed on the next event (refresh)', async () => {
    const name = 'concurrent-1';
    // Another writer (e.g. the framework removing a dead node's entry) changes entries without the summary.
    await patchStatus(name, { status: { nodes: { 'node-12': null } } });
    const writer = new StatusWriter(apiFor(admin), 'node-1', quiet, () => inventory);
    writer.refresh(await read(name));
    await writer.flush();
    const final = (await read(name)) as StaticRouteObject & { status: { ready: string } };
    expect(final.status.ready).toBe('11/12');
  });

  it('twelve nodes seeing the same stale summary: the first in rank fixes it, the others only check', async () => {
    const name = 'stale-summary';
    await createStaticRoute(name, '198.51.100.2');
    const entries = Object.fromEntries(
      nodeNames.map((node) => [
        node,
        {
          state: 'Applied',
          message: '1/1 routes applied',
          observedGeneration: 1,
          lastUpdateTime: '2025-01-01T00:00:00Z',
        },
      ]),
    );
    // Entries written by others, summary not recomputed: every node's watch delivers this.
    await patchStatus(name, { status: { nodes: entries, ready: '0/12' } });
    const stale = await read(name);
    // A step far longer than the test: only node-1 (rank 0) may write before the others see its fix.
    const writers = nodeNames.map(
      (node) => new StatusWriter(apiFor(admin), node, quiet, () => inventory, { refreshStepMs: 600_000 }),
    );
    for (const writer of writers) writer.refresh(stale);
    await writers[0]?.flush();
    const fixed = await read(name);
    expect((fixed as StaticRouteObject & { status: { ready: string } }).status.ready).toBe('12/12');
    // The fix reaches everyone (their watch): the pending checks find the summary right and end without a write.
    for (const writer of writers) writer.refresh(fixed);
    await Promise.all(writers.map((writer) => writer.flush()));
    expect(summaryWrites.get(name)).toBe(1);
  });

  it('entries reported within the settling delay cost one summary write', async () => {
    const name = 'settled';
    await createStaticRoute(name, '198.51.100.4');
    const copies: StaticRouteObject[] = [];
    for (const node of nodeNames) {
      await patchStatus(name, {
        status: { nodes: { [node]: { state: 'Applied', message: '1/1 routes applied', observedGeneration: 1 } } },
      });
      copies.push(await read(name));
    }
    const writer = new StatusWriter(apiFor(admin), 'node-1', quiet, () => inventory);
    // The watch events of the twelve entry writes arrive close together (here: at once).
    for (const copy of copies) writer.refresh(copy);
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(1);
    expect(await readyOf(name)).toBe('12/12');
  });

  it('a node later in rank fixes a stale summary when nobody before it does', async () => {
    const name = 'stale-summary';
    await patchStatus(name, { status: { ready: '0/12' } });
    const writer = new StatusWriter(apiFor(admin), 'node-5', quiet, () => inventory, { refreshStepMs: 50 });
    writer.refresh(await read(name));
    await writer.flush();
    expect(await readyOf(name)).toBe('12/12');
  });

  it('a later node does not write while someone before it keeps writing the summary', async () => {
    const name = 'kept-up';
    await createStaticRoute(name, '198.51.100.5');
    const writes = () => summaryWrites.get(name) ?? 0;
    // node-10 ranks second (names sort as strings): its turn comes 1.5 s after the event, unless a summary write by
    // someone else restarts it.
    const writer = new StatusWriter(apiFor(admin), 'node-10', quiet, () => inventory, {
      refreshSettleMs: 0,
      refreshStepMs: 1_500,
    });
    // For 4.5 s (three of its turns), the first node writes a new (still incomplete) summary every 150 ms or so, as
    // it does while entries keep arriving.
    const until = Date.now() + 4_500;
    for (let count = 0; Date.now() < until; count++) {
      await patchStatus(name, { status: { ready: `${count % 12}/12` } });
      writer.refresh(await read(name));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(writes(), 'summary writes by node-10 while the first node kept it up').toBe(0);
    // The first node stops: node-10 writes at its turn.
    await writer.flush();
    expect(writes()).toBe(1);
    expect(await readyOf(name)).toBe('0/12');
  });

  it('a node whose Node list does not follow the cluster writes no summary until it does', async () => {
    const name = 'stale-view';
    await createStaticRoute(name, '198.51.100.6');
    let current = false;
    const writer = new StatusWriter(apiFor(admin), 'node-1', quiet, () => inventory, {
      refreshSettleMs: 0,
      refreshStepMs: 50,
      nodeViewCurrent: () => current,
    });
    writer.refresh(await read(name));
    // Many turns pass while its Node watch reconnects: it only defers.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(summaryWrites.get(name) ?? 0).toBe(0);
    current = true;
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(1);
    expect(await readyOf(name)).toBe('0/12');
  });

  it('a check that meets a newer write (409) leaves the summary to the check of that write', async () => {
    const name = 'stale-summary';
    await patchStatus(name, { status: { ready: '0/12' } });
    const seen = await read(name);
    // A newer write the writer has not seen yet (its watch event is still to come).
    await patchStatus(name, { status: { note: 'someone else' } });
    const writes = summaryWrites.get(name) ?? 0;
    const writer = new StatusWriter(apiFor(admin), 'node-1', quiet, () => inventory);
    writer.refresh(seen);
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(writes + 1);
    expect(await readyOf(name)).toBe('0/12');
    // The newer write's event arrives: its check fixes the summary.
    writer.refresh(await read(name));
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(writes + 2);
    expect(await readyOf(name)).toBe('12/12');
  });

  it("a node's entry overwritten by someone else is written again on the next event", async () => {
    const name = 'forged';
    await createStaticRoute(name, '198.51.100.7');
    const writer = new StatusWriter(apiFor(admin), 'node-3', quiet, () => inventory);
    writer.report(await read(name), applied);
    await writer.flush();
    // A user writes status claiming something else for node-3.
    await patchStatus(name, {
      status: { nodes: { 'node-3': { state: 'Failed', message: 'forged', lastUpdateTime: 'x' } } },
    });
    writer.refresh(await read(name));
    await writer.flush();
    const entry = ((await read(name)).status as { nodes: Record<string, { state: string; message: string }> }).nodes[
      'node-3'
    ];
    expect(entry).toMatchObject({ state: 'Applied', message: applied.message });
  });

  it('does not rewrite an unchanged entry', async () => {
    const name = 'concurrent-2';
    const before = await read(name);
    const writer = new StatusWriter(apiFor(admin), 'node-3', quiet, () => inventory);
    writer.report(before, applied);
    await writer.flush();
    expect((await read(name)).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('an entry write refused while a summary check is queued is retried, not dropped', async () => {
    const name = 'refused-entry';
    await createStaticRoute(name, '198.51.100.3');
    const object = await read(name);
    // A ServiceAccount that may not write status yet: every write is refused (403) until the binding exists.
    const token = await controlPlane.mintToken('default', 'status-writer');
    const credentials = { server: controlPlane.server, caPem: controlPlane.caPem, token };
    const serviceAccount: Send = (method, apiPath, body, contentType) =>
      apiRequest(credentials, method, apiPath, body, { contentType });
    const writer = new StatusWriter(apiFor(serviceAccount), 'node-1', quiet, () => inventory, { refreshSettleMs: 0 });
    writer.report(object, applied);
    // A watch event arrives while the entry write is on the wire: the first node in rank queues a summary check.
    writer.refresh(object);
    await writer.flush();
    expect((await read(name)).status, 'nothing could be written yet').toBeUndefined();
    await controlPlane.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRole',
            metadata: { name: 'staticroute-status-writer' },
            rules: [
              { apiGroups: ['networking.digitalocean.com'], resources: ['staticroutes/status'], verbs: ['patch'] },
            ],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRoleBinding',
            metadata: { name: 'staticroute-status-writer' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'staticroute-status-writer' },
            subjects: [{ kind: 'ServiceAccount', name: 'status-writer', namespace: 'default' }],
          },
        ],
      }),
    });
    // The writer retries with backoff on its own (up to 10 s apart); no further report or event comes.
    const deadline = Date.now() + 60_000;
    let entry: unknown;
    while (entry === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      entry = ((await read(name)).status as { nodes?: Record<string, unknown> } | undefined)?.nodes?.['node-1'];
    }
    writer.stop();
    expect(entry, 'the entry refused first was written once allowed').toMatchObject({ state: 'Applied' });
  });
});
