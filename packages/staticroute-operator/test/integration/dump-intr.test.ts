/**
 * A dump the kernel reports interrupted by a concurrent change (NLM_F_DUMP_INTR: objects may be missing or listed
 * twice) is run again, and what the caller gets is a dump the kernel did not flag.
 *
 * The kernel flags address and link dumps (route dumps restart or continue internally instead and are never
 * flagged), and only when the dump spans several datagrams: so the namespace gets a thousand addresses, and another
 * process adds and deletes addresses in a tight loop while the adapter dumps.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNetwork, type SimNetwork, type SimNode } from '@opkit/testbed';
import { buildAdapters } from '../support/build.js';
import { NetlinkDriver } from './support/driver.js';

const STABLE = 1000;
let network: SimNetwork;
let node: SimNode;
let driver: NetlinkDriver;
let churn: ChildProcess | undefined;

function batchFile(name: string, lines: string[]): string {
  const file = path.join(tmpdir(), `dump-intr-${process.pid}-${name}.batch`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

beforeAll(async () => {
  await buildAdapters();
  network = await startNetwork({ nodes: 1 });
  node = network.nodes[0]!;
  await node.exec(['ip', 'link', 'add', 'name', 'dmp0', 'type', 'veth', 'peer', 'name', 'dmp1']);
  const stable = Array.from(
    { length: STABLE },
    (_, index) => `address add 10.77.${index >> 8}.${index & 255}/32 dev dmp0`,
  );
  await node.exec(['ip', '-batch', batchFile('stable', stable)]);
  driver = await NetlinkDriver.start(node);
  await driver.call('open-table');
});

afterAll(async () => {
  churn?.kill('SIGKILL');
  driver?.stop();
  await network?.destroy();
});

it('runs an interrupted address dump again and returns only dumps the kernel did not flag', async () => {
  const add = batchFile(
    'add',
    Array.from({ length: 50 }, (_, index) => `address add 10.78.0.${index}/32 dev dmp1`),
  );
  const del = batchFile(
    'del',
    Array.from({ length: 50 }, (_, index) => `address del 10.78.0.${index}/32 dev dmp1`),
  );
  churn = node.spawn(['bash', '-c', `while :; do ip -batch ${add}; ip -batch ${del}; done`], { stdio: 'ignore' });

  const result = await driver.call<{
    dumps: number;
    wrong: number;
    rejected: number;
    examples: string[];
    stats: { dumpRetries: number; dumpsGivenUp: number };
  }>('dump-addresses-until-retried', { prefix: '10.77.', expected: STABLE, maxDumps: 20_000 });
  churn.kill('SIGKILL');

  // The kernel did interrupt a dump, and the adapter ran it again (counted where metrics read it).
  expect(result.stats.dumpRetries).toBeGreaterThan(0);
  // Every dump handed out holds each of the stable addresses exactly once.
  expect(result.wrong).toBe(0);
  // Five attempts in a row interrupted would be a rejection (none expected at this churn, but allowed by the API).
  expect(result.rejected).toBe(result.stats.dumpsGivenUp);
});
