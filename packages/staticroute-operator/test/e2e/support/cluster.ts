/**
 * End-to-end fixture: a real control plane with the release applied, simulated nodes (network namespaces) and one
 * operator process per node, started the way the DaemonSet starts it (NODE_NAME, the shipped ServiceAccount's
 * token, the image's entry point) but inside the node's namespace.
 */
import type { ChildProcess } from 'node:child_process';
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
} from '@opkit/testbed';
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
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
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

export class E2eCluster {
  readonly operators = new Map<string, OperatorProcess>();
  private readonly stateRoot = mkdtempSync(path.join(tmpdir(), 'sr-e2e-'));
  private kubeconfigForSa: string | undefined;

  private constructor(
    readonly controlPlane: ControlPlane,
    readonly network: SimNetwork,
  ) {}

  /** Builds the operator, starts a control plane and `nodes` nodes, and applies the release. */
  static async start(nodes = 3): Promise<E2eCluster> {
    await buildOperator();
    const controlPlane = await startControlPlane();
    try {
      await controlPlane.kubectl(['apply', '-f', RELEASE]);
      await controlPlane.kubectl([
        'wait',
        '--for=condition=Established',
        'crd/staticroutes.networking.digitalocean.com',
      ]);
      const network = await startNetwork({ nodes, controlPlane });
      return new E2eCluster(controlPlane, network);
    } catch (error) {
      await controlPlane.stop();
      throw error;
    }
  }

  get nodes(): SimNode[] {
    return this.network.nodes;
  }

  /** Kubeconfig (inside node namespaces) with a token of the shipped ServiceAccount. */
  async serviceAccountKubeconfig(): Promise<string> {
    if (!this.kubeconfigForSa) {
      const token = await this.controlPlane.mintToken('static-routes', 'k8s-staticroute-operator', {
        expirationSeconds: 7200,
      });
      this.kubeconfigForSa = await this.network.nodeKubeconfig(token);
    }
    return this.kubeconfigForSa;
  }

  /** Starts the operator on `node` (replacing none: stop the old one first). Resolves once it reports ready. */
  async startOperator(node: SimNode, options: StartOperatorOptions = {}): Promise<OperatorProcess> {
    const kubeconfig = options.kubeconfig ?? (await this.serviceAccountKubeconfig());
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
        LOG_LEVEL: 'debug',
        ...options.env,
      },
    });
    const log = createWriteStream(logFile);
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const operator: OperatorProcess = {
      node,
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

  async destroy(): Promise<void> {
    await this.stopOperators().catch(() => undefined);
    await this.network.destroy().catch(() => undefined);
    await this.controlPlane.stop().catch(() => undefined);
    // SR_E2E_KEEP_LOGS=1 keeps the operators' logs (the folder is printed) for debugging.
    if (process.env.SR_E2E_KEEP_LOGS) console.log(`operator logs kept in ${this.stateRoot}`);
    else rmSync(this.stateRoot, { recursive: true, force: true });
  }
}

/** The parts of a StaticRoute tests read. */
export interface StaticRouteJson {
  metadata: { name: string; generation: number; finalizers?: string[]; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: {
    ready?: string;
    nodes?: Record<string, { state: string; message: string; observedGeneration?: number; routes?: number }>;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
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
