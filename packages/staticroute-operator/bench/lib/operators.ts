/**
 * Operator processes for the benchmarks: the image's entry point (`dist/main.js`) inside each node's namespace with
 * the shipped ServiceAccount's token, as the e2e fixture starts them, but with a chosen Node.js binary (the image
 * runs Node 24, this machine has Node 20), a chosen log level (`info`, the DaemonSet's default, unless profiling) and
 * optional Node.js flags (`--cpu-prof`). Readiness comes from the operator's own `ready` log line, which also dates it.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SimNode } from '@opkit/testbed';
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

export interface OperatorOptions {
  runtime: Runtime;
  kubeconfig: string;
  /** Where logs, state and CPU profiles go. */
  dir: string;
  logLevel?: string;
  nodeFlags?: string[];
  env?: Record<string, string>;
}

/** One operator process on one node. */
export class OperatorProcess {
  /** Wall-clock time of the spawn (ms). */
  readonly startedAt: number;
  readonly logFile: string;

  private constructor(
    readonly node: SimNode,
    readonly child: ChildProcess,
    logFile: string,
    startedAt: number,
  ) {
    this.logFile = logFile;
    this.startedAt = startedAt;
  }

  static start(node: SimNode, options: OperatorOptions): OperatorProcess {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm run build\` first`);
    mkdirSync(options.dir, { recursive: true });
    const logFile = path.join(options.dir, `${node.name}-${options.runtime.label}-${Date.now()}.log`);
    // The process writes its log straight to the file: no pipe through this process, which is busy measuring.
    const out = openSync(logFile, 'w');
    const startedAt = Date.now();
    const child = node.spawn([options.runtime.binary, ...(options.nodeFlags ?? []), MAIN], {
      stdio: ['ignore', out, out],
      cwd: options.dir,
      env: {
        NODE_NAME: node.name,
        KUBECONFIG: options.kubeconfig,
        OPKIT_STATE_DIR: path.join(options.dir, `state-${node.name}`),
        PROBE_PORT: '9860',
        LOG_LEVEL: options.logLevel ?? 'info',
        ...options.env,
      },
    });
    closeSync(out);
    return new OperatorProcess(node, child, logFile, startedAt);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The operator's JSON log lines so far. */
  logLines(): Array<Record<string, unknown> & { msg?: string; time?: string }> {
    const lines: Array<Record<string, unknown>> = [];
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line being written.
      }
    }
    return lines;
  }

  /** Resolves with the wall-clock time of the `ready` log line (initial list handled); rejects if the process exits. */
  async waitReady(timeoutMs = 120_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ready = this.logLines().find((line) => line.msg === 'ready');
      if (ready?.time) return Date.parse(ready.time);
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`operator on ${this.node.name} exited:\n${readFileSync(this.logFile, 'utf8').slice(-3000)}`);
      }
      if (Date.now() > deadline) throw new Error(`operator on ${this.node.name} not ready in ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** VmRSS, VmHWM (peak), RssAnon and RssFile, in bytes. */
  memory(): { rss: number; peak: number; anon: number; file: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM'), anon: kib('RssAnon'), file: kib('RssFile') };
  }

  /**
   * The V8 heap as the operator's `/metrics` reports it (prom-client's default metrics), in bytes: what the RSS is
   * made of. Empty when the probe server does not answer.
   */
  async heap(): Promise<Record<string, number>> {
    const result = await this.node.exec(['curl', '-sf', 'http://127.0.0.1:9860/metrics'], { allowFailure: true });
    const heap: Record<string, number> = {};
    if (result.code !== 0) return heap;
    const wanted =
      /^(nodejs_heap_size_used_bytes|nodejs_heap_size_total_bytes|nodejs_external_memory_bytes|nodejs_heap_space_size_(?:used|total)_bytes\{space="(?:new|old|code|large_object)"\})\s+(\d+(?:\.\d+)?(?:e\+\d+)?)$/;
    for (const line of result.stdout.split('\n')) {
      const match = wanted.exec(line);
      if (match) heap[(match[1] as string).replace(/^nodejs_/, '').replace(/_bytes/, '')] = Number(match[2]);
    }
    return heap;
  }

  /** User + system CPU time so far, in ms (USER_HZ = 100). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
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

/** Node.js flags for the operators from `--node-flags="--max-semi-space-size=1 ..."` (experiments). */
export function nodeFlagsOption(): string[] {
  const arg = process.argv.slice(2).find((a) => a.startsWith('--node-flags='));
  return arg ? arg.slice('--node-flags='.length).split(' ').filter(Boolean) : [];
}

export async function startOperators(nodes: SimNode[], options: OperatorOptions): Promise<OperatorProcess[]> {
  const operators = nodes.map((node) => OperatorProcess.start(node, options));
  await Promise.all(operators.map((operator) => operator.waitReady()));
  return operators;
}

export async function stopOperators(operators: OperatorProcess[]): Promise<void> {
  await Promise.all(operators.map((operator) => operator.stop()));
}
