/**
 * End-to-end fixture: a real control plane with the release applied, simulated nodes (network namespaces) and one
 * operator process per node, started the way the DaemonSet starts it (NODE_NAME, the shipped ServiceAccount's
 * token, the image's entry point) but inside the node's namespace.
 *
 * A test file gets its cluster with {@link E2eCluster.forSuite} (starts it before the file's tests, cleans up after
 * each test, tears it down after the last); {@link E2eCluster.start} starts one by hand.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  startControlPlane,
  startNetwork,
  type ControlPlane,
  type Route,
  type SimNetwork,
  type SimNode,
  type StartNetworkOptions,
} from '@opkit/testbed';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { buildOperator, PACKAGE_DIR, REPO_DIR } from '../../support/build.js';

export const OURS = 201;
export const RELEASE = path.join(REPO_DIR, 'deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
export const MAIN = path.join(PACKAGE_DIR, 'dist/main.js');
export const GATEWAY_A = '10.116.0.5';
export const GATEWAY_B = '10.116.0.12';

/** Polls `check` until it returns a value other than undefined/false; fails with the last value seen. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${describeValue(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** A value for a failure message: errors by their message, objects as (shortened) JSON. */
function describeValue(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value !== 'object' || value === null) return String(value);
  const text = JSON.stringify(value);
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

/** A running operator process on one node. */
export interface OperatorProcess {
  node: SimNode;
  child: ChildProcess;
  logFile: string;
  logs(): string;
  /** SIGTERM and wait for the exit (the graceful path). Resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOperatorOptions {
  /** Extra environment (ROUTE_PROTOCOL, PROTECTED_CIDRS, ...). */
  env?: Record<string, string>;
  /** Kubeconfig to use instead of the ServiceAccount's (e.g. a narrower token). */
  kubeconfig?: string;
}

/** A running aggregator process (on the host, like a pod of the Deployment on the pod network). */
export interface AggregatorProcess {
  child: ChildProcess;
  identity: string;
  /** Port of its /healthz, /readyz and /metrics on 127.0.0.1. */
  probePort: number;
  logFile: string;
  logs(): string;
  /** SIGTERM and wait for the exit. Resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Names of the shipped ServiceAccounts (deploy/rbac.yaml). */
export const AGENT_SERVICE_ACCOUNT = 'k8s-staticroute-operator';
export const AGGREGATOR_SERVICE_ACCOUNT = 'k8s-staticroute-aggregator';
/** A child process whose output goes to `logFile`, stopped with SIGTERM (the graceful path). */
function loggedProcess(
  child: ChildProcess,
  logFile: string,
): { child: ChildProcess; logFile: string; logs(): string; stop(): Promise<number | null> } {
  const log = createWriteStream(logFile);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  return {
    child,
    logFile,
    logs: () => readFileSync(logFile, 'utf8'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A free TCP port on loopback (for an aggregator's probes: suites of other checkouts may run at the same time). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Options of {@link E2eCluster.forSuite}. */
export interface SuiteOptions {
  /** Simulated nodes (default 3). */
  nodes?: number;
  /** Start an operator on every node before the first test (default true); an object passes these options. */
  operators?: boolean | StartOperatorOptions;
  /** Start the aggregator before the first test (default: when operators are started). */
  aggregator?: boolean;
  /**
   * After each test, delete every StaticRoute and wait until no node holds a route of ours (default true). A function
   * is asked after each test, e.g. to skip the clean-up once a test has uninstalled the release.
   */
  cleanAfterEach?: boolean | (() => boolean);
  /** Failure bound of the wait for empty tables after each test (default 30 s). */
  cleanTimeoutMs?: number;
  /** Gateway hosts and the destinations they host (startNetwork's options; default: two gateways hosting nothing). */
  network?: Pick<StartNetworkOptions, 'gateways' | 'gatewayDestinations'>;
}

export class E2eCluster {
  readonly operators = new Map<string, OperatorProcess>();
  readonly aggregators: AggregatorProcess[] = [];
  private stateRootDir: string | undefined;
  private readonly kubeconfigForNode = new Map<string, string>();
  private kubeconfigForAggregator: string | undefined;
  private aggregatorCount = 0;
  private parts: { controlPlane: ControlPlane; network: SimNetwork } | undefined;

  private constructor() {}

  /** Builds the operator, starts a control plane and `nodes` nodes, and applies the release. */
  static async start(nodes = 3): Promise<E2eCluster> {
    const cluster = new E2eCluster();
    await cluster.boot(nodes);
    return cluster;
  }

  /**
   * The cluster of a test file, from module scope: `const cluster = E2eCluster.forSuite();`. Registers the file's
   * hooks: before all tests, {@link start} and (unless `operators: false`) {@link startOperators}; after each test,
   * {@link deleteAllStaticRoutes} and a wait for empty tables (unless `cleanAfterEach` says no); after all tests,
   * {@link destroy}. The object is usable from the first test (and from hooks registered after this call) on.
   */
  static forSuite(options: SuiteOptions = {}): E2eCluster {
    const cluster = new E2eCluster();
    const { operators = true, cleanAfterEach = true, cleanTimeoutMs = 30_000 } = options;
    beforeAll(async () => {
      await cluster.boot(options.nodes ?? 3, options.network);
      if (options.aggregator ?? operators !== false) await cluster.startAggregator();
      if (operators !== false) await cluster.startOperators(operators === true ? {} : operators);
    });
    if (cleanAfterEach !== false) {
      afterEach(async () => {
        if (typeof cleanAfterEach === 'function' && !cleanAfterEach()) return;
        await cluster.deleteAllStaticRoutes();
        await waitForRoutes(cluster.nodes, [], cleanTimeoutMs);
      });
    }
    afterAll(async () => {
      await cluster.destroy();
    });
    return cluster;
  }

  private async boot(
    nodes: number,
    network: Pick<StartNetworkOptions, 'gateways' | 'gatewayDestinations'> = {},
  ): Promise<void> {
    if (this.parts) throw new Error('the E2eCluster is already started');
    await buildOperator();
    const controlPlane = await startControlPlane();
    try {
      await controlPlane.kubectl(['apply', '-f', RELEASE]);
      await controlPlane.kubectl([
        'wait',
        '--for=condition=Established',
        'crd/staticroutes.networking.digitalocean.com',
      ]);
      this.parts = { controlPlane, network: await startNetwork({ ...network, nodes, controlPlane }) };
    } catch (error) {
      await controlPlane.stop();
      throw error;
    }
  }

  private get started(): { controlPlane: ControlPlane; network: SimNetwork } {
    if (!this.parts) throw new Error('the E2eCluster is not started (use it in tests or in hooks after forSuite)');
    return this.parts;
  }

  get controlPlane(): ControlPlane {
    return this.started.controlPlane;
  }

  get network(): SimNetwork {
    return this.started.network;
  }

  /** Folder of the operators' logs and state directories (created on first use). */
  private get stateRoot(): string {
    this.stateRootDir ??= mkdtempSync(path.join(tmpdir(), 'sr-e2e-'));
    return this.stateRootDir;
  }

  get nodes(): SimNode[] {
    return this.network.nodes;
  }

  /**
   * Kubeconfig (inside node namespaces) with a token of the agents' shipped ServiceAccount, bound to a Pod on `node`
   * as the kubelet's projected token is (the admission policy checks the node it names).
   */
  async serviceAccountKubeconfig(node: SimNode): Promise<string> {
    let kubeconfig = this.kubeconfigForNode.get(node.name);
    if (!kubeconfig) {
      const token = await this.controlPlane.mintToken('static-routes', AGENT_SERVICE_ACCOUNT, {
        expirationSeconds: 7200,
        boundToPodOnNode: node.name,
      });
      kubeconfig = await this.network.nodeKubeconfig(token);
      this.kubeconfigForNode.set(node.name, kubeconfig);
    }
    return kubeconfig;
  }

  /** Kubeconfig (on the host) with a token of the aggregator's shipped ServiceAccount. */
  async aggregatorKubeconfig(): Promise<string> {
    if (!this.kubeconfigForAggregator) {
      const token = await this.controlPlane.mintToken('static-routes', AGGREGATOR_SERVICE_ACCOUNT, {
        expirationSeconds: 7200,
      });
      this.kubeconfigForAggregator = await this.controlPlane.writeKubeconfig({ token });
    }
    return this.kubeconfigForAggregator;
  }

  /**
   * Starts an aggregator replica the way the Deployment does (`main.js aggregator`, its ServiceAccount, leader
   * election), with short timings so that tests see deletions and silent nodes settle quickly. Resolves once it is
   * alive (`/healthz`); a standby is not ready, so readiness is not awaited.
   */
  async startAggregator(
    options: { env?: Record<string, string>; kubeconfig?: string } = {},
  ): Promise<AggregatorProcess> {
    const kubeconfig = options.kubeconfig ?? (await this.aggregatorKubeconfig());
    const index = this.aggregatorCount++;
    const identity = `aggregator-${index}`;
    const port = await freePort();
    const logFile = path.join(this.stateRoot, `${identity}-${Date.now()}.log`);
    const child = spawn(process.execPath, [MAIN, 'aggregator'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        KUBECONFIG: kubeconfig,
        POD_NAME: identity,
        PROBE_PORT: String(port),
        PROBE_ADDRESS: '127.0.0.1',
        LOG_LEVEL: 'debug',
        SILENT_AGENT_SECONDS: '20',
        DELETION_GRACE_SECONDS: '10',
        STATUS_SETTLE_SECONDS: '1',
        ...options.env,
      },
    });
    const aggregator: AggregatorProcess = { ...loggedProcess(child, logFile), identity, probePort: port };
    this.aggregators.push(aggregator);
    await eventually(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`aggregator exited ${child.exitCode}:\n${aggregator.logs().slice(-3000)}`);
        const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return response?.status === 200;
      },
      `${identity} to be alive`,
      60_000,
    );
    return aggregator;
  }

  async stopAggregators(): Promise<void> {
    await Promise.all(this.aggregators.splice(0).map((aggregator) => aggregator.stop()));
  }

  /** Starts the operator on `node` (replacing none: stop the old one first). Resolves once it reports ready. */
  async startOperator(node: SimNode, options: StartOperatorOptions = {}): Promise<OperatorProcess> {
    const kubeconfig = options.kubeconfig ?? (await this.serviceAccountKubeconfig(node));
    const logFile = path.join(this.stateRoot, `${node.name}-${Date.now()}.log`);
    const stateDir = path.join(this.stateRoot, `state-${node.name}`);
    const child = node.spawn([process.execPath, MAIN], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        NODE_NAME: node.name,
        KUBECONFIG: kubeconfig,
        OPKIT_STATE_DIR: stateDir,
        PROBE_PORT: '9860',
        RECONCILE_INTERVAL_SECONDS: '30',
        // The fixture's aggregator counts an agent silent after 20 s: keep the production ratio (a heartbeat a minute,
        // silent after three minutes).
        REPORT_HEARTBEAT_SECONDS: '5',
        LOG_LEVEL: 'debug',
        ...options.env,
      },
    });
    const operator: OperatorProcess = { ...loggedProcess(child, logFile), node };
    this.operators.set(node.name, operator);
    return operator;
  }

  /** Starts an operator on every node and waits until each is ready (its /readyz answers 200). */
  async startOperators(options: StartOperatorOptions = {}): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.startOperator(node, options)));
    await Promise.all(this.nodes.map((node) => this.waitReady(node)));
  }

  async waitReady(node: SimNode, timeoutMs = 60_000): Promise<void> {
    const operator = this.operators.get(node.name);
    await eventually(
      async () => {
        if (operator && operator.child.exitCode !== null) {
          throw new Error(
            `operator on ${node.name} exited ${operator.child.exitCode}:\n${operator.logs().slice(-3000)}`,
          );
        }
        const result = await node.exec(['curl', '-sf', 'http://127.0.0.1:9860/readyz'], { allowFailure: true });
        return result.code === 0;
      },
      `operator on ${node.name} to be ready`,
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${operator?.logs().slice(-4000) ?? ''}`);
    });
  }

  async stopOperators(): Promise<void> {
    await Promise.all([...this.operators.values()].map((operator) => operator.stop()));
    this.operators.clear();
  }

  /** `kubectl apply -f -` with a YAML/JSON document. */
  async apply(manifest: string | object): Promise<void> {
    const input = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
    await this.controlPlane.kubectl(['apply', '-f', '-'], { input });
  }

  kubectl(args: string[], input?: string) {
    return this.controlPlane.kubectl(args, { allowFailure: true, ...(input ? { input } : {}) });
  }

  /** A StaticRoute object as JSON (apply it with {@link apply}). */
  staticRoute(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): object {
    return { apiVersion: 'networking.digitalocean.com/v1', kind: 'StaticRoute', metadata: { name, ...metadata }, spec };
  }

  async getStaticRoute(name: string): Promise<StaticRouteJson | undefined> {
    const response = await this.controlPlane.request<StaticRouteJson>(
      'GET',
      `/apis/networking.digitalocean.com/v1/staticroutes/${name}`,
    );
    return response.status === 200 ? response.body : undefined;
  }

  async deleteStaticRoute(name: string): Promise<void> {
    await this.controlPlane.kubectl(['delete', 'staticroute', name, '--wait=false', '--ignore-not-found']);
  }

  /** Waits until the object is gone (every node released its finalizer). */
  async waitGone(name: string, timeoutMs = 60_000): Promise<void> {
    await eventually(
      async () => (await this.getStaticRoute(name)) === undefined,
      `StaticRoute ${name} to be gone`,
      timeoutMs,
    );
  }

  /** Deletes every StaticRoute and waits until they are gone (run between tests). */
  async deleteAllStaticRoutes(): Promise<void> {
    await this.controlPlane.kubectl(['delete', 'staticroutes', '--all', '--wait=false']);
    await eventually(
      async () => {
        const result = await this.controlPlane.kubectl(['get', 'staticroutes', '-o', 'name']);
        return result.stdout.trim() === '';
      },
      'all StaticRoutes to be gone',
      60_000,
    );
  }

  /** This node's report entry for a StaticRoute (from its StaticRouteNodeStatus), if any. */
  async nodeEntry(node: SimNode | string, name: string): Promise<NodeEntryJson | undefined> {
    const report = await this.nodeReport(node);
    return report?.status?.staticRoutes?.[name] ?? undefined;
  }

  /** A node's report (StaticRouteNodeStatus), if it exists. */
  async nodeReport(node: SimNode | string): Promise<NodeReportJson | undefined> {
    const nodeName = typeof node === 'string' ? node : node.name;
    const response = await this.controlPlane.request<NodeReportJson>(
      'GET',
      `/apis/networking.digitalocean.com/v1/staticroutenodestatuses/${nodeName}`,
    );
    return response.status === 200 ? response.body : undefined;
  }

  /**
   * The Events about the cluster-scoped object `name` (`kubectl get events --field-selector involvedObject.name=...`),
   * optionally of one type and one reason. `allNamespaces` looks beyond `default`, where they belong.
   */
  async events(
    name: string,
    filter: { type?: string; reason?: string; allNamespaces?: boolean } = {},
  ): Promise<EventJson[]> {
    const selector = [
      `involvedObject.name=${name}`,
      ...(filter.type ? [`type=${filter.type}`] : []),
      ...(filter.reason ? [`reason=${filter.reason}`] : []),
    ].join(',');
    const where = filter.allNamespaces ? ['-A'] : ['-n', 'default'];
    const result = await this.controlPlane.kubectl([
      'get',
      'events',
      ...where,
      '--field-selector',
      selector,
      '-o',
      'json',
    ]);
    if (result.code !== 0) throw new Error(`kubectl get events failed: ${result.stderr}`);
    return (JSON.parse(result.stdout) as { items: EventJson[] }).items;
  }

  /** Stops everything that was started (also after a failed start). */
  async destroy(): Promise<void> {
    await this.stopOperators().catch(() => undefined);
    await this.stopAggregators().catch(() => undefined);
    await this.parts?.network.destroy().catch(() => undefined);
    await this.parts?.controlPlane.stop().catch(() => undefined);
    this.parts = undefined;
    if (this.stateRootDir === undefined) return;
    // SR_E2E_KEEP_LOGS=1 keeps the operators' logs (the folder is printed) for debugging.
    if (process.env.SR_E2E_KEEP_LOGS) console.log(`operator logs kept in ${this.stateRootDir}`);
    else rmSync(this.stateRootDir, { recursive: true, force: true });
  }
}

/** The parts of a StaticRoute tests read. */
export interface StaticRouteJson {
  metadata: {
    name: string;
    uid: string;
    generation: number;
    finalizers?: string[];
    resourceVersion: string;
    deletionTimestamp?: string;
  };
  spec: Record<string, unknown>;
  status?: {
    ready?: string;
    observedGeneration?: number;
    notReady?: Array<{ state: string; message: string; count: number; nodes: string[] }>;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    unreachableGateways?: string[];
  };
}

/** The parts of an Event tests read. */
export interface EventJson {
  type: string;
  reason: string;
  message: string;
  /** Repeats folded into this Event. */
  count?: number;
  metadata: { namespace: string };
}

/** One node's entry for a StaticRoute in its report. */
export interface NodeEntryJson {
  uid: string;
  generation?: number;
  state: string;
  message?: string;
  routes: number;
  unreachableGateways?: string[];
}

/** A StaticRouteNodeStatus as tests read it. */
export interface NodeReportJson {
  metadata: { name: string; ownerReferences?: Array<{ kind: string; name: string }> };
  status?: {
    heartbeatTime?: string;
    summary?: { staticRoutes: number; notReady: number; routes: number };
    staticRoutes?: Record<string, NodeEntryJson | null>;
    gateways?: Record<string, { state: string; since?: string; reason?: string } | null>;
    gatewayHealthCheck?: string;
  };
}

/** Routes with our protocol on a node, as `dst -> gateway(s)` text (sorted), for compact assertions. */
export async function ourRoutes(node: SimNode, protocol = OURS): Promise<string[]> {
  const routes = await node.routes({ table: 254 });
  return routes
    .filter((route) => route.protocol === protocol)
    .map(describeRoute)
    .sort();
}

export function describeRoute(route: Route): string {
  const via = route.nexthops
    ? route.nexthops
        .map((hop) => hop.gateway)
        .sort()
        .join(',')
    : (route.gateway ?? '-');
  return `${route.dst} via ${via}`;
}

/** Waits until every node in `nodes` holds exactly `expected` routes of ours. */
export async function waitForRoutes(nodes: SimNode[], expected: string[], timeoutMs = 30_000): Promise<void> {
  const want = [...expected].sort();
  for (const node of nodes) {
    await eventually(
      async () => {
        const have = await ourRoutes(node);
        return JSON.stringify(have) === JSON.stringify(want) ? have : undefined;
      },
      `${node.name} to hold ${JSON.stringify(want)} (has ${JSON.stringify(await ourRoutes(node))})`,
      timeoutMs,
    );
  }
}
