/**
 * One run's resources (processes, network namespaces, temp folder) and the guarantees that they go away.
 *
 * Guarantees:
 * - `dispose()` kills every process started through the scope (whole process groups), deletes its namespaces
 *   (killing whatever still runs inside them) and removes its folder.
 * - If the owner process dies without calling `dispose()` (even `kill -9`), its children die with it: each one is
 *   started under `setpriv --pdeathsig SIGKILL`, and a detached reaper process that polls the owner removes the
 *   namespaces and the folder within a fraction of a second.
 * - On a normal `process.exit()` without `dispose()`, an exit hook does the same synchronously.
 *
 * Caveat: a process started here that forks grandchildren outside its process group is only caught by namespace
 * deletion (for processes inside a namespace) or by `cleanupLeftovers()` (command lines naming the run folder).
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from '../exec.js';
import { helperScriptPath } from './helper-scripts.js';
import { NETNS_PREFIX, testbedRoot } from './paths.js';

/** Options of {@link RunScope.spawn}. */
export interface ScopedSpawnOptions {
  /** Run inside this network namespace (`ip netns exec`). Defaults to the root namespace. */
  netns?: string;
  /** Variables added to the test process's environment. */
  env?: Record<string, string>;
  /** As for `child_process.spawn`. Defaults to `['ignore', 'pipe', 'pipe']`. */
  stdio?: StdioOptions;
  /** Working directory. Defaults to the test process's. */
  cwd?: string;
}

/** Start time of a process in clock ticks since boot; with the pid, it names a process even across pid reuse. */
export function processStartTime(pid: number): string | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const stat = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited; only its parent has not collected it yet.
    return stat[0] === 'Z' || stat[0] === 'X' ? null : (stat[19] ?? null);
  } catch {
    return null;
  }
}

const liveScopes = new Set<RunScope>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const scope of liveScopes) scope.disposeSync();
  });
}

/** Waits until `child` has exited; resolves at once when it already has. */
export function waitForExit(child: ChildProcess, timeoutMs?: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      if (timer) clearTimeout(timer);
      resolve(true);
    });
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Processes, namespaces and files of one control plane or one network. */
export class RunScope {
  private readonly processes = new Map<number, ChildProcess>();
  private readonly namespaces = new Set<string>();
  private reaper: ChildProcess | undefined;
  private disposed = false;

  private constructor(
    /** `<ownerPid>-<random>`: part of every name the run creates. */
    readonly runId: string,
    /** The run's folder (removed by dispose). */
    readonly dir: string,
    readonly kind: string,
  ) {}

  /** Creates the run folder, records the owner and starts the reaper that cleans up if the owner dies. */
  static create(kind: string): RunScope {
    const runId = `${process.pid}-${randomBytes(3).toString('hex')}`;
    const dir = path.join(testbedRoot(), runId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      path.join(dir, 'owner.json'),
      JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid), kind }),
    );
    const scope = new RunScope(runId, dir, kind);
    scope.reaper = spawn(process.execPath, [helperScriptPath('reaper'), 'watch', dir], {
      detached: true,
      stdio: 'ignore',
    });
    scope.reaper.unref();
    liveScopes.add(scope);
    installExitHook();
    return scope;
  }

  /** Name for a network namespace of this run: `otb-<runId>-<role>`. */
  netnsName(role: string): string {
    return `${NETNS_PREFIX}${this.runId}-${role}`;
  }

  /**
   * Starts a process that dies with the owner (pdeathsig), in its own process group, optionally inside a network
   * namespace. It is killed by {@link terminate} or {@link dispose}.
   */
  spawn(command: string[], options: ScopedSpawnOptions = {}): ChildProcess {
    if (this.disposed) throw new Error(`test bed run ${this.runId} is already torn down`);
    const inNamespace = options.netns ? ['ip', 'netns', 'exec', options.netns] : [];
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', ...inNamespace, ...command], {
      detached: true,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const pid = child.pid;
    if (pid !== undefined) {
      this.processes.set(pid, child);
      this.writePids();
      child.once('exit', () => {
        // The group may still hold grandchildren; they are killed with the group on dispose.
        if (this.processes.get(pid) === child) {
          this.processes.delete(pid);
          this.writePids();
        }
      });
    }
    return child;
  }

  /** Stops one process group: `signal` first, SIGKILL after `graceMs`. Resolves when the leader has exited. */
  async terminate(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const pid = child.pid;
    if (pid === undefined) return;
    signalGroup(pid, signal);
    if (signal !== 'SIGKILL' && !(await waitForExit(child, graceMs))) signalGroup(pid, 'SIGKILL');
    await waitForExit(child);
    // Grandchildren left in the group (the leader is gone) get the same end.
    signalGroup(pid, 'SIGKILL');
  }

  /** Records a namespace before it is created, so that a crash in between still gets it deleted. */
  recordNetns(name: string): void {
    this.namespaces.add(name);
    appendFileSync(path.join(this.dir, 'netns'), `${name}\n`);
  }

  /** Kills every process inside the namespace and deletes it. */
  async deleteNetns(name: string): Promise<void> {
    await killNetnsProcesses(name);
    await runCommand(['ip', 'netns', 'delete', name], { allowFailure: true });
    this.namespaces.delete(name);
    writeFileSync(path.join(this.dir, 'netns'), [...this.namespaces].map((entry) => `${entry}\n`).join(''));
  }

  /** Kills all processes, deletes all namespaces, removes the folder. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.processes.values()].map((child) => this.terminate(child, 'SIGKILL')));
    for (const name of [...this.namespaces]) await this.deleteNetns(name);
    rmSync(this.dir, { recursive: true, force: true });
    this.stopReaper();
    if (this.reaper) await waitForExit(this.reaper, 2000);
    liveScopes.delete(this);
  }

  /** Synchronous variant for the process exit hook. */
  disposeSync(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const pid of this.processes.keys()) signalGroup(pid, 'SIGKILL');
    for (const name of this.namespaces) {
      const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean)) signalGroup(Number(pid), 'SIGKILL');
      spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.stopReaper();
    liveScopes.delete(this);
  }

  /** Pids of the processes currently running for this scope (group leaders). */
  pids(): number[] {
    return [...this.processes.keys()];
  }

  private stopReaper(): void {
    // With the folder gone the reaper would exit on its next poll; killing it keeps "no process left" exact.
    if (this.reaper?.pid !== undefined) signalGroup(this.reaper.pid, 'SIGKILL');
  }

  private writePids(): void {
    if (this.disposed) return;
    const lines = [...this.processes.keys()].map((pid) => `${pid} ${processStartTime(pid) ?? '?'}\n`);
    try {
      writeFileSync(path.join(this.dir, 'pids'), lines.join(''));
    } catch {
      // The folder may be gone during teardown.
    }
  }
}

/** Kills every process that lives in network namespace `name` (a namespace outlives `ip netns delete` otherwise). */
export async function killNetnsProcesses(name: string): Promise<void> {
  const { stdout } = await runCommand(['ip', 'netns', 'pids', name], { allowFailure: true });
  for (const pid of stdout.split(/\s+/).filter(Boolean)) signalGroup(Number(pid), 'SIGKILL');
}
