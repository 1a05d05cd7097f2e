/**
 * Runs a container from an image bundle with a real OCI runtime: runc from Debian. (Debian 12's crun 1.8 refuses
 * hybrid cgroup hosts, where a controller is enabled on the unified hierarchy besides the v1 ones, as on the test
 * machines; runc places the container in cgroup v1 and applies the memory limit.)
 *
 * The image's root file system stays untouched: each run mounts an overlay (the cached rootfs as its lower layer,
 * an upper layer in the run's folder), as containerd's overlayfs snapshotter does, so the runtime can create mount
 * points without writing into the cache. The runtime's state lives in the run's folder too.
 *
 * Guarantees: the container process is the runtime's child in the foreground (`runc run`), started through the test
 * bed's RunScope, so it dies with the test process; {@link OciContainer.stop} sends SIGTERM (then SIGKILL after the
 * grace period), deletes the container and unmounts the overlay.
 */
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { requireTools, runCommand, type CommandResult } from '../exec.js';
import { RunScope, waitForExit } from '../lifetime/run-scope.js';
import { ociProcess, ociRuntimeSpec, type ContainerRunSpec } from './oci-spec.js';

/** Options of {@link runContainer}. */
export interface RunContainerOptions {
  /** The image's root file system (the bundle's `rootfs`). */
  rootfs: string;
  run: ContainerRunSpec;
  /** The OCI runtime binary (runc's command line). Defaults to `runc`. */
  runtime?: string;
  /** Container id prefix. Defaults to `otb`. */
  name?: string;
}

/** Options of {@link OciContainer.exec}. */
export interface ContainerExecOptions {
  input?: string;
  timeoutMs?: number;
}

/** A running container. */
export interface OciContainer {
  readonly id: string;
  /** The config.json the runtime was given. */
  readonly spec: Record<string, unknown>;
  /** The runtime process (`runc run`); its exit code is the container's. */
  readonly child: ChildProcess;
  /** stdout and stderr of the container so far. */
  logs(): string;
  /**
   * Runs a further process in the container with the container's own process settings (user, capabilities,
   * no_new_privs, environment), as `kubectl exec` does; never throws on a non-zero exit.
   */
  exec(args: string[], options?: ContainerExecOptions): Promise<CommandResult>;
  /** SIGTERM, SIGKILL after `graceMs` (default 10 s), then removal. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Removes the (empty) cgroup folders the runtime left behind, in every hierarchy. */
function removeCgroups(cgroupsPath: string): void {
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    // The container's folder, then the shared parent when no other container is left in it.
    for (const dir of [cgroupsPath, path.dirname(cgroupsPath)]) {
      try {
        rmdirSync(path.join('/sys/fs/cgroup', hierarchy, dir));
      } catch {
        // Not there, or not empty: nothing else to do.
      }
    }
  }
}

/** Starts a container; it runs until {@link OciContainer.stop} (or the test process ends). */
export async function runContainer(options: RunContainerOptions): Promise<OciContainer> {
  const runtime = options.runtime ?? 'runc';
  await requireTools([
    { command: [runtime, '--version'], debianPackage: runtime },
    { command: ['mount', '--version'], debianPackage: 'mount' },
  ]);
  const scope = RunScope.create('container');
  const id = `${options.name ?? 'otb'}-${randomBytes(4).toString('hex')}`;
  const stateDir = path.join(scope.dir, 'runtime-state');
  const layers = path.join(scope.dir, 'layers');
  const merged = path.join(layers, 'merged');
  for (const dir of [stateDir, path.join(layers, 'upper'), path.join(layers, 'work'), merged]) {
    mkdirSync(dir, { recursive: true });
  }
  const runtimeArgs = [runtime, '--root', stateDir];
  let mounted = false;
  try {
    await runCommand([
      'mount',
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${options.rootfs},upperdir=${path.join(layers, 'upper')},workdir=${path.join(layers, 'work')}`,
      merged,
    ]);
    mounted = true;
    const cgroupsPath = `/opkit-testbed/${id}`;
    const spec = ociRuntimeSpec(options.run, merged, cgroupsPath);
    const bundle = path.join(scope.dir, 'bundle');
    mkdirSync(bundle);
    writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    const logFile = path.join(scope.dir, 'container.log');
    const log = createWriteStream(logFile);
    const child = scope.spawn([...runtimeArgs, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    let stopped: Promise<number | null> | undefined;
    const stop = async (graceMs: number): Promise<number | null> => {
      await runCommand([...runtimeArgs, 'kill', id, 'SIGTERM'], { allowFailure: true });
      if (!(await waitForExit(child, graceMs))) {
        await runCommand([...runtimeArgs, 'kill', id, 'SIGKILL'], { allowFailure: true });
        await waitForExit(child, graceMs);
      }
      await runCommand([...runtimeArgs, 'delete', '--force', id], { allowFailure: true });
      await runCommand(['umount', '--lazy', merged], { allowFailure: true });
      mounted = false;
      removeCgroups(cgroupsPath);
      await scope.dispose();
      return child.exitCode;
    };
    let execCounter = 0;
    return {
      id,
      spec,
      child,
      logs: () => readFileSync(logFile, 'utf8'),
      exec: async (args, execOptions = {}) => {
        execCounter += 1;
        const processFile = path.join(scope.dir, `exec-${execCounter}.json`);
        writeFileSync(processFile, JSON.stringify(ociProcess(options.run, args)));
        return runCommand([...runtimeArgs, 'exec', '--process', processFile, id], {
          allowFailure: true,
          ...(execOptions.input !== undefined ? { input: execOptions.input } : {}),
          timeoutMs: execOptions.timeoutMs ?? 60_000,
        });
      },
      stop: (graceMs = 10_000) => (stopped ??= stop(graceMs)),
    };
  } catch (error) {
    if (mounted) await runCommand(['umount', '--lazy', merged], { allowFailure: true });
    await scope.dispose();
    throw error;
  }
}
