/**
 * The operator as a separate process, started with the real CLI (`node dist/ops/cli.js run <fixture>`), as in a
 * pod: its readiness and metrics come from its probe server, its memory and CPU time from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchDir, frameworkDir } from './report.js';

/**
 * The framework build under test: this package, or `$OPKIT_BENCH_FRAMEWORK_DIR`, a copy of it (dist/, package.json,
 * node_modules/, bench/fixtures/) with a modified build, to measure an engine change before making it.
 */
const frameworkUnderTest = path.resolve(process.env.OPKIT_BENCH_FRAMEWORK_DIR ?? frameworkDir);
const cli = path.join(frameworkUnderTest, 'dist/ops/cli.js');
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux architecture Node runs on). */
const USER_HZ = 100;

/** Options of {@link startOperatorProcess}. */
export interface OperatorProcessOptions {
  kubeconfigPath: string;
  /** The benchmark CRD the fixture operator handles. */
  plural: string;
  /** Objects handled in parallel (the CLI's `--concurrency`); default: the framework's default. */
  concurrency?: number;
  /** More Node.js flags for the operator process (experiments: `--max-semi-space-size=1`, `--cpu-prof`). */
  nodeFlags?: string[];
}

/** Node.js flags for the operator process from `--node-flags="..."` on the benchmark's command line. */
export function nodeFlagsFromArgs(): string[] {
  const arg = process.argv.slice(2).find((a) => a.startsWith('--node-flags='));
  return arg ? arg.slice('--node-flags='.length).split(' ').filter(Boolean) : [];
}

/** A running operator process. */
export interface OperatorProcess {
  readonly pid: number;
  readonly probePort: number;
  /** Resolves when `/readyz` answers 200 (startup done, every object of the initial list handled once). */
  waitReady(timeoutMs: number): Promise<number>;
  /** The `/metrics` text. */
  metrics(): Promise<string>;
  /** VmRSS, VmHWM (peak), RssAnon and RssFile (mapped files: mostly the node binary) in bytes, from /proc. */
  memory(): { rss: number; peak: number; anon: number; file: number };
  /** User + system CPU time used so far, in ms. */
  cpuMs(): number;
  /** Two full GCs in the process (see fixtures/gc-on-signal.mjs). */
  forceGc(): Promise<void>;
  /** SIGTERM, then waits for the exit (SIGKILL after 60 s). */
  stop(): Promise<void>;
}

/** Starts the fixture operator with the CLI and a probe server on a free loopback port. */
export async function startOperatorProcess(options: OperatorProcessOptions): Promise<OperatorProcess> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`pnpm run build\` first`);
  const probePort = await freePort();
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'opkit-bench-'));
  const logFile = path.join(logDir, 'operator.log');
  const log = createWriteStream(logFile);
  const args = [
    ...(options.nodeFlags ?? []),
    '--expose-gc',
    '--import',
    path.join(benchDir, 'fixtures/gc-on-signal.mjs'),
    cli,
    'run',
    path.join(frameworkUnderTest, 'bench/fixtures/widget-operator.mjs'),
    '--kubeconfig',
    options.kubeconfigPath,
    '--probe-host',
    '127.0.0.1',
    '--probe-port',
    String(probePort),
    '--log-level',
    'warn',
    ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: frameworkUnderTest,
    env: { ...process.env, BENCH_PLURAL: options.plural, NODE_NAME: 'bench' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pid = child.pid as number;
  const failIfExited = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`operator exited (${child.exitCode ?? child.signalCode}):\n${text.slice(-3000)}`);
    }
  };
  return {
    pid,
    probePort,
    async waitReady(timeoutMs) {
      const started = performance.now();
      for (;;) {
        await failIfExited();
        const status = await probe(probePort, '/readyz').catch(() => 0);
        if (status === 200) return performance.now() - started;
        if (performance.now() - started > timeoutMs) throw new Error(`operator not ready after ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    metrics: () => fetchText(probePort, '/metrics'),
    memory() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
      return {
        rss: kib('VmRSS') * 1024,
        peak: kib('VmHWM') * 1024,
        anon: kib('RssAnon') * 1024,
        file: kib('RssFile') * 1024,
      };
    },
    cpuMs: () => processCpuMs(pid),
    async forceGc() {
      child.kill('SIGUSR2');
      await sleep(1000);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** User + system CPU time of process `pid` so far, in ms (from /proc/<pid>/stat). */
export function processCpuMs(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/** The pids of the processes whose command line mentions `text` (e.g. a control plane's run folder). */
export function pidsMentioning(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => arg.includes(text))) found.set(path.basename(args[0] ?? ''), Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** A sample of a Prometheus text exposition: the sum of every series of `name` whose labels contain `match`. */
export function metricSum(text: string, name: string, match = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (match && !line.includes(match)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function probe(port: number, pathname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

function fetchText(port: number, pathname: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
}
