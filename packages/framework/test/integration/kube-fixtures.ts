/**
 * Shared set-up for the kube-layer integration tests: a test CRD with a status subresource on the real control plane,
 * and a polling helper. Not a test file itself.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import type { ControlPlane } from '@opkit/testbed';
import type { KubeApi, KubeObject, ResourceRef } from '../../src/kube/types.js';

/** A namespaced custom resource with a status subresource. */
export const WIDGETS: ResourceRef = { group: 'kubetest.opkit.dev', version: 'v1', plural: 'widgets', namespaced: true };
/** Core ConfigMaps, for tests that need no CRD. */
export const CONFIGMAPS: ResourceRef = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
/** Core Events. */
export const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };

export interface Widget extends KubeObject {
  spec?: { size?: number; color?: string };
  status?: { phase?: string };
}

/** What {@link crdWithStatus} needs to know of a custom resource. */
export interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: { plural: string; singular: string; kind: string; listKind?: string };
  /** The OpenAPI v3 schemas of the objects' top-level fields (`spec`, `status`). */
  properties: Record<string, unknown>;
}

/**
 * A CustomResourceDefinition serving one version, `v1`, with a status subresource. The benchmarks install theirs with
 * it too (bench/lib/cluster.ts).
 */
export function crdWithStatus({ group, scope, names, properties }: CrdSpec): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${group}` },
    spec: {
      group,
      scope,
      names,
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', properties } },
        },
      ],
    },
  };
}

/** Installs the Widget CRD and waits until it is served. */
export async function installWidgetCrd(cp: ControlPlane): Promise<void> {
  const crd = crdWithStatus({
    group: WIDGETS.group,
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    properties: {
      spec: { type: 'object', properties: { size: { type: 'integer' }, color: { type: 'string' } } },
      status: { type: 'object', properties: { phase: { type: 'string' } } },
    },
  });
  const created = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (created.status !== 201 && created.status !== 409)
    throw new Error(`CRD create: ${created.status} ${created.text}`);
  await waitFor(async () => {
    const list = await cp.request('GET', '/apis/kubetest.opkit.dev/v1/widgets');
    return list.status === 200;
  }, 'widget CRD served');
}

/** Creates a namespace (ignoring "already exists"). */
export async function ensureNamespace(cp: ControlPlane, name: string): Promise<void> {
  const res = await cp.request('POST', '/api/v1/namespaces', { metadata: { name } });
  if (res.status !== 201 && res.status !== 409) throw new Error(`namespace create: ${res.status} ${res.text}`);
}

/** Polls `check` until it returns true (or a value), failing with `what` after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** A fresh, complete list of a resource as a map name -> resourceVersion. */
export async function listVersions(api: KubeApi, ref: ResourceRef, namespace?: string): Promise<Map<string, string>> {
  const list = await api.list(ref, { namespace });
  return new Map(list.items.map((item) => [item.metadata.name, item.metadata.resourceVersion]));
}

/**
 * A TCP proxy on loopback in front of the API server, to break connections the way networks do: cut them (RST),
 * refuse new ones (API server unreachable), or stall them (bytes stop flowing, the socket stays open: a dead NAT entry
 * or a hung load balancer, which no error ever reports).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<{
    client: Socket;
    upstream: Socket;
    stalled: boolean;
  }>();
  private refusing = false;
  private stallingNew = false;
  /** Connections accepted so far. */
  connections = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts a proxy to `target` (an `https://host:port` URL). */
  static async start(target: string): Promise<TcpProxy & { url: string }> {
    const url = new URL(target);
    const proxy = new TcpProxy(url.hostname, Number(url.port));
    const server = net.createServer((client) => proxy.accept(client));
    proxy.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return Object.assign(proxy, { url: `${url.protocol}//127.0.0.1:${port}` });
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    this.connections += 1;
    const upstream = net.connect(this.targetPort, this.targetHost);
    const pair = { client, upstream, stalled: this.stallingNew };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        // A stalled pair swallows bytes in both directions and never closes: silence, not an error.
        if (!pair.stalled) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.pairs.delete(pair);
      if (!pair.stalled) {
        client.destroy();
        upstream.destroy();
      }
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  /** Existing connections go silent (kept open, bytes dropped); new connections work. */
  stallExisting(): number {
    for (const pair of this.pairs) pair.stalled = true;
    return this.pairs.size;
  }

  /** New connections are accepted and then stay silent (a black-holed server) while `on`. */
  stallNew(on: boolean): void {
    this.stallingNew = on;
  }

  /** Resets every open connection. */
  cutAll(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Resets new connections until {@link accept} is called again. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  async stop(): Promise<void> {
    this.refusing = true;
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
