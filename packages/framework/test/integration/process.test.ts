/**
 * The operator as a process, started by the real CLI (`opkit run <module>`) from the built package:
 * - kill -9 between two handlers, restart: the handler that succeeded is not run again;
 * - retries survive a restart with their count;
 * - SIGTERM while a handler runs: it finishes, its outcome is written, the process exits 0.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { KubeObject, ResourceRef } from '../../src/kube/types.js';
import { startCluster, testObject, until, type TestCluster } from './helpers.js';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));
const repoRoot = join(packageDir, '../..');
const cli = join(packageDir, 'dist/ops/cli.js');
const fixture = join(packageDir, 'test/integration/fixtures/steps-operator.mjs');

let cluster: TestCluster;
let ref: ResourceRef;
let fixtureDir: string;
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

function startProcess(): Running {
  const child = spawn(
    process.execPath,
    [cli, 'run', fixture, '--kubeconfig', cluster.kubeconfigPath, '--probe-host', '127.0.0.1', '--probe-port', '0'],
    { env: { ...process.env, FIXTURE_DIR: fixtureDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}

const logOf = async (name: string): Promise<string[]> => {
  const file = join(fixtureDir, `${name}.log`);
  return existsSync(file) ? (await readFile(file, 'utf8')).trim().split('\n') : [];
};
const release = (name: string) => writeFile(join(fixtureDir, `release-${name}`), '');
const outcome = async (name: string, handler: string) => {
  const object = await cluster.api.get<KubeObject>(ref, name);
  return (object.status as { handlers?: Record<string, { outcome: string; retries: number }> } | undefined)?.handlers?.[
    handler
  ];
};

beforeAll(async () => {
  // The CLI runs from the built package, as users run it: build it (incremental, quick when up to date).
  const tsc = createRequire(join(repoRoot, 'package.json')).resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-b', 'packages/framework'], { cwd: repoRoot, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building the framework failed:\n${build.stdout}${build.stderr}`);
  cluster = await startCluster();
  ref = await cluster.installCrd('steps', 'Step');
  fixtureDir = await cluster.tempDir('steps');
});
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
afterAll(() => cluster?.stop());

describe('operator process', () => {
  test('kill -9 between two handlers, then restart: the succeeded handler is not run again', async () => {
    const first = startProcess();
    await cluster.api.create(ref, testObject('Step', 'block-1', {}));
    await until(async () => (await logOf('block-1')).includes('second-start'), 60_000);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    // What survived the crash: progress says 'first' succeeded for this cause.
    const object = await cluster.api.get<KubeObject>(ref, 'block-1');
    const progress = JSON.parse(object.metadata.annotations?.['opkit.dev/progress'] ?? '{}');
    expect(progress).toMatchObject({ cause: 'create', handlers: { first: { state: 'success' } } });
    await release('block-1');
    const second = startProcess();
    await until(async () => (await outcome('block-1', 'second'))?.outcome === 'success', 60_000);
    expect(await logOf('block-1')).toEqual(['first', 'second-start', 'second-start', 'second-done']);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  test('retries survive a restart with their count', async () => {
    const first = startProcess();
    await cluster.api.create(ref, testObject('Step', 'flaky-1', {}));
    await until(async () => ((await outcome('flaky-1', 'second'))?.retries ?? 0) >= 2, 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    // The progress annotation is the record the restart resumes from (status is written after it).
    const object = await cluster.api.get<KubeObject>(ref, 'flaky-1');
    const persisted = JSON.parse(object.metadata.annotations?.['opkit.dev/progress'] ?? '{}').handlers?.second?.retries;
    expect(persisted).toBeGreaterThanOrEqual(2);
    const attemptsBefore = (await logOf('flaky-1')).filter((line) => line.startsWith('attempt')).length;
    const second = startProcess();
    await until(
      async () => (await logOf('flaky-1')).filter((line) => line.startsWith('attempt')).length > attemptsBefore,
      60_000,
    );
    const attempts = (await logOf('flaky-1')).filter((line) => line.startsWith('attempt'));
    // The first attempt after the restart continues the count instead of starting from 0.
    expect(attempts[attemptsBefore]).toBe(`attempt ${persisted}`);
    expect(attempts.slice(0, attemptsBefore)).toEqual(Array.from({ length: attemptsBefore }, (_, i) => `attempt ${i}`));
    await release('flaky-1');
    await until(async () => (await outcome('flaky-1', 'second'))?.outcome === 'success', 60_000);
    expect((await logOf('flaky-1')).filter((line) => line === 'first')).toHaveLength(1);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  test('SIGTERM lets the running handler finish, writes its outcome, and exits 0', async () => {
    const running = startProcess();
    await cluster.api.create(ref, testObject('Step', 'slow-1', {}));
    await until(async () => (await logOf('slow-1')).includes('slow-start'), 60_000);
    running.child.kill('SIGTERM');
    const { code } = await running.exited;
    expect(code, running.output()).toBe(0);
    expect(await logOf('slow-1')).toEqual(['first', 'slow-start', 'second-done']);
    expect(await outcome('slow-1', 'second')).toMatchObject({ outcome: 'success' });
    expect(running.output()).toContain('stopped');
  });
});
