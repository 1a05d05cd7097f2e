/**
 * Link changes make the agent re-read the addresses and the whole table only when they can change routes we care
 * about, and a burst of them makes one re-read: pod veth churn on a busy node costs nothing.
 *
 * Counts, not time: "re-reads" are the monitor's `resyncs` (each one event that makes the agent dump addresses and
 * table) and `relevantChanges` (before debouncing); the monitor's own dumps are `stateDumps`.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type SimNetwork, type SimNode } from '@opkit/testbed';
import { buildAdapters } from '../support/build.js';
import { NetlinkDriver, type DriverMessage } from './support/driver.js';

const GATEWAY = '10.116.0.5';
let network: SimNetwork;
let node: SimNode;
let driver: NetlinkDriver;

interface MonitorStats {
  relevantChanges: number;
  resyncs: number;
  ignoredLinkChanges: number;
  stateDumps: number;
}

function batchFile(name: string, lines: string[]): string {
  const file = path.join(tmpdir(), `monitor-debounce-${process.pid}-${name}.batch`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function monitorStats(): Promise<MonitorStats> {
  return (await driver.call<{ monitor: { stats: MonitorStats } }>('stats')).monitor.stats;
}

const resyncEvent = (message: DriverMessage) =>
  message.event !== undefined && ['link-changed', 'address-changed', 'overflow'].includes(message.event.kind);

const routeAdded = (destination: string) => (message: DriverMessage) =>
  message.event?.kind === 'route-added' && message.event.route?.destination === destination;

beforeAll(async () => {
  await buildAdapters();
  network = await startNetwork({ nodes: 1 });
  node = network.nodes[0]!;
  // A link that carries an address, as eth0 or a bridge does.
  await node.exec(['ip', 'link', 'add', 'name', 'carrier0', 'type', 'veth', 'peer', 'name', 'carrier1']);
  await node.exec(['ip', 'address', 'add', '10.88.0.1/24', 'dev', 'carrier0']);
  await node.exec(['ip', 'link', 'set', 'carrier0', 'up']);
  await node.exec(['ip', 'link', 'set', 'carrier1', 'up']);
  await node.exec(['ip', 'link', 'add', 'name', 'doomed0', 'type', 'veth', 'peer', 'name', 'doomed1']);
  await node.exec(['ip', 'address', 'add', '10.89.0.1/24', 'dev', 'doomed0']);
  driver = await NetlinkDriver.start(node);
  // A long debounce keeps the count of re-reads independent of how fast the driver reads a burst.
  await driver.call('open-monitor', { options: { debounceMs: 2000 } });
});

afterAll(async () => {
  driver?.stop();
  await network?.destroy();
});

describe('the route monitor', () => {
  it('asks for no re-read when 50 veth pairs are created, brought up and deleted', async () => {
    const before = await monitorStats();
    const from = driver.messages.length;
    const lines: string[] = [];
    for (let index = 0; index < 50; index++) {
      lines.push(`link add name pod${index}a type veth peer name pod${index}b`);
      lines.push(`link set pod${index}a up`, `link set pod${index}b up`);
    }
    for (let index = 0; index < 50; index++) lines.push(`link del pod${index}a`);
    // The marker comes after every link change on the same socket: once it is seen, they all were.
    lines.push(`route add 203.0.113.60/32 via ${GATEWAY} proto static`);
    await node.exec(['ip', '-batch', batchFile('veths', lines)]);
    await driver.waitFor(routeAdded('203.0.113.60/32'), from);
    await node.exec(['ip', 'route', 'del', '203.0.113.60/32']);

    const after = await monitorStats();
    expect(after.ignoredLinkChanges - before.ignoredLinkChanges).toBeGreaterThanOrEqual(200);
    expect(after.relevantChanges).toBe(before.relevantChanges);
    expect(after.resyncs).toBe(before.resyncs);
    expect(after.stateDumps).toBe(before.stateDumps);
    expect(driver.messages.slice(from).filter(resyncEvent)).toEqual([]);
  });

  it('still asks for a re-read when a link with an address is deleted', async () => {
    const before = await monitorStats();
    const from = driver.messages.length;
    await node.exec(['ip', 'link', 'del', 'doomed0']);
    await driver.waitFor(resyncEvent, from);
    const after = await monitorStats();
    expect(after.resyncs - before.resyncs).toBe(1);
    // The kernel removes the address, then the link: one burst, one event.
    expect(driver.messages.slice(from).filter(resyncEvent)).toHaveLength(1);
  });
  it('asks for one re-read for a burst of changes of a link that carries an address', async () => {
    const before = await monitorStats();
    const from = driver.messages.length;
    const lines: string[] = [];
    for (let flap = 0; flap < 10; flap++) lines.push('link set carrier0 down', 'link set carrier0 up');
    lines.push(`route add 203.0.113.61/32 via ${GATEWAY} proto static`);
    // Run inside the driver's process: its event loop is blocked meanwhile, so the whole burst waits in the socket.
    await driver.call('run-blocking', { argv: ['ip', '-batch', batchFile('flaps', lines)] });
    await driver.waitFor(routeAdded('203.0.113.61/32'), from);
    const seen = await monitorStats();
    expect(seen.relevantChanges - before.relevantChanges).toBeGreaterThanOrEqual(20);

    // Carrier changes are notified by the kernel's link watcher up to a second late: still within the debounce.
    await driver.waitFor(resyncEvent, from);
    await node.exec(['ip', 'route', 'del', '203.0.113.61/32']);
    const after = await monitorStats();
    expect(after.resyncs - before.resyncs).toBe(1);
    expect(
      driver.messages
        .slice(from)
        .filter(resyncEvent)
        .map((message) => message.event?.kind),
    ).toEqual(['link-changed']);
  });
});
