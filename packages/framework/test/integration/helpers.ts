/**
 * Shared helpers of the framework's integration tests: a real control plane (from @opkit/testbed), a test CRD,
 * an admin API client, and small utilities. Never a fake API server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';

export const GROUP = 'test.opkit.dev';

/** Options of {@link crdManifest}. */
export interface CrdOptions {
  statusSubresource?: boolean;
  namespaced?: boolean;
}

/** A permissive CRD (any spec and status) for `plural`/`kind` in the test group. */
export function crdManifest(plural: string, kind: string, options: CrdOptions = {}): string {
  return JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: options.namespaced ? 'Namespaced' : 'Cluster',
      names: { plural, singular: kind.toLowerCase(), kind },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          ...(options.statusSubresource === false ? {} : { subresources: { status: {} } }),
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  });
}

/** The resource ref of a test CRD. */
export function testRef(plural: string, namespaced = false): ResourceRef {
  return { group: GROUP, version: 'v1', plural, namespaced };
}

/** One control plane for a test file, with an admin client. */
export interface TestCluster {
  cp: ControlPlane;
  api: KubeClient;
  kubeconfigPath: string;
  /** Installs a CRD and waits until it is served. */
  installCrd(plural: string, kind: string, options?: CrdOptions): Promise<ResourceRef>;
  /** A fresh temporary directory (removed by `stop`). */
  tempDir(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts a control plane. */
export async function startCluster(): Promise<TestCluster> {
  const cp = await startControlPlane();
  const api = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
  const dirs: string[] = [];
  return {
    cp,
    api,
    kubeconfigPath: cp.kubeconfigPath,
    async installCrd(plural, kind, options = {}) {
      await cp.kubectl(['apply', '-f', '-'], { input: crdManifest(plural, kind, options) });
      await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${plural}.${GROUP}`]);
      const ref = testRef(plural, options.namespaced);
      // Established can precede serving by a moment; list until it answers.
      await until(async () => {
        await api.list(ref);
        return true;
      });
      return ref;
    },
    async tempDir(name) {
      const dir = await mkdtemp(join(tmpdir(), `opkit-${name}-`));
      dirs.push(dir);
      return dir;
    },
    async stop() {
      api.close();
      await cp.stop();
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

/** Polls `check` until it returns truthy; throws after `timeoutMs` with the last error. */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Exclude<T, false | 0 | '' | null | undefined>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out: ${last instanceof Error ? last.message : String(last)}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A manually opened gate that handlers wait on, so tests control when a handler returns. */
export class Gate {
  private opened = false;
  private waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return this.opened ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
  open(): void {
    this.opened = true;
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/** Shorthand: a cluster-scoped test object. */
export function testObject(
  kind: string,
  name: string,
  spec: unknown,
  metadata: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: `${GROUP}/v1`,
    kind,
    metadata: { name, ...metadata } as KubeObject['metadata'],
    spec,
  };
}

/** A JSON merge patch of the spec. */
export function specPatch(spec: Record<string, unknown>): { spec: Record<string, unknown> } {
  return { spec };
}
