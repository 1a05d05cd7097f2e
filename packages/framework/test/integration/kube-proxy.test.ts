/**
 * The API client through an HTTP CONNECT proxy, against a real API server: the kubeconfig's `proxy-url`, and
 * `HTTPS_PROXY` / `NO_PROXY` from the environment. The proxy is a tiny one written here, on loopback, that counts the
 * tunnels it opens and resolves every host name to loopback (as a corporate proxy resolves names the client cannot).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import { resolveCredentials } from '../../src/kube/credentials.js';
import type { WatchEvent } from '../../src/kube/types.js';
import { CONFIGMAPS, ensureNamespace, waitFor } from './kube-fixtures.js';

/** A minimal HTTP CONNECT proxy on loopback. */
class ConnectProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** `host:port` of every tunnel opened, in order. */
  readonly tunnels: string[] = [];
  /** CONNECT requests refused for missing or wrong credentials. */
  refusals = 0;

  private constructor(private readonly requiredAuth: string | undefined) {}

  /** Starts the proxy; with `credentials` (`user:password`), tunnels need Basic proxy authentication. */
  static async start(credentials?: string): Promise<ConnectProxy & { url: string }> {
    const proxy = new ConnectProxy(credentials && `Basic ${Buffer.from(credentials).toString('base64')}`);
    const server = net.createServer((socket) => proxy.accept(socket));
    proxy.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return Object.assign(proxy, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const [requestLine = '', ...headerLines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const target = /^CONNECT (\S+):(\d+) HTTP\/1\.1$/.exec(requestLine);
      if (!target) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
        return;
      }
      const auth = headerLines.find((line) => /^proxy-authorization:/i.test(line))?.replace(/^[^:]+:\s*/, '');
      if (this.requiredAuth && auth !== this.requiredAuth) {
        this.refusals += 1;
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n');
        return;
      }
      this.tunnels.push(`${target[1]}:${target[2]}`);
      const upstream = net.connect(Number(target[2]), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    };
    client.on('data', onData);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

let cp: ControlPlane;
let dir: string;
let port: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  cp = await startControlPlane();
  await ensureNamespace(cp, 'proxied');
  dir = await mkdtemp(path.join(tmpdir(), 'opkit-proxy-'));
  port = new URL(cp.server).port;
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function proxy(credentials?: string): Promise<ConnectProxy & { url: string }> {
  const started = await ConnectProxy.start(credentials);
  cleanups.push(() => started.stop());
  return started;
}

function client(options: Parameters<typeof createKubeApi>[0]): KubeClient {
  const created = createKubeApi(options);
  cleanups.push(() => created.close());
  return created;
}

/** Sets environment variables until the end of the test. */
function setEnv(values: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  cleanups.push(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}

/**
 * The API server under a name only the proxy resolves. `.invalid` never resolves (RFC 2606); the certificate is
 * verified against `kubernetes`, one of its names.
 */
const unresolvable = (): { server: string; tlsServerName: string } => ({
  server: `https://api.opkit.invalid:${port}`,
  tlsServerName: 'kubernetes',
});

describe('proxy-url in the kubeconfig', () => {
  it('tunnels every request through it, with proxy authentication, reusing the tunnel while it is open', async () => {
    const tunnel = await proxy('opkit:pa55 word');
    const proxyUrl = tunnel.url.replace('http://', 'http://opkit:pa55%20word@');
    const kubeconfigPath = path.join(dir, 'proxied.kubeconfig');
    await writeFile(
      kubeconfigPath,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: {
              server: cp.server,
              'certificate-authority-data': Buffer.from(cp.caPem).toString('base64'),
              'proxy-url': proxyUrl,
            },
          },
        ],
        users: [{ name: 'u', user: { token: cp.adminToken } }],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
    const credentials = await resolveCredentials({ kubeconfigPath });
    expect(credentials.proxyUrl).toBe(proxyUrl);

    // A loopback server and NO_PROXY=* keep the environment's proxy away, never the kubeconfig's.
    const api = client({ credentials, proxyEnv: { NO_PROXY: '*' } });
    await api.create(CONFIGMAPS, { metadata: { name: 'through-proxy' } }, 'proxied');
    await api.get(CONFIGMAPS, 'through-proxy', 'proxied');
    await api.list(CONFIGMAPS, { namespace: 'proxied' });
    expect(tunnel.tunnels).toEqual([`127.0.0.1:${port}`]);
    expect(tunnel.refusals).toBe(0);
  });

  it('fails with an error that names the proxy and its answer, without the password', async () => {
    const tunnel = await proxy('opkit:right');
    const api = client({
      credentials: {
        server: cp.server,
        ca: cp.caPem,
        token: cp.adminToken,
        proxyUrl: tunnel.url.replace('http://', 'http://opkit:wrong-secret@'),
      },
    });
    const err = (await api.list(CONFIGMAPS, { namespace: 'proxied' }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('407');
    expect(err.message).toContain('opkit:***@127.0.0.1');
    expect(err.message).not.toContain('wrong-secret');
    expect(tunnel.tunnels).toEqual([]);
  });
});

describe('HTTPS_PROXY and NO_PROXY', () => {
  it('sends requests and watches through HTTPS_PROXY', async () => {
    const tunnel = await proxy();
    setEnv({ HTTPS_PROXY: tunnel.url, NO_PROXY: 'localhost,127.0.0.1' });
    const api = client({ credentials: { ...unresolvable(), ca: cp.caPem, token: cp.adminToken } });
    const start = await api.list(CONFIGMAPS, { namespace: 'proxied' });
    const events: string[] = [];
    const controller = new AbortController();
    const watching = api
      .watch(
        CONFIGMAPS,
        { namespace: 'proxied', resourceVersion: start.metadata.resourceVersion },
        (event: WatchEvent) => events.push(`${event.type}:${event.object.metadata.name}`),
        controller.signal,
      )
      .catch(() => undefined);
    cleanups.push(async () => {
      controller.abort(new Error('done'));
      await watching;
    });
    // The watch starts from the list's version: it gets this event however late it is established.
    await api.create(CONFIGMAPS, { metadata: { name: 'via-env' } }, 'proxied');
    await waitFor(() => events.includes('ADDED:via-env'), 'the watch event through the proxy');
    // The list's tunnel went back to the pool; the watch took it or a second one.
    expect(tunnel.tunnels.length).toBeGreaterThan(0);
    expect(new Set(tunnel.tunnels)).toEqual(new Set([`api.opkit.invalid:${port}`]));
  });

  it('goes direct for a host in NO_PROXY, and through the proxy for the others', async () => {
    const tunnel = await proxy();
    setEnv({ HTTPS_PROXY: tunnel.url, NO_PROXY: 'example.com,.invalid' });
    const direct = client({ credentials: { ...unresolvable(), ca: cp.caPem, token: cp.adminToken } });
    // Direct, the name does not resolve: the proxy was not asked.
    await expect(direct.list(CONFIGMAPS, { namespace: 'proxied' })).rejects.toThrow(/ENOTFOUND|EAI_AGAIN/);
    expect(tunnel.tunnels).toEqual([]);

    setEnv({ NO_PROXY: 'example.com' });
    const proxied = client({ credentials: { ...unresolvable(), ca: cp.caPem, token: cp.adminToken } });
    await proxied.list(CONFIGMAPS, { namespace: 'proxied' });
    expect(tunnel.tunnels).toEqual([`api.opkit.invalid:${port}`]);
  });
});
