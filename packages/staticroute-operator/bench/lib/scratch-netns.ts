/**
 * A throwaway network namespace shaped like a test-bed node (`eth0` 10.116.0.10/20 on a veth, `lo` up, no other
 * route), for kernel baselines that must not disturb a running operator: `ip -batch`, one `ip route` process per
 * route, the netlink adapter alone. Nothing in it leads anywhere: the veth's peer stays inside the namespace.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';

let counter = 0;

function ip(args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr.trim()}`);
}

/** Runs `command` to completion and returns its wall time in ms (monotonic); throws on failure. */
export function timed(command: string[], input?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command[0] as string, command.slice(1), {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`${command.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`));
    });
    if (input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
    }
  });
}

export class ScratchNamespace {
  readonly name: string;
  readonly gateways = ['10.116.0.5', '10.116.0.12'];
  private readonly children = new Set<ChildProcess>();

  private constructor(name: string) {
    this.name = name;
  }

  static create(): ScratchNamespace {
    const name = `srbench-${process.pid}-${counter++}`;
    ip(['netns', 'add', name]);
    try {
      ip(['-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
      ip(['-n', name, 'addr', 'add', '10.116.0.10/20', 'dev', 'eth0']);
      for (const link of ['eth0', 'peer0', 'lo']) ip(['-n', name, 'link', 'set', link, 'up']);
    } catch (error) {
      spawnSync('ip', ['netns', 'del', name]);
      throw error;
    }
    const scratch = new ScratchNamespace(name);
    // Whatever happens to this process, the namespace and what runs in it go with it.
    process.once('exit', () => scratch.destroy());
    return scratch;
  }

  /** Wall time (ms) of `ip -n NS -batch FILE` with these lines. */
  async batch(lines: string[], file: string): Promise<number> {
    writeFileSync(file, lines.length > 0 ? `${lines.join('\n')}\n` : '');
    return timed(['ip', '-n', this.name, '-batch', file]);
  }

  /** Wall time (ms) of one `ip -n NS <args>` process. */
  run(args: string[]): Promise<number> {
    return timed(['ip', '-n', this.name, ...args]);
  }

  /** Starts a process inside the namespace (the shape of `SimHost.spawn`); it is killed with this process. */
  spawn(
    command: string[],
    options: { env?: Record<string, string>; stdio?: StdioOptions; cwd?: string } = {},
  ): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, ...command], {
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Removes every route with protocol `protocol`. */
  flush(protocol: number): void {
    ip(['-n', this.name, 'route', 'flush', 'proto', String(protocol)]);
  }

  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

/** The `index`th host address of 198.18.0.0/15 (RFC 2544's benchmarking range), offset by `base`. */
export function benchAddress(index: number, base = 0): string {
  const value = index + base;
  return `198.${18 + ((value >> 16) & 1)}.${(value >> 8) & 255}.${value & 255}`;
}
