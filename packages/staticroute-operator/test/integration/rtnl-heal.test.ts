/**
 * The kernel side heals: the route channel and the route monitor replace a socket that fails, report their health
 * while they do, and program routes / report changes again afterwards. And the operator's own bursts of changes never
 * overflow the monitor's socket, which the `netlink` binding answers with a poll error that aborts the process.
 *
 * Real parts: the adapters run in a child process inside a simulated node's network namespace; routes are read back
 * from the kernel with `ip`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type SimNetwork, type SimNode } from '@opkit/testbed';
import { buildAdapters } from '../support/build.js';
import { NetlinkDriver, type DriverMessage } from './support/driver.js';

const OURS = 201;
const GATEWAY = '10.116.0.5';
let network: SimNetwork;
let node: SimNode;

interface Health {
  healthy: boolean;
  lastError?: string;
  reopens: number;
}
interface Summary {
  ok: number;
  failed: number;
  failures: string[];
}
interface Stats {
  table?: { health: Health; stats: Record<string, number> };
  monitor?: { health: Health; stats: Record<string, number>; synced: boolean };
  routeEvents: Record<string, number>;
  tableEvents: Record<string, number>;
}

const healthOf = (source: 'table' | 'monitor', healthy: boolean) => (message: DriverMessage) =>
  message.adapter?.source === source &&
  message.adapter.type === 'health' &&
  message.adapter.health?.healthy === healthy;

async function ourRoute(destination: string) {
  return (await node.routes({ table: 254 })).filter((route) => route.dst === destination && route.protocol === OURS);
}

beforeAll(async () => {
  await buildAdapters();
  network = await startNetwork({ nodes: 1 });
  node = network.nodes[0]!;
});

afterAll(async () => {
  await network?.destroy();
});

describe('the route channel', () => {
  let driver: NetlinkDriver;
  beforeAll(async () => {
    driver = await NetlinkDriver.start(node);
    await driver.call('open-table', { options: { reopen: { initialMs: 20, maxMs: 200 } } });
  });
  afterAll(() => driver?.stop());

  it('reopens a socket that failed under it; a request made meanwhile waits and is applied', async () => {
    const before = await driver.call<Summary>('add', { destinations: ['198.51.100.30/32'], gateways: [GATEWAY] });
    expect(before).toMatchObject({ ok: 1, failed: 0 });

    const { healthRightAfter, added } = await driver.call<{ healthRightAfter: Health; added: Summary }>(
      'fail-table-socket',
      { thenAdd: { destinations: ['198.51.100.31/32'], gateways: [GATEWAY] } },
    );
    // Down at once (this node cannot program routes), and the reason is kept.
    expect(healthRightAfter.healthy).toBe(false);
    expect(healthRightAfter.lastError).toContain('closed');
    // The request made while it was down went through the new socket.
    expect(added).toMatchObject({ ok: 1, failed: 0 });
    expect(await ourRoute('198.51.100.31/32')).toEqual([expect.objectContaining({ gateway: GATEWAY })]);

    const down = await driver.waitFor(healthOf('table', false));
    await driver.waitFor(healthOf('table', true), down);
    const { table } = await driver.call<Stats>('stats');
    expect(table?.health).toMatchObject({ healthy: true, reopens: 1 });
    expect(table?.stats).toMatchObject({ reopens: 1, socketFailures: 1 });

    // And keeps working: a later plan deletes both routes.
    const removed = await driver.call<Summary>('delete', {
      destinations: ['198.51.100.30/32', '198.51.100.31/32'],
      gateways: [GATEWAY],
    });
    expect(removed).toMatchObject({ ok: 2, failed: 0 });
    expect(await ourRoute('198.51.100.30/32')).toEqual([]);
  });
});

describe('the route monitor', () => {
  let driver: NetlinkDriver;
  beforeAll(async () => {
    driver = await NetlinkDriver.start(node);
    await driver.call('open-monitor', { options: { reopen: { initialMs: 20, maxMs: 200 }, debounceMs: 10 } });
  });
  afterAll(() => driver?.stop());

  it('reopens a socket that failed under it, asks for a full re-read, and reports route changes again', async () => {
    const from = driver.messages.length;
    const health = await driver.call<Health>('fail-monitor-socket');
    expect(health).toMatchObject({ healthy: false });
    expect(health.lastError).toContain('closed');
    const up = await driver.waitFor(healthOf('monitor', true), from);
    // Changes while it was closed went unseen: the agent is told to re-read everything.
    await driver.waitFor((message) => message.event?.kind === 'overflow', up);

    await node.exec(['ip', 'route', 'add', '203.0.113.50/32', 'via', GATEWAY, 'proto', 'static']);
    await driver.waitFor(
      (message) => message.event?.kind === 'route-added' && message.event.route?.destination === '203.0.113.50/32',
      up,
    );
    await node.exec(['ip', 'route', 'del', '203.0.113.50/32']);
    const { monitor } = await driver.call<Stats>('stats');
    expect(monitor?.health).toMatchObject({ healthy: true, reopens: 1 });
    expect(monitor?.stats).toMatchObject({ reopens: 1, socketFailures: 1 });
  });
});

describe("the operator's own bursts", () => {
  it("never overflow the monitor's socket, even with a stock net.core.rmem_max", async () => {
    const driver = await NetlinkDriver.start(node);
    try {
      // 212,992 bytes is net.core.rmem_max on a stock kernel: the kernel doubles it, ~400 notifications fit.
      await driver.call('open-monitor', { options: { receiveBufferBytes: 212_992 }, stream: false });
      await driver.call('open-table');
      const added = await driver.call<Summary>('add-hosts', { count: 3000, offset: 0, gateways: [GATEWAY] });
      expect(added).toMatchObject({ ok: 3000, failed: 0 });
      const removed = await driver.call<Summary>('delete-hosts', { count: 3000, offset: 0, gateways: [GATEWAY] });
      expect(removed).toMatchObject({ ok: 3000, failed: 0 });
      // Every echo is read (the last ones may still be queued when the last ACK arrives): nothing dropped.
      let stats = await driver.call<Stats>('stats');
      for (let polls = 0; stats.routeEvents['route-deleted']! < 3000 && polls < 500; polls++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        stats = await driver.call<Stats>('stats');
      }
      expect(driver.alive).toBe(true);
      expect(stats.monitor?.stats).toMatchObject({ overflows: 0, socketFailures: 0 });
      expect(stats.monitor?.health.healthy).toBe(true);
      expect(stats.routeEvents).toEqual({ 'route-added': 3000, 'route-deleted': 3000 });
      expect((await node.routes({ table: 254 })).filter((route) => route.dst.startsWith('198.18.'))).toEqual([]);
    } finally {
      driver.stop();
    }
  });
});
