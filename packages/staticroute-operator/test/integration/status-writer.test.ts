/**
 * The status summary converges when many nodes report at the same moment: every writer patches its own entry, and
 * the shared `status.ready` / conditions are written only with a resourceVersion precondition.
 * Real API server; twelve StatusWriters stand in for twelve nodes.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, type KubeApi, type KubeObject, type Logger, type ResourceRef } from 'opkit';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { StatusWriter } from '../../src/handlers/status-writer.js';
import type { StaticRouteObject } from '../../src/logic/spec.js';
import type { NodeOutcome } from '../../src/logic/status.js';
import { REPO_DIR } from '../support/build.js';

let controlPlane: ControlPlane;
const BASE = '/apis/networking.digitalocean.com/v1/staticroutes';
const quiet = { warn: () => undefined, info: () => undefined, debug: () => undefined } as unknown as Logger;

/** Summary writes (merge patches with a resourceVersion precondition) sent so far, per object. */
const summaryWrites = new Map<string, number>();

/** The two verbs StatusWriter uses, over the test bed's admin client (the API server itself is real). */
function apiFor(cp: ControlPlane): KubeApi {
  const check = <T>(response: { status: number; body: unknown; text: string }): T => {
    if (response.status >= 400) throw new ApiError(response.status, response.text);
    return response.body as T;
  };
  const unsupported = () => Promise.reject(new Error('not used by StatusWriter'));
  return {
    get: async <T extends KubeObject>(_ref: ResourceRef, name: string) =>
      check<T>(await cp.request('GET', `${BASE}/${name}`)),
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
        await cp.request(
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

  it.each([1, 2, 3])('twelve nodes reporting at once converge on READY 12/12 (round %i)', async (round) => {
    const name = `concurrent-${round}`;
    await controlPlane.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'networking.digitalocean.com/v1',
        kind: 'StaticRoute',
        metadata: { name },
        spec: { destinations: ['198.51.100.1'], gateway: '10.116.0.5' },
      }),
    });
    const object = await read(name);
    const writers = nodeNames.map((node) => new StatusWriter(apiFor(controlPlane), node, quiet, () => inventory));
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
  });

  it('a summary made stale by someone else is fixed on the next event (refresh)', async () => {
    const name = 'concurrent-1';
    // Another writer (e.g. the framework removing a dead node's entry) changes entries without the summary.
    await controlPlane.request(
      'PATCH',
      `${BASE}/${name}/status`,
      { status: { nodes: { 'node-12': null } } },
      'application/merge-patch+json',
    );
    const writer = new StatusWriter(apiFor(controlPlane), 'node-1', quiet, () => inventory);
    writer.refresh(await read(name));
    await writer.flush();
    const final = (await read(name)) as StaticRouteObject & { status: { ready: string } };
    expect(final.status.ready).toBe('11/12');
  });

  it('twelve nodes seeing the same stale summary: the first in rank fixes it, the others only check', async () => {
    const name = 'stale-summary';
    await controlPlane.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'networking.digitalocean.com/v1',
        kind: 'StaticRoute',
        metadata: { name },
        spec: { destinations: ['198.51.100.2'], gateway: '10.116.0.5' },
      }),
    });
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
    await controlPlane.request(
      'PATCH',
      `${BASE}/${name}/status`,
      { status: { nodes: entries, ready: '0/12' } },
      'application/merge-patch+json',
    );
    const stale = await read(name);
    // A step far longer than the test: only node-1 (rank 0) may write before the others see its fix.
    const writers = nodeNames.map(
      (node) => new StatusWriter(apiFor(controlPlane), node, quiet, () => inventory, { refreshStepMs: 600_000 }),
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

  it('a node later in rank fixes a stale summary when nobody before it does', async () => {
    const name = 'stale-summary';
    await controlPlane.request(
      'PATCH',
      `${BASE}/${name}/status`,
      { status: { ready: '0/12' } },
      'application/merge-patch+json',
    );
    const writer = new StatusWriter(apiFor(controlPlane), 'node-5', quiet, () => inventory, { refreshStepMs: 50 });
    writer.refresh(await read(name));
    await writer.flush();
    expect(((await read(name)) as StaticRouteObject & { status: { ready: string } }).status.ready).toBe('12/12');
  });

  it('a check that meets a newer write (409) leaves the summary to the check of that write', async () => {
    const name = 'stale-summary';
    await controlPlane.request(
      'PATCH',
      `${BASE}/${name}/status`,
      { status: { ready: '0/12' } },
      'application/merge-patch+json',
    );
    const seen = await read(name);
    // A newer write the writer has not seen yet (its watch event is still to come).
    await controlPlane.request(
      'PATCH',
      `${BASE}/${name}/status`,
      { status: { note: 'someone else' } },
      'application/merge-patch+json',
    );
    const writes = summaryWrites.get(name) ?? 0;
    const writer = new StatusWriter(apiFor(controlPlane), 'node-1', quiet, () => inventory);
    writer.refresh(seen);
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(writes + 1);
    expect(((await read(name)) as StaticRouteObject & { status: { ready: string } }).status.ready).toBe('0/12');
    // The newer write's event arrives: its check fixes the summary.
    writer.refresh(await read(name));
    await writer.flush();
    expect(summaryWrites.get(name)).toBe(writes + 2);
    expect(((await read(name)) as StaticRouteObject & { status: { ready: string } }).status.ready).toBe('12/12');
  });

  it('does not rewrite an unchanged entry', async () => {
    const name = 'concurrent-2';
    const before = await read(name);
    const writer = new StatusWriter(apiFor(controlPlane), 'node-3', quiet, () => inventory);
    writer.report(before, applied);
    await writer.flush();
    expect((await read(name)).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });
});
