/**
 * The operator's processes for the benchmarks, started from the image's entry point (`dist/main.js`) with the release's
 * settings (lib/release.ts):
 * - a node agent per node ({@link OperatorProcess}), inside the node's namespace with NODE_NAME and a token of the
 *   agents' ServiceAccount bound to a pod on that node, as the DaemonSet runs it;
 * - the aggregator ({@link AggregatorProcess}), `main.js aggregator` on the host with the aggregator's ServiceAccount,
 *   as a replica of its Deployment runs it (leader election included).
 * Unlike the e2e fixture, they run with a chosen Node.js binary (the image runs Node 24), a chosen log level (`info`,
 * the release's default, unless profiling) and optional Node.js flags (`--cpu-prof`). Readiness comes from the
 * process's own `ready` log line, which also dates it.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { SimNode } from '@opkit/testbed';
import { agentContainer, aggregatorContainer } from './release.js';
import { PACKAGE_DIR, sleep } from './report.js';

export const MAIN = path.join(PACKAGE_DIR, 'dist/main.js');

/** A Node.js binary to run the operator with. */
export interface Runtime {
  /** `node20`, `node24`, ... */
  label: string;
  binary: string;
  version: string;
}

export function runtimeOf(binary: string): Runtime {
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  return { label: `node${version.slice(1).split('.')[0]}`, binary, version };
}

/**
 * The runtimes to compare: this process's Node.js, and Node 24 when a binary is given (`--node24=PATH` or
 * `$NODE24`) or found where run.sh installs it.
 */
export function runtimes(node24?: string): Runtime[] {
  const own = runtimeOf(process.execPath);
  const candidate = node24 ?? process.env.NODE24;
  const list = [own];
  if (candidate && existsSync(candidate)) {
    const other = runtimeOf(candidate);
    if (other.version !== own.version) list.push(other);
  } else if (candidate) {
    console.warn(`Node 24 binary ${candidate} not found: measuring ${own.version} only`);
  }
  return list;
}

/** VmRSS, VmHWM (peak), RssAnon and RssFile, in bytes. */
export interface Memory {
  rss: number;
  peak: number;
  anon: number;
  file: number;
}

type LogLine = Record<string, unknown> & { msg?: string; time?: string };

/** What agents and the aggregator have in common: a child process logging JSON lines to a file. */
abstract class OperatorChild {
  protected constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
    /** Wall-clock time of the spawn (ms). */
    readonly startedAt: number,
  ) {}

  /** How the process is named in messages (`agent on node-1`, `aggregator`). */
  abstract get label(): string;

  get pid(): number {
    return this.child.pid as number;
  }

  /** The process's JSON log lines so far. */
  logLines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        // A line being written.
      }
    }
    return lines;
  }

  /**
   * Resolves with the wall-clock time of the `ready` log line (agent: initial list handled and the table converged;
   * aggregator: leading and its caches synced); rejects if the process exits.
   */
  async waitReady(timeoutMs = 120_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = this.logLines().find((line) => line.msg === 'ready');
      if (ready?.time) return Date.parse(ready.time);
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`${this.label} exited:\n${readFileSync(this.logFile, 'utf8').slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.label} not ready in ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  memory(): Memory {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM'), anon: kib('RssAnon'), file: kib('RssFile') };
  }

  /** User + system CPU time so far, in ms (USER_HZ = 100). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }

  /** The process's `/metrics` text, or undefined when its probe server does not answer. */
  protected abstract metricsText(): Promise<string | undefined>;

  /**
   * The V8 heap as the process's `/metrics` reports it (prom-client's default metrics), in bytes: what the RSS is made
   * of. Empty when the probe server does not answer.
   */
  async heap(): Promise<Record<string, number>> {
    const text = await this.metricsText();
    const heap: Record<string, number> = {};
    if (text === undefined) return heap;
    const wanted =
      /^(nodejs_heap_size_used_bytes|nodejs_heap_size_total_bytes|nodejs_external_memory_bytes|nodejs_heap_space_size_(?:used|total)_bytes\{space="(?:new|old|code|large_object)"\})\s+(\d+(?:\.\d+)?(?:e\+\d+)?)$/;
    for (const line of text.split('\n')) {
      const match = wanted.exec(line);
      if (match) heap[(match[1] as string).replace(/^nodejs_/, '').replace(/_bytes/, '')] = Number(match[2]);
    }
    return heap;
  }

  /** SIGTERM (the graceful path) and wait for the exit; SIGKILL after 30 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

export interface OperatorOptions {
  runtime: Runtime;
  /** The agent's kubeconfig: per node, since each agent's token is bound to a pod on its node. */
  kubeconfig: string | ((node: SimNode) => string);
  /** Where logs, state and CPU profiles go. */
  dir: string;
  /** LOG_LEVEL; the release's (`info`) by default. */
  logLevel?: string;
  nodeFlags?: string[];
  /** Variables set over the release's. */
  env?: Record<string, string>;
}

/** The node agent on one node (the DaemonSet's pod), inside the node's namespace. */
export class OperatorProcess extends OperatorChild {
  private constructor(
    readonly node: SimNode,
    child: ChildProcess,
    logFile: string,
    startedAt: number,
    private readonly probePort: string,
  ) {
    super(child, logFile, startedAt);
  }

  get label(): string {
    return `agent on ${this.node.name}`;
  }

  static start(node: SimNode, options: OperatorOptions): OperatorProcess {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm run build\` first`);
    mkdirSync(options.dir, { recursive: true });
    const logFile = path.join(options.dir, `${node.name}-${options.runtime.label}-${Date.now()}.log`);
    const release = agentContainer();
    const env: Record<string, string> = {
      ...release.env,
      NODE_NAME: node.name,
      KUBECONFIG: typeof options.kubeconfig === 'string' ? options.kubeconfig : options.kubeconfig(node),
      // The DaemonSet's emptyDir.
      OPKIT_STATE_DIR: path.join(options.dir, `state-${node.name}`),
      ...(options.logLevel ? { LOG_LEVEL: options.logLevel } : {}),
      ...options.env,
    };
    // The process writes its log straight to the file: no pipe through this process, which is busy measuring.
    const out = openSync(logFile, 'w');
    const startedAt = Date.now();
    const child = node.spawn([options.runtime.binary, ...(options.nodeFlags ?? []), MAIN, ...release.args], {
      stdio: ['ignore', out, out],
      cwd: options.dir,
      env,
    });
    closeSync(out);
    return new OperatorProcess(node, child, logFile, startedAt, env.PROBE_PORT ?? '9860');
  }

  protected async metricsText(): Promise<string | undefined> {
    const url = `http://127.0.0.1:${this.probePort}/metrics`;
    const result = await this.node.exec(['curl', '-sf', '--max-time', '10', url], { allowFailure: true });
    return result.code === 0 ? result.stdout : undefined;
  }
}

/** Options of {@link AggregatorProcess.start}. */
export interface AggregatorOptions {
  runtime: Runtime;
  /** A kubeconfig (on the host) with a token of the aggregator's ServiceAccount. */
  kubeconfig: string;
  dir: string;
  /** The replica's identity in the leader election (POD_NAME). Defaults to `aggregator-0`. */
  identity?: string;
  /** LOG_LEVEL; the release's (`info`) by default. */
  logLevel?: string;
  nodeFlags?: string[];
  /** Variables set over the release's. */
  env?: Record<string, string>;
}

/** A free TCP port on loopback (the aggregator runs on the host, where the release's 9860 may be taken). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A replica of the aggregator's Deployment, on the host (a pod on the pod network would reach the API the same way). */
export class AggregatorProcess extends OperatorChild {
  private constructor(
    child: ChildProcess,
    logFile: string,
    startedAt: number,
    readonly identity: string,
    readonly probePort: number,
  ) {
    super(child, logFile, startedAt);
  }

  get label(): string {
    return `aggregator ${this.identity}`;
  }

  static async start(options: AggregatorOptions): Promise<AggregatorProcess> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm run build\` first`);
    mkdirSync(options.dir, { recursive: true });
    const identity = options.identity ?? 'aggregator-0';
    const logFile = path.join(options.dir, `${identity}-${options.runtime.label}-${Date.now()}.log`);
    const release = aggregatorContainer();
    const probePort = await freePort();
    const out = openSync(logFile, 'w');
    const startedAt = Date.now();
    const child = spawn(options.runtime.binary, [...(options.nodeFlags ?? []), MAIN, ...release.args], {
      stdio: ['ignore', out, out],
      cwd: options.dir,
      env: {
        PATH: process.env.PATH ?? '',
        ...release.env,
        POD_NAME: identity,
        KUBECONFIG: options.kubeconfig,
        PROBE_PORT: String(probePort),
        PROBE_ADDRESS: '127.0.0.1',
        ...(options.logLevel ? { LOG_LEVEL: options.logLevel } : {}),
        ...options.env,
      },
    });
    closeSync(out);
    return new AggregatorProcess(child, logFile, startedAt, identity, probePort);
  }

  protected async metricsText(): Promise<string | undefined> {
    const response = await fetch(`http://127.0.0.1:${this.probePort}/metrics`).catch(() => undefined);
    return response?.ok ? response.text() : undefined;
  }
}

/** Node.js flags for the operators from `--node-flags="--max-semi-space-size=1 ..."` (experiments). */
export function nodeFlagsOption(): string[] {
  const arg = process.argv.slice(2).find((a) => a.startsWith('--node-flags='));
  return arg ? arg.slice('--node-flags='.length).split(' ').filter(Boolean) : [];
}

/** Starts an agent on every node and waits until each is ready. */
export async function startOperators(nodes: SimNode[], options: OperatorOptions): Promise<OperatorProcess[]> {
  const operators = nodes.map((node) => OperatorProcess.start(node, options));
  await Promise.all(operators.map((operator) => operator.waitReady()));
  return operators;
}

/** Starts the aggregator and waits until it leads and is ready. */
export async function startAggregator(options: AggregatorOptions): Promise<AggregatorProcess> {
  const aggregator = await AggregatorProcess.start(options);
  await aggregator.waitReady();
  return aggregator;
}

export async function stopOperators(operators: ReadonlyArray<{ stop(): Promise<void> }>): Promise<void> {
  await Promise.all(operators.map((operator) => operator.stop()));
}
