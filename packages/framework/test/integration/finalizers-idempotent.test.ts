/**
 * Finalizer writes whose response was lost, against the real API server: a retried append leaves the finalizer once,
 * a retried removal removes nothing else. First the patches themselves (the first attempt applied directly, then the
 * patch the writer sends on its retry), then the writer end to end, with its response really lost: a TCP proxy
 * resets the connection as the API server's answer to the patch comes back.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildMetadataPatch, type MetadataChanges } from '../../src/core/metadata-patch.js';
import { createKubeApi, type KubeClient } from '../../src/kube/client.js';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { isConflict, ObjectWriter } from '../../src/engine/writer.js';
import { startCluster, testObject, type TestCluster } from './helpers.js';

/**
 * A TCP proxy in front of the API server that, once armed, lets the next request through and resets the client's
 * connection when the answer comes back: the write happened, its response never arrives. Armed only for connections
 * that already carried a request, so that what it cuts is a response, never a TLS handshake.
 */
class ResponseCutter {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket; used: boolean; cut: boolean }>();
  /** Connections accepted so far. */
  connections = 0;

  private constructor(private readonly server: Server) {}

  static async start(target: string): Promise<ResponseCutter & { url: string }> {
    const { hostname, port, protocol } = new URL(target);
    const server = net.createServer();
    const cutter = new ResponseCutter(server);
    server.on('connection', (client) => cutter.accept(client, hostname, Number(port)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return Object.assign(cutter, { url: `${protocol}//127.0.0.1:${(server.address() as AddressInfo).port}` });
  }

  private accept(client: Socket, host: string, port: number): void {
    this.connections += 1;
    const upstream = net.connect(port, host);
    const pair = { client, upstream, used: false, cut: false };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      pair.used = true;
      if (!pair.cut) return void client.write(chunk);
      client.resetAndDestroy();
      upstream.destroy();
    });
    const close = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  /** The next answer on every connection that already answered is cut; returns how many connections that is. */
  cutNextResponses(): number {
    const used = [...this.pairs].filter((pair) => pair.used);
    for (const pair of used) pair.cut = true;
    return used.length;
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let cluster: TestCluster;
let ref: ResourceRef;

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('retriedthings', 'RetriedThing');
});
afterAll(() => cluster?.stop());

async function create(name: string, finalizers: string[]): Promise<KubeObject> {
  return cluster.api.create(ref, testObject('RetriedThing', name, { n: 1 }, { finalizers }));
}

async function finalizersOf(name: string): Promise<string[] | undefined> {
  return (await cluster.api.get<KubeObject>(ref, name)).metadata.finalizers;
}

describe('the patches, applied twice', () => {
  test('an append retried with its guard fails the second time; the finalizer is there once', async () => {
    const stale = await create('append-twice', ['other/x']);
    const changes: MetadataChanges = { addFinalizers: ['p/a'] };
    // The first attempt went through; its response was lost.
    await cluster.api.patch(ref, 'append-twice', buildMetadataPatch(stale.metadata, changes), { type: 'json' });
    // The writer's retry, from the same (stale) view, after an unknown outcome.
    const retry = buildMetadataPatch(stale.metadata, changes, { guardAppends: true });
    const error = await cluster.api.patch(ref, 'append-twice', retry, { type: 'json' }).catch((e: unknown) => e);
    expect(isConflict(error)).toBe(true);
    expect(await finalizersOf('append-twice')).toEqual(['other/x', 'p/a']);
  });

  test('a removal applied twice removes nothing else the second time', async () => {
    const stale = await create('remove-twice', ['p/a', 'other/x', 'other/y']);
    const removal = buildMetadataPatch(stale.metadata, { removeFinalizers: ['p/a'] });
    await cluster.api.patch(ref, 'remove-twice', removal, { type: 'json' });
    const error = await cluster.api.patch(ref, 'remove-twice', removal, { type: 'json' }).catch((e: unknown) => e);
    expect(isConflict(error)).toBe(true);
    expect(await finalizersOf('remove-twice')).toEqual(['other/x', 'other/y']);
  });
});

describe('the writer, when the response to its patch is lost', () => {
  let cutter: ResponseCutter & { url: string };
  let api: KubeClient;

  beforeAll(async () => {
    cutter = await ResponseCutter.start(cluster.cp.server);
    api = createKubeApi({ credentials: { server: cutter.url, ca: cluster.cp.caPem, token: cluster.cp.adminToken } });
  });
  afterAll(async () => {
    api?.close();
    await cutter?.stop();
  });

  /** Runs `write` with the response to its request cut; returns what it threw. */
  async function withResponseLost(name: string, write: () => Promise<unknown>): Promise<unknown> {
    // One request first, so that the write goes over a connection whose TLS handshake is done.
    await api.get(ref, name);
    const connections = cutter.connections;
    expect(cutter.cutNextResponses()).toBeGreaterThan(0);
    const error = await write().then(
      () => undefined,
      (e: unknown) => e,
    );
    // The scenario really happened: the write used a connection that was armed, and it failed.
    expect(cutter.connections).toBe(connections);
    expect(error).toBeInstanceOf(Error);
    return error;
  }

  test('a retried append leaves the finalizer once', async () => {
    const stale = await create('append-lost', ['other/x']);
    const writer = new ObjectWriter(api, ref);
    await withResponseLost('append-lost', () => writer.patchMetadata(stale, { addFinalizers: ['p/a'] }));
    // The first attempt did go through.
    expect(await finalizersOf('append-lost')).toEqual(['other/x', 'p/a']);
    // The caller retries with the copy it has (the watch cache may not show the write yet).
    const written = await writer.patchMetadata(stale, { addFinalizers: ['p/a'] });
    expect(written !== 'gone' && written.metadata.finalizers).toEqual(['other/x', 'p/a']);
    expect(await finalizersOf('append-lost')).toEqual(['other/x', 'p/a']);
    // Once a write got an answer, appends are unguarded again: another one appends without a conflict.
    const next = await writer.patchMetadata(stale, { addFinalizers: ['p/b'] });
    expect(next !== 'gone' && next.metadata.finalizers).toEqual(['other/x', 'p/a', 'p/b']);
  });

  test('a retried removal removes only its own finalizer', async () => {
    const stale = await create('remove-lost', ['p/a', 'other/x', 'other/y']);
    const writer = new ObjectWriter(api, ref);
    await withResponseLost('remove-lost', () => writer.patchMetadata(stale, { removeFinalizers: ['p/a'] }));
    expect(await finalizersOf('remove-lost')).toEqual(['other/x', 'other/y']);
    const written = await writer.patchMetadata(stale, { removeFinalizers: ['p/a'] });
    expect(written !== 'gone' && written.metadata.finalizers).toEqual(['other/x', 'other/y']);
  });
});
