/** Shared helpers of the test bed's own integration tests. */
import https from 'node:https';
import { readdirSync, readFileSync } from 'node:fs';
import type { ControlPlane } from '@opkit/testbed';

/** One decoded watch event. */
export interface WatchEvent {
  type: string;
  object: {
    metadata?: { name?: string; resourceVersion?: string; deletionTimestamp?: string; finalizers?: string[] };
    code?: number;
    reason?: string;
    spec?: Record<string, unknown>;
    status?: Record<string, unknown>;
  };
}

/** An open watch stream; `events` fills as they arrive; `status` is the HTTP status. */
export interface OpenWatch {
  events: WatchEvent[];
  status: number;
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET <path>?watch=1...` as the admin user and collects events in arrival order. */
export function openWatch(controlPlane: ControlPlane, path: string): Promise<OpenWatch> {
  return new Promise((resolve, reject) => {
    const request = https.get(new URL(path, controlPlane.server), {
      ca: controlPlane.caPem,
      agent: false,
      headers: { authorization: `Bearer ${controlPlane.adminToken}` },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      const events: WatchEvent[] = [];
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line) events.push(JSON.parse(line) as WatchEvent);
        }
      });
      const ended = new Promise<void>((done) => {
        response.once('end', done);
        response.once('close', done);
        response.once('error', () => done());
      });
      resolve({ events, status: response.statusCode ?? 0, ended, close: () => request.destroy() });
    });
  });
}

type Falsy = undefined | null | false | 0 | '';

/** Polls `check` every 50 ms until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as T;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** Pids of live (non-zombie) processes whose command line contains `needle`. */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmdline.includes(needle) && state !== 'Z') found.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** TCP ports in LISTEN state on this machine's root namespace (IPv4 and IPv6). */
export function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns[3] === '0A') ports.add(parseInt(columns[1]?.split(':')[1] ?? '0', 16));
    }
  }
  return ports;
}

/**
 * Compiles the test bed's sources to plain JavaScript (no type check) in a folder under the package's
 * node_modules, so that a separate `node` process (a stand-in for a test process) can import it; returns the
 * path of its index.js. Node 20 cannot import TypeScript directly.
 */
export async function transpileTestbed(): Promise<string> {
  const ts = (await import('typescript')).default;
  const path = await import('node:path');
  const { mkdirSync, readdirSync: list, readFileSync: read, writeFileSync } = await import('node:fs');
  const packageRoot = path.resolve(import.meta.dirname, '../..');
  const out = path.join(packageRoot, 'node_modules', '.cache', `testbed-js-${process.pid}`);
  const walk = (dir: string): string[] =>
    list(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
    );
  for (const file of walk(path.join(packageRoot, 'src')).filter((name) => name.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(read(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    const target = path.join(out, 'src', path.relative(path.join(packageRoot, 'src'), file)).replace(/\.ts$/, '.js');
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  // The build script is found relative to the modules (../../scripts from src/<dir>/).
  mkdirSync(path.join(out, 'scripts'), { recursive: true });
  writeFileSync(path.join(out, 'package.json'), '{"type":"module"}');
  writeFileSync(
    path.join(out, 'scripts', 'build-control-plane.sh'),
    read(path.join(packageRoot, 'scripts', 'build-control-plane.sh'), 'utf8'),
  );
  return path.join(out, 'src', 'index.js');
}
