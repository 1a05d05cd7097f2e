import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { credentialWorkerSource, resolveCredentials, type ClusterCredentials } from '../../src/kube/credentials.js';
import { ApiError } from '../../src/kube/types.js';
import { CONFIGMAPS, WIDGETS, ensureNamespace, installWidgetCrd, waitFor, type Widget } from './kube-fixtures.js';

let cp: ControlPlane;
let api: KubeClient;

beforeAll(async () => {
  cp = await startControlPlane();
  await installWidgetCrd(cp);
  await ensureNamespace(cp, 'crud');
  api = createKubeApi({ credentials: () => resolveCredentials({ kubeconfigPath: cp.kubeconfigPath }) });
});

afterAll(async () => {
  api?.close();
  await cp?.stop();
});

describe('resolveCredentials (client-node in a worker)', () => {
  it('reads the admin kubeconfig: server, CA and token', async () => {
    const creds = await resolveCredentials({ kubeconfigPath: cp.kubeconfigPath });
    expect(creds.server).toBe(cp.server);
    expect(creds.ca?.trim()).toBe(cp.caPem.trim());
    expect(creds.token).toBe(cp.adminToken);
  });

  it('reads a minted ServiceAccount token kubeconfig, and the API accepts it as that ServiceAccount', async () => {
    const token = await cp.mintToken('creds-test', 'reader');
    const kubeconfigPath = await cp.writeKubeconfig({ token });
    const creds = await resolveCredentials({ kubeconfigPath });
    expect(creds.token).toBe(token);
    const saApi = createKubeApi({ credentials: creds });
    try {
      // No RBAC grants for this account: a 403 naming the ServiceAccount proves the token authenticated.
      const err = await saApi.list(CONFIGMAPS, { namespace: 'creds-test' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).statusCode).toBe(403);
      expect((err as ApiError).message).toContain('system:serviceaccount:creds-test:reader');
    } finally {
      saApi.close();
    }
  });

  it('resolves the same in a worker thread, also when workers evaluate their code as modules', async () => {
    const viaWorker = await resolveCredentials({ kubeconfigPath: cp.kubeconfigPath, isolation: 'worker' });
    expect(viaWorker).toEqual(await resolveCredentials({ kubeconfigPath: cp.kubeconfigPath }));
    // A process started with --input-type=module passes it on to its workers: the resolver must not need `require`.
    const reply = await new Promise((resolve, reject) => {
      const worker = new Worker(credentialWorkerSource, {
        eval: true,
        execArgv: ['--input-type=module'],
        workerData: {
          clientNodeUrl: pathToFileURL(createRequire(import.meta.url).resolve('@kubernetes/client-node')).href,
          kubeconfigPath: cp.kubeconfigPath,
        },
      });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(reply).toMatchObject({ ok: true, credentials: { server: cp.server, token: cp.adminToken } });
  });

  it('rejects with a clear error for a missing kubeconfig, in both isolations', async () => {
    for (const isolation of ['process', 'worker'] as const) {
      await expect(resolveCredentials({ kubeconfigPath: '/nonexistent/kubeconfig', isolation })).rejects.toThrow(
        /cannot resolve Kubernetes credentials: .*nonexistent/,
      );
    }
  });

  it('honours an explicit context', async () => {
    await expect(resolveCredentials({ kubeconfigPath: cp.kubeconfigPath, context: 'nope' })).rejects.toThrow();
    const creds = await resolveCredentials({ kubeconfigPath: cp.kubeconfigPath, context: 'testbed' });
    expect(creds.server).toBe(cp.server);
  });
});

describe('createKubeApi', () => {
  it('creates, gets, lists, merge-patches, json-patches and deletes', async () => {
    const created = await api.create<Widget>(
      WIDGETS,
      { apiVersion: 'kubetest.opkit.dev/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 1 } },
      'crud',
    );
    expect(created.metadata.uid).toBeTruthy();
    const got = await api.get<Widget>(WIDGETS, 'w1', 'crud');
    expect(got.spec).toEqual({ size: 1 });

    const merged = await api.patch<Widget>(WIDGETS, 'w1', { spec: { color: 'red' } }, { namespace: 'crud' });
    expect(merged.spec).toEqual({ size: 1, color: 'red' });

    const jsonPatched = await api.patch<Widget>(
      WIDGETS,
      'w1',
      [
        { op: 'test', path: '/spec/size', value: 1 },
        { op: 'replace', path: '/spec/size', value: 2 },
      ],
      { namespace: 'crud', type: 'json' },
    );
    expect(jsonPatched.spec).toEqual({ size: 2, color: 'red' });

    const list = await api.list<Widget>(WIDGETS, { namespace: 'crud' });
    expect(list.items.map((w) => w.metadata.name)).toEqual(['w1']);
    expect(list.metadata.resourceVersion).toBeTruthy();

    await api.delete(WIDGETS, 'w1', 'crud');
    const gone = await api.get(WIDGETS, 'w1', 'crud').catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(ApiError);
    expect((gone as ApiError).statusCode).toBe(404);
    expect((gone as ApiError).reason).toBe('NotFound');
  });

  it('lists from the API server cache with resourceVersion 0, and sends the version given', async () => {
    await api.create(
      WIDGETS,
      { apiVersion: 'kubetest.opkit.dev/v1', kind: 'Widget', metadata: { name: 'cached' } },
      'crud',
    );
    const cached = await waitFor(async () => {
      const list = await api.list<Widget>(WIDGETS, { namespace: 'crud', resourceVersion: '0' });
      return list.items.some((w) => w.metadata.name === 'cached') ? list : undefined;
    }, 'the cached list to show the new object');
    expect(cached.metadata.resourceVersion).toBeTruthy();
    // The parameter reaches the server: a malformed version is refused.
    const refused = await api.list(WIDGETS, { namespace: 'crud', resourceVersion: 'not-a-version' }).catch((e) => e);
    expect(refused).toBeInstanceOf(ApiError);
    await api.delete(WIDGETS, 'cached', 'crud');
  });

  it('writes status only through the status subresource', async () => {
    await api.create(
      WIDGETS,
      { apiVersion: 'kubetest.opkit.dev/v1', kind: 'Widget', metadata: { name: 'w2' } },
      'crud',
    );
    // The main resource ignores status changes when a status subresource exists...
    const viaMain = await api.patch<Widget>(WIDGETS, 'w2', { status: { phase: 'Main' } }, { namespace: 'crud' });
    expect(viaMain.status?.phase).toBeUndefined();
    // ...and the subresource ignores spec changes.
    const viaStatus = await api.patch<Widget>(
      WIDGETS,
      'w2',
      { status: { phase: 'Ready' }, spec: { size: 9 } },
      { namespace: 'crud', subresource: 'status' },
    );
    expect(viaStatus.status?.phase).toBe('Ready');
    expect(viaStatus.spec?.size).toBeUndefined();
  });

  it('reports a failed json patch test as 422 with the API message', async () => {
    await api.create(
      WIDGETS,
      { apiVersion: 'kubetest.opkit.dev/v1', kind: 'Widget', metadata: { name: 'w3' }, spec: { size: 1 } },
      'crud',
    );
    const err = await api
      .patch(WIDGETS, 'w3', [{ op: 'test', path: '/spec/size', value: 5 }], { namespace: 'crud', type: 'json' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).statusCode).toBe(422);
  });

  it('reports a conflicting create as 409 AlreadyExists', async () => {
    const body = { metadata: { name: 'dup' }, data: { a: '1' } };
    await api.create(CONFIGMAPS, body, 'crud');
    const err = await api.create(CONFIGMAPS, body, 'crud').catch((e: unknown) => e);
    expect((err as ApiError).statusCode).toBe(409);
    expect((err as ApiError).reason).toBe('AlreadyExists');
  });

  it('counts requests and reports each through onRequest with its verb', async () => {
    const verbs: string[] = [];
    const counted = createKubeApi({
      credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken },
      onRequest: (verb) => verbs.push(verb),
    });
    try {
      await counted.create(CONFIGMAPS, { metadata: { name: 'counted' } }, 'crud');
      await counted.get(CONFIGMAPS, 'counted', 'crud');
      await counted.list(CONFIGMAPS, { namespace: 'crud' });
      await counted.patch(CONFIGMAPS, 'counted', { data: { x: 'y' } }, { namespace: 'crud' });
      await counted.delete(CONFIGMAPS, 'counted', 'crud');
      expect(verbs).toEqual(['create', 'get', 'list', 'patch', 'delete']);
      expect(counted.requestCount).toBe(5);
    } finally {
      counted.close();
    }
  });

  it('re-resolves credentials once on 401 and retries the request', async () => {
    const provided: ClusterCredentials[] = [
      { server: cp.server, ca: cp.caPem, token: 'not-a-valid-token' },
      { server: cp.server, ca: cp.caPem, token: cp.adminToken },
    ];
    let calls = 0;
    const rotating = createKubeApi({
      credentials: async () => provided[Math.min(calls++, provided.length - 1)]!,
    });
    try {
      const list = await rotating.list(CONFIGMAPS, { namespace: 'crud' });
      expect(Array.isArray(list.items)).toBe(true);
      expect(calls).toBe(2);
      expect(rotating.credentialResolutions).toBe(2);
      expect(rotating.requestCount).toBe(2);
    } finally {
      rotating.close();
    }
  });

  it('shares one re-resolve between concurrent requests that get 401', async () => {
    let calls = 0;
    const rotating = createKubeApi({
      credentials: async () => {
        calls += 1;
        return { server: cp.server, ca: cp.caPem, token: calls === 1 ? 'expired' : cp.adminToken };
      },
    });
    try {
      await Promise.all(Array.from({ length: 8 }, () => rotating.list(CONFIGMAPS, { namespace: 'crud' })));
      expect(calls).toBe(2);
    } finally {
      rotating.close();
    }
  });

  it('gives up after one re-resolve when the credentials stay bad', async () => {
    let calls = 0;
    const bad = createKubeApi({
      credentials: async () => {
        calls += 1;
        return { server: cp.server, ca: cp.caPem, token: 'still-bad' };
      },
    });
    try {
      const err = await bad.list(CONFIGMAPS, { namespace: 'crud' }).catch((e: unknown) => e);
      expect((err as ApiError).statusCode).toBe(401);
      expect(calls).toBe(2);
    } finally {
      bad.close();
    }
  });

  it('refuses a server certificate not signed by the given CA', async () => {
    const wrongCa = createKubeApi({ credentials: { server: cp.server, token: cp.adminToken } });
    try {
      await expect(wrongCa.list(CONFIGMAPS)).rejects.toThrow(/certificate/i);
    } finally {
      wrongCa.close();
    }
  });
});

/** Writes `content` and moves the mtime forward, so a change is visible even within the file system's granularity. */
async function rewrite(file: string, content: string): Promise<void> {
  await writeFile(file, content);
  const later = new Date(Date.now() + 2000);
  await utimes(file, later, later);
}

/** The identity the API server saw, from the 403 of an account without RBAC grants. */
async function forbiddenAs(client: KubeClient, namespace: string): Promise<string> {
  const err = await client.list(CONFIGMAPS, { namespace }).catch((e: unknown) => e);
  if (!(err instanceof ApiError) || err.statusCode !== 403) throw new Error(`expected 403, got ${String(err)}`);
  return /User "([^"]+)"/.exec(err.message)?.[1] ?? err.message;
}

describe('service-account token files and exec plugins', () => {
  let dir: string;
  const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'opkit-creds-'));
  });
  afterAll(async () => {
    process.env.KUBERNETES_SERVICE_HOST = savedEnv.host;
    process.env.KUBERNETES_SERVICE_PORT = savedEnv.port;
    if (savedEnv.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    if (savedEnv.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    await rm(dir, { recursive: true, force: true });
  });

  /** Lays out the in-cluster service-account files under a prefix, as the kubelet mounts them. */
  async function inClusterRoot(name: string, token: string): Promise<{ prefix: string; tokenFile: string }> {
    const prefix = path.join(dir, name);
    const saDir = path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
    await mkdir(saDir, { recursive: true });
    await writeFile(path.join(saDir, 'token'), token);
    await writeFile(path.join(saDir, 'ca.crt'), cp.caPem);
    await writeFile(path.join(saDir, 'namespace'), 'sa-test');
    const url = new URL(cp.server);
    process.env.KUBERNETES_SERVICE_HOST = url.hostname;
    process.env.KUBERNETES_SERVICE_PORT = url.port;
    return { prefix, tokenFile: path.join(saDir, 'token') };
  }

  it('resolves the in-cluster service account and re-reads the token file when the kubelet rotates it', async () => {
    const tokenA = await cp.mintToken('sa-test', 'rot-a');
    const tokenB = await cp.mintToken('sa-test', 'rot-b');
    const { prefix, tokenFile } = await inClusterRoot('rotate', tokenA);
    const creds = await resolveCredentials({ inCluster: { pathPrefix: prefix } });
    expect(creds).toMatchObject({ server: cp.server, tokenFile, token: tokenA });
    expect(creds.ca?.trim()).toBe(cp.caPem.trim());

    const client = createKubeApi({ credentials: creds, credentialFileCheckMs: 0 });
    try {
      expect(await forbiddenAs(client, 'sa-test')).toBe('system:serviceaccount:sa-test:rot-a');
      await rewrite(tokenFile, tokenB);
      expect(await forbiddenAs(client, 'sa-test')).toBe('system:serviceaccount:sa-test:rot-b');
    } finally {
      client.close();
    }
  });

  it('re-reads the token file on 401 even between periodic checks', async () => {
    const tokenC = await cp.mintToken('sa-test', 'rot-c');
    const tokenD = await cp.mintToken('sa-test', 'rot-d');
    const { prefix, tokenFile } = await inClusterRoot('on-401', tokenC);
    const creds = await resolveCredentials({ inCluster: { pathPrefix: prefix } });
    const client = createKubeApi({ credentials: creds, credentialFileCheckMs: 3_600_000 });
    try {
      expect(await forbiddenAs(client, 'sa-test')).toBe('system:serviceaccount:sa-test:rot-c');
      await rewrite(tokenFile, tokenD);
      // Deleting the ServiceAccount invalidates its bound tokens: the old token now gets 401.
      await cp.kubectl(['-n', 'sa-test', 'delete', 'serviceaccount', 'rot-c']);
      // The API server caches token reviews for a few seconds; wait until the old token is really refused.
      const oldToken = createKubeApi({ credentials: { server: cp.server, ca: cp.caPem, token: tokenC } });
      try {
        await waitFor(
          async () =>
            ((await oldToken.list(CONFIGMAPS, { namespace: 'sa-test' }).catch((e: unknown) => e)) as ApiError)
              .statusCode === 401,
          'the deleted ServiceAccount token to be refused',
        );
      } finally {
        oldToken.close();
      }
      expect(await forbiddenAs(client, 'sa-test')).toBe('system:serviceaccount:sa-test:rot-d');
    } finally {
      client.close();
    }
  });

  it('runs exec credential plugins in the helper, and re-runs them after a 401', async () => {
    // The plugin hands out a bad token first and the admin token afterwards, like an expired cached credential.
    const counter = path.join(dir, 'exec-count');
    await writeFile(counter, '0');
    const plugin = path.join(dir, 'exec-plugin.sh');
    await writeFile(
      plugin,
      [
        '#!/bin/sh',
        `n=$(cat ${counter}); echo $((n+1)) > ${counter}`,
        `if [ "$n" = 0 ]; then t=expired-token; else t=${cp.adminToken}; fi`,
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\' "$t"',
        '',
      ].join('\n'),
    );
    await chmod(plugin, 0o755);
    const kubeconfigPath = path.join(dir, 'exec.kubeconfig');
    await writeFile(
      kubeconfigPath,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: { server: cp.server, 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') },
          },
        ],
        users: [
          {
            name: 'u',
            user: {
              exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
            },
          },
        ],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
    const client = createKubeApi({ credentials: () => resolveCredentials({ kubeconfigPath }) });
    try {
      const list = await client.list(CONFIGMAPS, { namespace: 'crud' });
      expect(Array.isArray(list.items)).toBe(true);
      expect(client.credentialResolutions).toBe(2);
      expect((await readFile(counter, 'utf8')).trim()).toBe('2');
    } finally {
      client.close();
    }
  });
});
