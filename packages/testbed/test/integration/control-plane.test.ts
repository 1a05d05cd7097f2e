/**
 * The control plane behaves like a real cluster's API server in everything operators rely on: CRDs with status
 * subresource, CEL validation and printer columns; ordered watches; status patches; finalizers; RBAC with
 * TokenRequest tokens; restarts and etcd compaction.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import https from 'node:https';
import { openWatch, waitFor } from './helpers.js';

const group = 'testbed.opkit.dev';
const widgets = `/apis/${group}/v1/namespaces/default/widgets`;

const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.${group}
spec:
  group: ${group}
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      additionalPrinterColumns:
        - { name: Size, type: integer, jsonPath: .spec.size }
        - { name: Phase, type: string, jsonPath: .status.phase }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
                color: { type: string }
              x-kubernetes-validations:
                - rule: self.size <= 10
                  message: size must be at most 10
            status:
              type: object
              properties:
                phase: { type: string }
`;

function widget(name: string, size: number, finalizers?: string[]): string {
  return JSON.stringify({
    apiVersion: `${group}/v1`,
    kind: 'Widget',
    metadata: { name, namespace: 'default', ...(finalizers ? { finalizers } : {}) },
    spec: { size, color: 'blue' },
  });
}

interface Widget {
  metadata: { name: string; resourceVersion: string; generation: number; deletionTimestamp?: string };
  spec: { size: number; color: string };
  status?: { phase?: string };
}

let controlPlane: ControlPlane;

/** Status code of a GET with `token` (no kubectl in between). */
function fetchWithToken(target: ControlPlane, token: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get(
        new URL(path, target.server),
        { ca: target.caPem, headers: { authorization: `Bearer ${token}` } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      )
      .once('error', reject);
  });
}

beforeAll(async () => {
  controlPlane = await startControlPlane();
  await controlPlane.kubectl(['apply', '-f', '-'], { input: crd });
  await controlPlane.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/widgets.${group}`]);
  // kubectl's discovery may lag behind the CRD for a moment.
  await waitFor(
    'widgets served',
    async () => (await controlPlane.kubectl(['get', 'widgets'], { allowFailure: true })).code === 0,
  );
});

afterAll(async () => {
  await controlPlane?.stop();
});

describe('custom resources', () => {
  test('an object breaking the CEL rule is refused with the rule message', async () => {
    const result = await controlPlane.kubectl(['create', '-f', '-'], {
      input: widget('too-big', 11),
      allowFailure: true,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('size must be at most 10');
    const lookup = await controlPlane.request('GET', `${widgets}/too-big`);
    expect(lookup.status).toBe(404);
  });

  test('printer columns show spec and status fields', async () => {
    await controlPlane.kubectl(['create', '-f', '-'], { input: widget('printed', 3) });
    await controlPlane.request('PATCH', `${widgets}/printed/status`, { status: { phase: 'Shiny' } });
    const { stdout } = await controlPlane.kubectl(['get', 'widgets', 'printed']);
    const [header, row] = stdout.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'SIZE', 'PHASE']);
    expect(row?.split(/\s+/).slice(0, 3)).toEqual(['printed', '3', 'Shiny']);
  });

  test('watch delivers create, patch, status patch and delete in order', async () => {
    const list = await controlPlane.request<{ metadata: { resourceVersion: string } }>('GET', widgets);
    const watch = await openWatch(
      controlPlane,
      `${widgets}?watch=1&resourceVersion=${list.body.metadata.resourceVersion}`,
    );
    try {
      await controlPlane.kubectl(['create', '-f', '-'], { input: widget('watched', 1) });
      await controlPlane.kubectl(['patch', 'widget', 'watched', '--type=merge', '-p', '{"spec":{"size":2}}']);
      await controlPlane.request('PATCH', `${widgets}/watched/status`, { status: { phase: 'Done' } });
      await controlPlane.kubectl(['delete', 'widget', 'watched']);
      const mine = (): typeof watch.events => watch.events.filter((event) => event.object.metadata?.name === 'watched');
      await waitFor('four watch events', () => mine().length >= 4);
      const events = mine();
      expect(events.map((event) => event.type)).toEqual(['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED']);
      expect(events[1]?.object.spec?.size).toBe(2);
      expect(events[2]?.object.status?.phase).toBe('Done');
      const versions = events.map((event) => Number(event.object.metadata?.resourceVersion));
      expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    } finally {
      watch.close();
    }
  });

  test('a status patch changes status only, never spec or generation', async () => {
    const created = await controlPlane.request<Widget>('POST', widgets, widget('statusful', 4));
    expect(created.status).toBe(201);
    const patched = await controlPlane.request<Widget>('PATCH', `${widgets}/statusful/status`, {
      spec: { size: 9 },
      status: { phase: 'Ready' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.status?.phase).toBe('Ready');
    expect(patched.body.spec.size).toBe(4);
    expect(patched.body.metadata.generation).toBe(created.body.metadata.generation);
  });

  test('a finalizer keeps a deleted object until it is removed', async () => {
    await controlPlane.request('POST', widgets, widget('held', 1, [`${group}/hold`]));
    const deletion = await controlPlane.request('DELETE', `${widgets}/held`);
    expect(deletion.status).toBe(200);
    const held = await controlPlane.request<Widget>('GET', `${widgets}/held`);
    expect(held.status).toBe(200);
    expect(held.body.metadata.deletionTimestamp).toBeTruthy();
    await controlPlane.request('PATCH', `${widgets}/held`, { metadata: { finalizers: null } });
    const gone = await controlPlane.request('GET', `${widgets}/held`);
    expect(gone.status).toBe(404);
  });
});

describe('RBAC with TokenRequest tokens', () => {
  test('a service account token may do what its ClusterRole grants and nothing else', async () => {
    await controlPlane.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: widget-reader }
rules:
  - { apiGroups: ['${group}'], resources: [widgets], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: widget-reader }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widget-reader }
subjects:
  - { kind: ServiceAccount, name: reader, namespace: rbac-test }
`,
    });
    const token = await controlPlane.mintToken('rbac-test', 'reader', { expirationSeconds: 600 });
    const kubeconfig = await controlPlane.writeKubeconfig({ token });
    const allowed = await controlPlane.kubectl(['get', 'widgets', '-n', 'default'], { kubeconfig });
    expect(allowed.code).toBe(0);
    const forbiddenWrite = await controlPlane.kubectl(['create', '-f', '-'], {
      kubeconfig,
      input: widget('not-yours', 1),
      allowFailure: true,
    });
    expect(forbiddenWrite.code).not.toBe(0);
    expect(forbiddenWrite.stderr).toMatch(/forbidden/i);
    const forbiddenRead = await controlPlane.kubectl(['get', 'configmaps', '-n', 'default'], {
      kubeconfig,
      allowFailure: true,
    });
    expect(forbiddenRead.stderr).toMatch(/forbidden/i);
    expect(forbiddenRead.code).not.toBe(0);
    const whoami = await controlPlane.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
      kubeconfig,
    });
    expect(whoami.stdout).toBe('system:serviceaccount:rbac-test:reader');
    const raw = await fetchWithToken(controlPlane, token, '/api/v1/namespaces/default/secrets');
    expect(raw).toBe(403);
  });
});

describe('disruptions', () => {
  test('restartApiServer keeps the port and the data', async () => {
    await controlPlane.request('POST', widgets, widget('survivor', 5));
    const before = controlPlane.server;
    await controlPlane.restartApiServer();
    expect(controlPlane.server).toBe(before);
    const { stdout } = await controlPlane.kubectl(['get', 'widget', 'survivor', '-o', 'jsonpath={.spec.size}']);
    expect(stdout).toBe('5');
  });

  test('restartEtcd keeps the data and the API server recovers', async () => {
    await controlPlane.request('POST', widgets, widget('etcd-survivor', 6));
    await controlPlane.restartEtcd();
    const lookup = await controlPlane.request<Widget>('GET', `${widgets}/etcd-survivor`);
    expect(lookup.body.spec.size).toBe(6);
    const write = await controlPlane.request('POST', widgets, widget('after-etcd-restart', 1));
    expect(write.status).toBe(201);
  });

  test('after compactEtcd a watch from an older resourceVersion gets 410 Gone', async () => {
    const created = await controlPlane.request<Widget>('POST', widgets, widget('compacted', 1));
    const oldVersion = created.body.metadata.resourceVersion;
    for (const size of [2, 3, 4]) await controlPlane.request('PATCH', `${widgets}/compacted`, { spec: { size } });
    await controlPlane.compactEtcd();
    // Right after the restart that flushes the watch cache, the cache may still be initializing (429, retry).
    const watch = await waitFor('a watch the API server accepts', async () => {
      const attempt = await openWatch(
        controlPlane,
        `${widgets}?watch=1&resourceVersion=${oldVersion}&timeoutSeconds=5`,
      );
      await attempt.ended;
      return attempt.status === 429 ? undefined : attempt;
    });
    const gone =
      watch.status === 410 || watch.events.some((event) => event.type === 'ERROR' && event.object.code === 410);
    expect(gone, JSON.stringify(watch.events)).toBe(true);
    // Current versions still work.
    const list = await controlPlane.request('GET', widgets);
    expect(list.status).toBe(200);
  });
});

test('without the watch cache, compaction alone makes old watches fail with 410 and open watches stay', async () => {
  // The flag form (rather than `watchCache: false`) is what callers pass through extraApiServerFlags.
  const uncached = await startControlPlane({ extraApiServerFlags: ['--watch-cache=false'] });
  try {
    const configMaps = '/api/v1/namespaces/default/configmaps';
    const created = await uncached.request<Widget>('POST', configMaps, { metadata: { name: 'c' }, data: { v: '0' } });
    const patched = await uncached.request<Widget>('PATCH', `${configMaps}/c`, { data: { v: '1' } });
    const current = await openWatch(
      uncached,
      `${configMaps}?watch=1&resourceVersion=${patched.body.metadata.resourceVersion}`,
    );
    await uncached.compactEtcd();
    const old = await openWatch(
      uncached,
      `${configMaps}?watch=1&resourceVersion=${created.body.metadata.resourceVersion}`,
    );
    await old.ended;
    expect(
      old.events.map((event) => [event.type, event.object.code]),
      JSON.stringify(old.events),
    ).toEqual([['ERROR', 410]]);
    // No restart happened: the watch from the newest version is still open and sees new changes.
    await uncached.request('PATCH', `${configMaps}/c`, { data: { v: '2' } });
    await waitFor('the open watch to see the change', () => current.events.some((event) => event.type === 'MODIFIED'));
    current.close();
  } finally {
    await uncached.stop();
  }
});
