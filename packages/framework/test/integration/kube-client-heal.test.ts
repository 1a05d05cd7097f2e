/**
 * The API client heals like client-go, against a real API server: rotated CA bundles and renewed client certificates
 * are picked up from their files, TLS failures and 401s re-resolve credentials (but not in a storm), exec-plugin
 * credentials are renewed before they expire, a request on a pooled connection the server had closed is sent again
 * when that is safe, sockets keep TCP keep-alive, and latency and status codes reach the metrics.
 *
 * The API server trusts an extra client CA made here, so that client certificates can be renewed for real.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { resolveCredentials, type ClusterCredentials } from '../../src/kube/credentials.js';
import { ApiError } from '../../src/kube/types.js';
import { createApiClientMetrics, observeApiResponse } from '../../src/ops/metrics.js';
import { CONFIGMAPS, ensureNamespace, waitFor } from './kube-fixtures.js';

const run = promisify(execFile);

let cp: ControlPlane;
let dir: string;
let clientCa: Pki;
let otherCa: Pki;
const clients: KubeClient[] = [];

interface Pki {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA. */
async function makeCa(name: string): Promise<Pki> {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  await run('openssl', [
    'req', '-x509', ...ecKey, '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  return { certPath, keyPath, certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
}

/** A client certificate for user `user` in group `group`, signed by `ca`. */
async function makeClientCert(name: string, ca: Pki, user: string, group: string): Promise<Pki> {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await run('openssl', ['req', '-new', ...ecKey, '-keyout', keyPath, '-out', csr, '-subj', `/CN=${user}/O=${group}`]);
  await writeFile(ext, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.certPath, '-CAkey', ca.keyPath, '-days', '2', '-extfile', ext,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', certPath,
  ]); // prettier-ignore
  return { certPath, keyPath, certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
}

/** Writes `content` and moves the mtime forward, so a change is visible even within the file system's granularity. */
async function rewrite(file: string, content: string): Promise<void> {
  await writeFile(file, content);
  const later = new Date(Date.now() + 2000 + Math.floor(Math.random() * 1000));
  await utimes(file, later, later);
}

/** A kubeconfig (JSON is YAML) for the test cluster with `cluster` and `user` fields merged in. */
async function kubeconfig(name: string, cluster: object, user: object): Promise<string> {
  const file = path.join(dir, name, 'kubeconfig');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cp.server, ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

/** A client closed after the file. */
function client(options: Parameters<typeof createKubeApi>[0]): KubeClient {
  const created = createKubeApi(options);
  clients.push(created);
  return created;
}

/** A pino logger whose lines land in `lines`. */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'opkit-heal-'));
  clientCa = await makeCa('client-ca');
  otherCa = await makeCa('other-ca');
  cp = await startControlPlane({ extraApiServerFlags: [`--client-ca-file=${clientCa.certPath}`] });
  await ensureNamespace(cp, 'heal');
});

afterAll(async () => {
  for (const each of clients) each.close();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('CA bundle and client certificate files', () => {
  it("re-reads a kubeconfig's certificate-authority file after a TLS failure, without re-resolving", async () => {
    const kubeconfigPath = await kubeconfig(
      'ca-on-failure',
      { 'certificate-authority': 'ca.crt' },
      { token: cp.adminToken },
    );
    const caFile = path.join(path.dirname(kubeconfigPath), 'ca.crt');
    // The server's certificate is signed by a CA this bundle does not hold yet: a rotation the server made first.
    await writeFile(caFile, otherCa.certPem);
    const credentials = await resolveCredentials({ kubeconfigPath });
    expect(credentials.caFile).toBe(caFile);
    const api = client({ credentials, credentialFileCheckMs: 3_600_000 });

    await expect(api.list(CONFIGMAPS, { namespace: 'heal' })).rejects.toThrow(/certificate/i);
    await rewrite(caFile, cp.caPem);
    const list = await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(Array.isArray(list.items)).toBe(true);
    expect(api.credentialResolutions).toBe(1);
  });

  it('picks up a rewritten in-cluster ca.crt at the periodic check, before any failure', async () => {
    const prefix = path.join(dir, 'in-cluster');
    const saDir = path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
    await mkdir(saDir, { recursive: true });
    const caFile = path.join(saDir, 'ca.crt');
    await writeFile(path.join(saDir, 'token'), await cp.mintToken('heal', 'ca-reader'));
    await writeFile(caFile, cp.caPem);
    await writeFile(path.join(saDir, 'namespace'), 'heal');
    const url = new URL(cp.server);
    const saved = [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT];
    process.env.KUBERNETES_SERVICE_HOST = url.hostname;
    process.env.KUBERNETES_SERVICE_PORT = url.port;
    let credentials: ClusterCredentials;
    try {
      credentials = await resolveCredentials({ inCluster: { pathPrefix: prefix } });
    } finally {
      [process.env.KUBERNETES_SERVICE_HOST, process.env.KUBERNETES_SERVICE_PORT] = saved;
      if (saved[0] === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      if (saved[1] === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    }
    expect(credentials.caFile).toBe(caFile);
    const api = client({ credentials, credentialFileCheckMs: 0 });
    // 403: the ServiceAccount has no grants, but TLS and authentication worked.
    const forbidden = (): Promise<number> =>
      api.list(CONFIGMAPS, { namespace: 'heal' }).then(
        () => 200,
        (err: unknown) => (err instanceof ApiError ? err.statusCode : Promise.reject(err)),
      );
    expect(await forbidden()).toBe(403);

    // The bundle now trusts another CA only: the next request already uses it (and fails), although the pooled
    // connection made with the old bundle would still work.
    await rewrite(caFile, otherCa.certPem);
    await expect(forbidden()).rejects.toThrow(/certificate/i);
    await rewrite(caFile, cp.caPem);
    expect(await forbidden()).toBe(403);
  });

  it('re-reads client certificate and key files after a 401, and authenticates with the renewed certificate', async () => {
    // The first certificate is not accepted (as after its expiry): the API server answers 401.
    const refused = await makeClientCert('refused', otherCa, 'heal-cert', 'system:masters');
    const renewed = await makeClientCert('renewed', clientCa, 'heal-cert', 'system:masters');
    const kubeconfigPath = await kubeconfig(
      'client-cert',
      { 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') },
      { 'client-certificate': 'client.crt', 'client-key': 'client.key' },
    );
    const certFile = path.join(path.dirname(kubeconfigPath), 'client.crt');
    const keyFile = path.join(path.dirname(kubeconfigPath), 'client.key');
    await writeFile(certFile, refused.certPem);
    await writeFile(keyFile, refused.keyPem);
    const credentials = await resolveCredentials({ kubeconfigPath });
    expect([credentials.certFile, credentials.keyFile]).toEqual([certFile, keyFile]);
    const api = client({ credentials, credentialFileCheckMs: 3_600_000 });

    const err = await api.list(CONFIGMAPS, { namespace: 'heal' }).catch((e: unknown) => e);
    expect((err as ApiError).statusCode).toBe(401);
    await rewrite(keyFile, renewed.keyPem);
    await rewrite(certFile, renewed.certPem);
    const list = await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(Array.isArray(list.items)).toBe(true);
    expect(api.credentialResolutions).toBe(1);
  });
});

describe('re-resolving credentials', () => {
  it('re-resolves after a TLS failure and retries with the new CA', async () => {
    let calls = 0;
    const api = client({
      credentials: async () => {
        calls += 1;
        return { server: cp.server, ca: calls === 1 ? otherCa.certPem : cp.caPem, token: cp.adminToken };
      },
    });
    const list = await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(Array.isArray(list.items)).toBe(true);
    expect(calls).toBe(2);
    expect(api.requestCount).toBe(2);
  });

  it('does not re-resolve once per request for a revoked token: one resolution in flight, then an interval', async () => {
    let calls = 0;
    const api = client({
      credentials: async () => {
        calls += 1;
        return { server: cp.server, ca: cp.caPem, token: 'revoked-token' };
      },
      // Longer than this test: no second re-resolution may start.
      reresolveMinIntervalMs: 3_600_000,
    });
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () =>
        api.list(CONFIGMAPS, { namespace: 'heal' }).catch((e: unknown) => (e as ApiError).statusCode),
      ),
    );
    for (let i = 0; i < 8; i += 1) {
      statuses.push(
        await api.list(CONFIGMAPS, { namespace: 'heal' }).catch((e: unknown) => (e as ApiError).statusCode),
      );
    }
    expect(statuses).toEqual(Array.from({ length: 16 }, () => 401));
    // The first resolution and one re-resolution, shared by the eight concurrent 401s.
    expect(calls).toBe(2);
    expect(api.credentialResolutions).toBe(2);
  });

  it('does not retry a failed credential helper on every request either', async () => {
    let calls = 0;
    const api = client({
      credentials: async () => {
        calls += 1;
        throw new Error('exec plugin failed');
      },
      reresolveMinIntervalMs: 3_600_000,
    });
    for (let i = 0; i < 5; i += 1) {
      await expect(api.list(CONFIGMAPS, { namespace: 'heal' })).rejects.toThrow(/exec plugin failed/);
    }
    expect(calls).toBe(2);
  });
});

describe('exec-plugin credentials that expire', () => {
  /** A kubeconfig whose exec plugin hands out the admin token, expiring `lifetimes[n]` seconds after run n. */
  async function execKubeconfig(
    name: string,
    lifetimes: number[],
  ): Promise<{ path: string; runs: () => Promise<number> }> {
    const base = path.join(dir, name);
    await mkdir(base, { recursive: true });
    const counter = path.join(base, 'runs');
    await writeFile(counter, '0');
    const plugin = path.join(base, 'plugin.sh');
    const cases = lifetimes.map((seconds, n) => `${n}) life=${seconds} ;;`).join(' ');
    await writeFile(
      plugin,
      [
        '#!/bin/sh',
        `n=$(cat ${counter}); echo $((n+1)) > ${counter}`,
        `case "$n" in ${cases} *) life=${lifetimes.at(-1)} ;; esac`,
        'exp=$(date -u -d "@$(( $(date +%s) + life ))" +%Y-%m-%dT%H:%M:%SZ)',
        `printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "${cp.adminToken}" "$exp"`,
        '',
      ].join('\n'),
    );
    await chmod(plugin, 0o755);
    const file = await kubeconfig(
      name,
      { 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') },
      { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } },
    );
    return { path: file, runs: async () => Number((await readFile(counter, 'utf8')).trim()) };
  }

  it('reports the expiry, and renews an expired credential before sending with it', async () => {
    // Run 0 is this test's own resolution, run 1 the client's first; both hand out an expired credential.
    const plugin = await execKubeconfig('exec-expired', [-60, -60, 7200]);
    const first = await resolveCredentials({ kubeconfigPath: plugin.path });
    expect(Date.parse(first.expiresAt ?? '')).toBeLessThan(Date.now());

    const api = client({ credentials: () => resolveCredentials({ kubeconfigPath: plugin.path }) });
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    // Helper runs: the test's own, the client's first, and the renewal before the request went out.
    expect(await plugin.runs()).toBe(3);
    expect(api.credentialResolutions).toBe(2);
    expect(api.requestCount).toBe(1);
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(api.credentialResolutions).toBe(2);
  });

  it('renews a credential ahead of its expiry, while it still works', async () => {
    const plugin = await execKubeconfig('exec-expiring', [8, 7200]);
    const api = client({ credentials: () => resolveCredentials({ kubeconfigPath: plugin.path }) });
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(api.credentialResolutions).toBe(1);
    // An 8 s credential is renewed at half its remaining life: keep using the client until it has been.
    let lists = 1;
    await waitFor(
      async () => {
        await api.list(CONFIGMAPS, { namespace: 'heal' });
        lists += 1;
        return (await plugin.runs()) === 2;
      },
      'the renewal',
      30_000,
      200,
    );
    expect(api.credentialResolutions).toBe(2);
    // No 401 was needed: one request per list.
    expect(api.requestCount).toBe(lists);
  });
});

/**
 * A TCP relay to the API server that can reset its open connections when the client next writes on them: the server
 * closing an idle keep-alive connection just as a request goes out on it.
 */
class ResettingRelay {
  private server: Server | undefined;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; trap: boolean }>();
  /** Connections accepted so far. */
  connections = 0;
  /** The clients' source ports, in order. */
  readonly clientPorts: number[] = [];

  static async start(target: string): Promise<ResettingRelay & { url: string }> {
    const relay = new ResettingRelay();
    const { hostname, port } = new URL(target);
    const server = net.createServer((socket) => relay.accept(socket, hostname, Number(port)));
    relay.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return Object.assign(relay, { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
  }

  /** Every open connection is reset as soon as the client sends on it again. */
  resetOnNextRequest(): number {
    for (const pair of this.pairs) pair.trap = true;
    return this.pairs.size;
  }

  private accept(client: Socket, host: string, port: number): void {
    this.connections += 1;
    this.clientPorts.push(client.remotePort ?? 0);
    const upstream = net.connect(port, host);
    const pair = { client, upstream, trap: false };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      if (pair.trap) {
        this.pairs.delete(pair);
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe('pooled connections', () => {
  it('sends a get or list again once when the pooled connection it went out on was closed, but not a create', async () => {
    const relay = await ResettingRelay.start(cp.server);
    try {
      const api = client({ credentials: { server: relay.url, ca: cp.caPem, token: cp.adminToken } });
      await api.list(CONFIGMAPS, { namespace: 'heal' });
      expect(relay.resetOnNextRequest()).toBe(1);
      const list = await api.list(CONFIGMAPS, { namespace: 'heal' });
      expect(Array.isArray(list.items)).toBe(true);
      expect(api.requestCount).toBe(3);
      expect(relay.connections).toBe(2);

      expect(relay.resetOnNextRequest()).toBe(1);
      await expect(api.create(CONFIGMAPS, { metadata: { name: 'never-sent' } }, 'heal')).rejects.toThrow(
        /ECONNRESET|socket hang up/,
      );
      const direct = client({ credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken } });
      const missing = await direct.get(CONFIGMAPS, 'never-sent', 'heal').catch((e: unknown) => e);
      expect((missing as ApiError).statusCode).toBe(404);
    } finally {
      await relay.stop();
    }
  });

  it('turns TCP keep-alive on for a watch connection in use', async () => {
    const relay = await ResettingRelay.start(cp.server);
    const controller = new AbortController();
    try {
      const api = client({ credentials: { server: relay.url, ca: cp.caPem, token: cp.adminToken } });
      const start = await api.list(CONFIGMAPS, { namespace: 'heal' });
      // The list's pooled connection carries the watch: Node's agent enables keep-alive on idle pooled sockets
      // only, so this checks the watch's own setting too. A new client makes sure of a fresh socket.
      const watching = client({ credentials: { server: relay.url, ca: cp.caPem, token: cp.adminToken } });
      const ended = watching
        .watch(
          CONFIGMAPS,
          { namespace: 'heal', resourceVersion: start.metadata.resourceVersion },
          () => undefined,
          controller.signal,
        )
        .catch(() => undefined);
      await waitFor(() => relay.connections === 2, 'the watch connection');
      const port = relay.clientPorts[1]!;
      const { stdout } = await run('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`]);
      expect(stdout).toContain(`:${port}`);
      expect(stdout).toMatch(/timer:\(keepalive/);
      controller.abort(new Error('done'));
      await ended;
    } finally {
      controller.abort(new Error('done'));
      await relay.stop();
    }
  });
});

describe('insecure-skip-tls-verify and metrics', () => {
  it('warns once, loudly, when TLS verification is off, also across re-resolutions', async () => {
    const lines: Record<string, unknown>[] = [];
    let calls = 0;
    const api = client({
      credentials: async () => {
        calls += 1;
        return { server: cp.server, insecureSkipTlsVerify: true, token: calls === 1 ? 'stale' : cp.adminToken };
      },
      logger: capturingLogger(lines),
    });
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    expect(calls).toBe(2);
    const warnings = lines.filter((line) => String(line.msg).includes('insecure-skip-tls-verify'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.level).toBe(40);
  });

  it('reports request latency and status codes per verb through onResponse', async () => {
    const registry = new Registry();
    const api = client({
      credentials: { server: cp.server, ca: cp.caPem, token: cp.adminToken },
      onResponse: observeApiResponse(createApiClientMetrics(registry)),
    });
    await api.list(CONFIGMAPS, { namespace: 'heal' });
    await api.create(CONFIGMAPS, { metadata: { name: 'metered' } }, 'heal');
    await api.get(CONFIGMAPS, 'metered', 'heal');
    await api.get(CONFIGMAPS, 'absent', 'heal').catch(() => undefined);
    const text = await registry.metrics();
    expect(text).toContain('opkit_api_request_duration_seconds_count{verb="get"} 2');
    expect(text).toContain('opkit_api_request_duration_seconds_count{verb="list"} 1');
    expect(text).toContain('opkit_api_responses_total{verb="get",code="200"} 1');
    expect(text).toContain('opkit_api_responses_total{verb="get",code="404"} 1');
    expect(text).toContain('opkit_api_responses_total{verb="create",code="201"} 1');

    // No response at all (nothing listens on port 1): counted as code "error".
    const errors = new Registry();
    const unreachable = client({
      credentials: { server: 'https://127.0.0.1:1', ca: cp.caPem, token: cp.adminToken },
      onResponse: observeApiResponse(createApiClientMetrics(errors)),
    });
    await expect(unreachable.list(CONFIGMAPS)).rejects.toThrow(/ECONNREFUSED/);
    expect(await errors.metrics()).toContain('opkit_api_responses_total{verb="list",code="error"} 1');
  });
});
