/**
 * A real kube-apiserver + etcd on loopback, the way envtest runs them, with the knobs tests need on top: restarts,
 * etcd compaction, ServiceAccount tokens and kubeconfigs for them.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { requireTools, runCommand, type CommandResult } from '../exec.js';
import type { ControlPlane, KubectlOptions, StartControlPlaneOptions } from './types.js';
import { HUB_ADDRESS_V4, HUB_ADDRESS_V6 } from '../constants.js';
import { RunScope } from '../lifetime/run-scope.js';
import {
  apiCall,
  apiRequest,
  freeLoopbackPort,
  httpLocal,
  type ApiCredentials,
  type ApiResponse,
} from './api-client.js';

export type { ControlPlane, KubectlOptions, StartControlPlaneOptions } from './types.js';
import { resolveControlPlaneBinaries, type ControlPlaneBinaries } from './binaries.js';
import { createServiceAccountKey, createServingPki } from './certs.js';
import { writeKubeconfigFile } from './kubeconfig.js';

const kubectlBinary = (): string => process.env.KUBECTL ?? 'kubectl';

interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
}

function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

class RunningControlPlane implements ControlPlane {
  readonly server: string;
  readonly etcdUrl: string;
  readonly kubeconfigPath: string;
  readonly adminToken: string;
  readonly caPem: string;
  readonly dir: string;
  private etcd: ChildProcess | undefined;
  private apiServer: ChildProcess | undefined;
  private kubeconfigCount = 0;
  private stopped = false;

  constructor(
    private readonly scope: RunScope,
    private readonly binaries: ControlPlaneBinaries,
    private readonly ports: Ports,
    private readonly apiServerArgs: string[],
    private readonly readyTimeoutMs: number,
    private readonly watchCache: boolean,
    fields: { adminToken: string; caPem: string },
  ) {
    this.server = `https://127.0.0.1:${ports.apiServer}`;
    this.etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    this.dir = scope.dir;
    this.kubeconfigPath = path.join(scope.dir, 'admin.kubeconfig');
    this.adminToken = fields.adminToken;
    this.caPem = fields.caPem;
  }

  private get credentials(): ApiCredentials {
    return { server: this.server, caPem: this.caPem, token: this.adminToken };
  }

  private spawnLogged(name: string, command: string[]): ChildProcess {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    try {
      return this.scope.spawn(command, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
  }

  /** Starts etcd and waits for its /health. */
  async startEtcd(): Promise<void> {
    const { etcdClient, etcdPeer } = this.ports;
    const client = `http://127.0.0.1:${etcdClient}`;
    const peer = `http://127.0.0.1:${etcdPeer}`;
    const etcd = this.spawnLogged('etcd', [
      this.binaries.etcd,
      '--name=testbed',
      `--data-dir=${path.join(this.dir, 'etcd-data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=testbed=${peer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    this.etcd = etcd;
    await this.poll('etcd', etcd, async () => {
      const health = await httpLocal(`${client}/health`, 'GET', undefined, 2000);
      return health.status === 200 && health.text.includes('"true"');
    });
  }

  /** Starts kube-apiserver and waits for /readyz. */
  async startApiServer(): Promise<void> {
    const apiServer = this.spawnLogged('kube-apiserver', [this.binaries.apiServer, ...this.apiServerArgs]);
    this.apiServer = apiServer;
    await this.waitReady(apiServer);
  }

  private async waitReady(apiServer: ChildProcess): Promise<void> {
    await this.poll('kube-apiserver', apiServer, async () => {
      const response = await apiRequest(this.credentials, 'GET', '/readyz', undefined, { timeoutMs: 2000 });
      return response.status === 200;
    });
  }

  /** Polls `check` until true; fails early (with the log's tail) when the process exits. */
  private async poll(name: string, child: ChildProcess, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    let lastError = '';
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${logTail(path.join(this.dir, `${name}.log`))}`,
        );
      }
      try {
        if (await check()) return;
      } catch (error) {
        lastError = error instanceof Error ? error.message : String(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `${name} was not ready within ${this.readyTimeoutMs} ms (${lastError}):\n${logTail(path.join(this.dir, `${name}.log`))}`,
    );
  }

  kubectl(args: string[], opts: KubectlOptions = {}): Promise<CommandResult> {
    return runCommand([kubectlBinary(), `--kubeconfig=${opts.kubeconfig ?? this.kubeconfigPath}`, ...args], {
      ...(opts.input === undefined ? {} : { input: opts.input }),
      allowFailure: opts.allowFailure ?? false,
    });
  }

  request<T = unknown>(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<ApiResponse<T>> {
    return apiRequest<T>(this.credentials, method, apiPath, body, contentType ? { contentType } : {});
  }

  async mintToken(
    namespace: string,
    serviceAccount: string,
    opts: {
      expirationSeconds?: number;
      /**
       * Bind the token to a Pod on this node, as the kubelet does for a pod's projected token: the token then names
       * the node (`authentication.kubernetes.io/node-name`) and is valid only while the Pod exists. The Pod object is
       * created (it never runs: the test bed has no kubelet) unless it exists.
       */
      boundToPodOnNode?: string;
    } = {},
  ): Promise<string> {
    const credentials = this.credentials;
    await apiCall(credentials, 'POST', '/api/v1/namespaces', { metadata: { name: namespace } }, [409]);
    await apiCall(
      credentials,
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts`,
      { metadata: { name: serviceAccount, namespace } },
      [409],
    );
    let boundObjectRef: { apiVersion: string; kind: string; name: string; uid: string } | undefined;
    if (opts.boundToPodOnNode !== undefined) {
      const podName = `${serviceAccount}-${opts.boundToPodOnNode}`.slice(0, 253);
      const pod = {
        metadata: { name: podName, namespace },
        spec: {
          nodeName: opts.boundToPodOnNode,
          serviceAccountName: serviceAccount,
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'test-bed.invalid/never-pulled:0' }],
        },
      };
      await apiCall(credentials, 'POST', `/api/v1/namespaces/${namespace}/pods`, pod, [409]);
      const existing = await apiCall<{ metadata: { uid: string } }>(
        credentials,
        'GET',
        `/api/v1/namespaces/${namespace}/pods/${podName}`,
      );
      boundObjectRef = { apiVersion: 'v1', kind: 'Pod', name: podName, uid: existing.body.metadata.uid };
    }
    const response = await apiCall<{ status: { token: string } }>(
      credentials,
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          expirationSeconds: opts.expirationSeconds ?? 3600,
          ...(boundObjectRef ? { boundObjectRef } : {}),
        },
      },
    );
    return response.body.status.token;
  }

  async writeKubeconfig(opts: { token: string; server?: string; path?: string }): Promise<string> {
    this.kubeconfigCount += 1;
    const target = opts.path ?? path.join(this.dir, `kubeconfig-${this.kubeconfigCount}.yaml`);
    return writeKubeconfigFile(target, { server: opts.server ?? this.server, caPem: this.caPem, token: opts.token });
  }

  async restartApiServer(opts: { expireWatches?: boolean } = {}): Promise<void> {
    if (this.apiServer) await this.scope.terminate(this.apiServer, 'SIGTERM', 10_000);
    // A write while no API server runs moves the revision past everything any client saw, so the new watch cache
    // starts after it and every resumed watch gets 410. Without it the 410 depends on whether some other write (a
    // lease renewal) happened to land in between, and a shutdown bookmark may even let a watch resume.
    if (opts.expireWatches) await this.putMarker('restart-marker');
    await this.startApiServer();
  }

  /** Writes a key outside the API server's prefix; returns the etcd revision it created. */
  private async putMarker(name: string): Promise<string> {
    const put = await httpLocal(`${this.etcdUrl}/v3/kv/put`, 'POST', {
      key: Buffer.from(`/opkit-testbed/${name}`).toString('base64'),
      value: Buffer.from(new Date().toISOString()).toString('base64'),
    });
    const revision = (JSON.parse(put.text) as { header?: { revision?: string } }).header?.revision;
    if (put.status !== 200 || !revision) throw new Error(`etcd put answered ${put.status}: ${put.text}`);
    return revision;
  }

  async restartEtcd(): Promise<void> {
    if (this.etcd) await this.scope.terminate(this.etcd, 'SIGKILL');
    await this.startEtcd();
    if (!this.apiServer) return;
    await this.waitReady(this.apiServer);
    // /readyz may still report a cached etcd check; a read that must reach etcd proves the path works again.
    await this.poll('kube-apiserver', this.apiServer, async () => {
      const response = await apiRequest(this.credentials, 'GET', '/api/v1/namespaces/default', undefined, {
        timeoutMs: 2000,
      });
      return response.status === 200;
    });
  }

  async compactEtcd(opts: { restartApiServer?: boolean } = {}): Promise<void> {
    // A marker write outside the API server's prefix moves the revision one past the newest object. Compacting at the
    // marker then expires every older resourceVersion, while a client that saw the newest one can still watch from
    // it. (Compacting at the newest object's revision instead would leave a watch from just before it with no
    // previous value, which the API server reports as a 500.)
    const revision = await this.putMarker('compaction-marker');
    const compaction = await httpLocal(
      `${this.etcdUrl}/v3/kv/compaction`,
      'POST',
      { revision, physical: true },
      30_000,
    );
    if (compaction.status !== 200) throw new Error(`etcd compaction answered ${compaction.status}: ${compaction.text}`);
    if (opts.restartApiServer ?? this.watchCache) await this.restartApiServer();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.scope.dispose();
  }
}

/**
 * Starts etcd and kube-apiserver on free loopback ports with a fresh data folder, a throwaway CA and serving
 * certificate, RBAC authorization, and an admin user (static token, group `system:masters`). Resolves when /readyz
 * answers ok (a few seconds when the binaries are cached). Call `stop()` when done; if the process dies first, its
 * children die with it and a reaper removes the files.
 */
export async function startControlPlane(opts: StartControlPlaneOptions = {}): Promise<ControlPlane> {
  await requireTools([
    { command: ['setpriv', '--version'], debianPackage: 'util-linux' },
    { command: ['openssl', 'version'], debianPackage: 'openssl' },
  ]);
  const binaries = await resolveControlPlaneBinaries();
  let lastError: unknown;
  // A free port can be taken between probing and binding; such a start is retried with new ports.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const scope = RunScope.create('control-plane');
    try {
      return await startOnce(scope, binaries, opts);
    } catch (error) {
      lastError = error;
      await scope.dispose();
      if (!(error instanceof Error && /address already in use/i.test(error.message))) throw error;
    }
  }
  throw lastError;
}

/** The `watchCache` option, else what a `--watch-cache=...` in the extra flags says, else true. */
export function watchCacheEnabled(opts: StartControlPlaneOptions): boolean {
  if (opts.watchCache !== undefined) return opts.watchCache;
  const flag = (opts.extraApiServerFlags ?? []).filter((entry) => entry.startsWith('--watch-cache=')).pop();
  return flag === undefined || flag === '--watch-cache=true';
}

async function startOnce(
  scope: RunScope,
  binaries: ControlPlaneBinaries,
  opts: StartControlPlaneOptions,
): Promise<ControlPlane> {
  const pkiDir = path.join(scope.dir, 'pki');
  mkdirSync(pkiDir, { recursive: true });
  const servingNames = ['127.0.0.1', '::1', HUB_ADDRESS_V4, HUB_ADDRESS_V6, ...(opts.extraServingIps ?? [])];
  const [pki, serviceAccountKey, etcdClient, etcdPeer, apiServerPort] = await Promise.all([
    createServingPki(pkiDir, [
      ...servingNames,
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
    ]),
    createServiceAccountKey(pkiDir),
    freeLoopbackPort(),
    freeLoopbackPort(),
    freeLoopbackPort(),
  ]);
  const adminToken = randomBytes(24).toString('hex');
  const tokenFile = path.join(pkiDir, 'tokens.csv');
  await writeFile(tokenFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  const ports = { etcdClient, etcdPeer, apiServer: apiServerPort };
  const apiServerArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    `--secure-port=${apiServerPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--cert-dir=${pkiDir}`,
    `--tls-cert-file=${pki.certPath}`,
    `--tls-private-key-file=${pki.keyPath}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${serviceAccountKey.publicKeyPath}`,
    `--service-account-signing-key-file=${serviceAccountKey.privateKeyPath}`,
    '--profiling=false',
    ...(opts.watchCache === false ? ['--watch-cache=false'] : []),
    ...(opts.extraApiServerFlags ?? []),
  ];
  const controlPlane = new RunningControlPlane(
    scope,
    binaries,
    ports,
    apiServerArgs,
    opts.readyTimeoutMs ?? 60_000,
    watchCacheEnabled(opts),
    { adminToken, caPem: pki.caPem },
  );
  await controlPlane.startEtcd();
  await controlPlane.startApiServer();
  await writeKubeconfigFile(controlPlane.kubeconfigPath, {
    server: controlPlane.server,
    caPem: pki.caPem,
    token: adminToken,
  });
  return controlPlane;
}
