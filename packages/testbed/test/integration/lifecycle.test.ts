/**
 * Nothing outlives a run: repeated start/stop leaves no process or port, a test process killed with SIGKILL takes
 * its control plane and network with it, and cleanupLeftovers removes what dead runs left.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, test } from 'vitest';
import { cleanupLeftovers, startControlPlane, startNetwork } from '@opkit/testbed';
import { runCommand } from '../../src/exec.js';
import { testbedRoot } from '../../src/lifetime/paths.js';
import { listeningPorts, processesMentioning, transpileTestbed, waitFor } from './helpers.js';

const transpiled: string[] = [];
afterAll(() => {
  for (const file of transpiled) rmSync(path.resolve(path.dirname(file), '..'), { recursive: true, force: true });
});

// Eight cycles: enough to catch a leak that grows per start; the start-time figures belong to the benchmarks.
const CYCLES = 8;

test(`${CYCLES} start/stop cycles leave no process and no listening port behind`, { timeout: 600_000 }, async () => {
  const durations: number[] = [];
  for (let cycle = 0; cycle < CYCLES; cycle += 1) {
    const started = Date.now();
    const controlPlane = await startControlPlane();
    durations.push(Date.now() - started);
    const ports = [Number(new URL(controlPlane.server).port), Number(new URL(controlPlane.etcdUrl).port)];
    expect(ports.every((port) => listeningPorts().has(port))).toBe(true);
    await controlPlane.stop();
    expect(processesMentioning(controlPlane.dir), `cycle ${cycle}`).toEqual([]);
    expect(
      ports.filter((port) => listeningPorts().has(port)),
      `cycle ${cycle}`,
    ).toEqual([]);
    expect(existsSync(controlPlane.dir)).toBe(false);
  }
  const sorted = [...durations].sort((a, b) => a - b);
  console.log(
    `control plane start (cached binaries), ${CYCLES} runs: median ${sorted[CYCLES >> 1]} ms, max ${sorted[CYCLES - 1]} ms`,
  );
});

describe('a test process killed with SIGKILL', () => {
  test('takes its control plane, network, node processes and files with it', async () => {
    const index = await transpileTestbed();
    transpiled.push(index);
    const owner = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { startControlPlane, startNetwork } = await import(${JSON.stringify(index)});
        const controlPlane = await startControlPlane();
        const network = await startNetwork({ nodes: 1, controlPlane });
        const sleeper = network.nodes[0].spawn(['sleep', '600']);
        console.log(JSON.stringify({ cp: controlPlane.dir, runId: network.runId, sleeper: sleeper.pid }));
        setInterval(() => {}, 1000);
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: owner.stdout! }).once('line', resolve);
      owner.once('exit', (code) => reject(new Error(`owner exited early (${code})`)));
    });
    const started = JSON.parse(line) as { cp: string; runId: string; sleeper: number };
    expect(processesMentioning(started.cp).length).toBeGreaterThanOrEqual(2);
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).toContain(started.runId);

    owner.kill('SIGKILL');

    await waitFor('the control plane processes to die', () => processesMentioning(started.cp).length === 0);
    await waitFor('the node process to die', () => !existsSync(`/proc/${started.sleeper}`));
    await waitFor(
      'the namespaces to go',
      async () => !(await runCommand(['ip', 'netns', 'list'])).stdout.includes(started.runId),
    );
    await waitFor(
      'the run folders to go',
      () => !existsSync(started.cp) && !existsSync(path.join(testbedRoot(), started.runId)),
    );
    expect(processesMentioning(started.runId)).toEqual([]);
  });
});

test('without CAP_NET_ADMIN and CAP_SYS_ADMIN, startNetwork names what is missing and creates nothing', async () => {
  const index = await transpileTestbed();
  transpiled.push(index);
  const script = `
    const { startNetwork } = await import(${JSON.stringify(index)});
    console.log(process.pid);
    try { await startNetwork({ nodes: 1 }); console.log('started'); } catch (error) { console.log(error.message); }
  `;
  const result = await runCommand([
    'setpriv', '--bounding-set=-net_admin,-sys_admin', '--inh-caps=-net_admin,-sys_admin', '--',
    process.execPath, '--input-type=module', '-e', script,
  ]); // prettier-ignore
  expect(result.stdout).toContain('needs CAP_NET_ADMIN and CAP_SYS_ADMIN');
  const pid = result.stdout.split('\n')[0];
  expect(readdirSync(testbedRoot()).filter((name) => name.startsWith(`${pid}-`))).toEqual([]);
  expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(`otb-${pid}-`);
});

test('cleanupLeftovers removes namespaces, processes and folders of dead owners, and nothing of live ones', async () => {
  const dead = spawn('true');
  await new Promise((resolve) => dead.once('exit', resolve));
  const deadRun = `${dead.pid}-dead01`;
  const deadDir = path.join(testbedRoot(), deadRun);
  mkdirSync(deadDir, { recursive: true });
  writeFileSync(path.join(deadDir, 'owner.json'), JSON.stringify({ pid: dead.pid, startTime: '1' }));
  const deadNetns = `otb-${deadRun}-n-node-1`;
  await runCommand(['ip', 'netns', 'add', deadNetns]);
  // A process whose command line names the dead run's folder, like an orphaned etcd would.
  const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', path.join(deadDir, 'etcd-data')], {
    detached: true,
    stdio: 'ignore',
  });
  orphan.unref();
  const live = await startNetwork({ nodes: 1 });
  try {
    const removed = await cleanupLeftovers();
    expect(removed).toContain(`run ${deadRun}`);
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(deadNetns);
    expect(existsSync(deadDir)).toBe(false);
    await waitFor(
      'the orphan to die',
      () => !existsSync(`/proc/${orphan.pid}`) || orphan.exitCode !== null || orphan.signalCode !== null,
    );
    // The live run is untouched.
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).toContain(live.runId);
    expect(await live.nodes[0]!.ping(live.gateways[0]!.address)).toBe(true);
  } finally {
    await live.destroy();
    await runCommand(['ip', 'netns', 'delete', deadNetns], { allowFailure: true });
    rmSync(deadDir, { recursive: true, force: true });
  }
});

test('two networks with the same addresses run side by side without seeing each other', async () => {
  const [left, right] = await Promise.all([startNetwork({ nodes: 1 }), startNetwork({ nodes: 1 })]);
  try {
    expect(left.nodes[0]!.address).toBe(right.nodes[0]!.address);
    await left.nodes[0]!.exec(['ip', 'route', 'add', '203.0.113.0/24', 'via', '10.116.0.5']);
    expect(await left.nodes[0]!.ping('10.116.0.12')).toBe(true);
    expect(await right.nodes[0]!.ping('10.116.0.12')).toBe(true);
    const rightRoutes = await right.nodes[0]!.routes();
    expect(rightRoutes.some((route) => route.dst === '203.0.113.0/24')).toBe(false);
  } finally {
    await Promise.all([left.destroy(), right.destroy()]);
  }
});
