/**
 * The gateway prober against a real kernel: a node of the test bed network probes the two gateway hosts (IPv4 and
 * IPv6), an address with nobody behind it, an address behind a gateway (not on a connected subnet) and a permanent
 * neighbour entry. A second node is the witness of what goes on the wire: it sees every broadcast solicitation.
 *
 * The tests run in order on one prober with the default thresholds; they print the detection and recovery times and
 * the probe traffic, which are measurements, not assertions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type SimGateway, type SimNetwork, type SimNode } from '@opkit/testbed';
import { addArpCounters, buildProber, neighbours, ProberDriver } from './support/gateway-prober-client.js';

/** On the VPC subnet, with nobody behind it. */
const NOBODY = '10.116.0.77';
const NOBODY_V6 = 'fd00:116::4d';
/** Behind gateway 1 (a route on the node): not on a connected subnet. */
const FAR = '198.51.100.7';
/** A permanent neighbour entry on the node, nobody behind it. */
const PINNED = '10.116.0.40';
const PINNED_MAC = '02:00:00:00:00:40';
/** An entry someone else maintains (extern_learn, as EVPN would), nobody behind it: read only. */
const FOREIGN = '10.116.0.41';
const FOREIGN_MAC = '02:00:00:00:00:41';

let network: SimNetwork;
let node: SimNode;
let witness: SimNode;
let gw1: SimGateway;
let gw2: SimGateway;
let prober: ProberDriver;
let witnessCounts: () => Promise<Map<string, number>>;
let gw1Counts: () => Promise<Map<string, number>>;
let gw2Counts: () => Promise<Map<string, number>>;
let startedAt = 0;
let macs: Map<string, string>;

async function macOf(host: SimGateway): Promise<string> {
  const { stdout } = await host.exec(['cat', '/sys/class/net/eth0/address']);
  return stdout.trim();
}

beforeAll(async () => {
  await buildProber();
  network = await startNetwork({ nodes: 2 });
  [node, witness] = network.nodes as [SimNode, SimNode];
  [gw1, gw2] = network.gateways as [SimGateway, SimGateway];
  await node.exec(['ip', 'route', 'add', '198.51.100.0/24', 'via', gw1.address]);
  await node.exec(['ip', 'neigh', 'add', PINNED, 'lladdr', PINNED_MAC, 'dev', 'eth0', 'nud', 'permanent']);
  await node.exec([
    'ip',
    'neigh',
    'add',
    FOREIGN,
    'lladdr',
    FOREIGN_MAC,
    'dev',
    'eth0',
    'extern_learn',
    'nud',
    'stale',
  ]);
  const watched = [gw1.address, gw2.address, NOBODY, FAR, PINNED, FOREIGN];
  witnessCounts = await addArpCounters(witness, node.address, watched);
  gw1Counts = await addArpCounters(gw1, node.address, watched);
  gw2Counts = await addArpCounters(gw2, node.address, watched);
  macs = new Map([
    [gw1.address, await macOf(gw1)],
    [gw2.address, await macOf(gw2)],
  ]);
  prober = await ProberDriver.start(node);
  startedAt = Date.now();
  await prober.setTargets([
    gw1.address,
    gw2.address,
    gw1.addressV6,
    gw2.addressV6,
    NOBODY,
    NOBODY_V6,
    FAR,
    PINNED,
    FOREIGN,
  ]);
}, 120_000);

afterAll(async () => {
  await prober?.close();
  await network?.destroy();
});

describe('GatewayProber in a node network namespace', () => {
  it('both gateways become Reachable, over IPv4 and IPv6, probed', async () => {
    for (const gateway of [gw1.address, gw2.address, gw1.addressV6, gw2.addressV6]) {
      const change = await prober.waitForChange(gateway, 'Reachable');
      expect(change.reason).toMatch(/answered/);
    }
    const snapshot = await prober.snapshot();
    for (const gateway of [gw1.address, gw2.address, gw1.addressV6, gw2.addressV6]) {
      expect(snapshot[gateway]).toMatchObject({ state: 'Reachable', probed: true });
      expect(Date.parse(snapshot[gateway]!.since!)).toBeGreaterThanOrEqual(startedAt);
    }
  });

  it('an address on the subnet with nobody behind it becomes Unreachable (IPv4 and IPv6)', async () => {
    for (const gateway of [NOBODY, NOBODY_V6]) {
      const change = await prober.waitForChange(gateway, 'Unreachable');
      expect(change.reason).toMatch(/neighbour (INCOMPLETE|FAILED) 3 rounds/);
    }
    expect((await prober.snapshot())[NOBODY]).toMatchObject({ state: 'Unreachable', probed: true });
  });

  it('a permanent neighbour entry counts as Reachable, unprobed and unchanged', async () => {
    await prober.waitForChange(PINNED, 'Reachable');
    expect((await prober.snapshot())[PINNED]).toMatchObject({
      state: 'Reachable',
      probed: false,
      reason: expect.stringMatching(/PERMANENT neighbour entry: counted Reachable, not probed/),
    });
    expect((await neighbours(node)).get(PINNED)).toEqual({ lladdr: PINNED_MAC, state: ['PERMANENT'] });
    const seen = await witnessCounts();
    expect(seen.get(`arp ${PINNED}`)).toBe(0);
  });

  it('a stopped gateway becomes Unreachable while the other stays Reachable; restarted, Reachable again', async () => {
    const from = prober.changes.length;
    const seenBefore = (await witnessCounts()).get(`arp ${gw1.address}`) ?? 0;
    const stoppedAt = Date.now();
    await gw1.setOnline(false);
    const down = await prober.waitForChange(gw1.address, 'Unreachable', from);
    const downV6 = await prober.waitForChange(gw1.addressV6, 'Unreachable', from);
    const restartedAt = Date.now();
    const seenDuring = ((await witnessCounts()).get(`arp ${gw1.address}`) ?? 0) - seenBefore;
    await gw1.setOnline(true);
    const up = await prober.waitForChange(gw1.address, 'Reachable', from);
    const upV6 = await prober.waitForChange(gw1.addressV6, 'Reachable', from);
    console.log(
      `gateway stopped -> Unreachable: IPv4 ${down.at - stoppedAt} ms, IPv6 ${downV6.at - stoppedAt} ms; ` +
        `restarted -> Reachable: IPv4 ${up.at - restartedAt} ms, IPv6 ${upV6.at - restartedAt} ms; ` +
        `ARP requests for the stopped gateway seen by the witness: ${seenDuring} in ${restartedAt - stoppedAt} ms`,
    );
    expect(down.reason).toMatch(/3 rounds/);
    expect(up.reason).toMatch(/answered 2 rounds/);
    // The other gateway never changed: no lost round of gateway 1 spilled over.
    expect(prober.changes.slice(from).filter((c) => c.gateway === gw2.address || c.gateway === gw2.addressV6)).toEqual(
      [],
    );
    const snapshot = await prober.snapshot();
    expect(snapshot[gw2.address]?.state).toBe('Reachable');
    expect(snapshot[gw2.addressV6]?.state).toBe('Reachable');
  });

  it('an address not on a connected subnet is never probed: Unknown, and nothing left the node for it', async () => {
    const snapshot = await prober.snapshot();
    expect(snapshot[FAR]).toEqual({
      state: 'Unknown',
      probed: false,
      reason: `not on a connected subnet (routed via ${gw1.address})`,
    });
    expect(prober.changes.filter((c) => c.gateway === FAR)).toEqual([]);
    expect((await neighbours(node)).has(FAR)).toBe(false);
    // Its next hop (gateway 1) got no packet for it and nobody an ARP request for it.
    for (const counts of [await gw1Counts(), await witnessCounts()]) {
      expect(counts.get(`ip ${FAR}`)).toBe(0);
      expect(counts.get(`arp ${FAR}`)).toBe(0);
    }
  });

  it('only the targets are solicited, and unicast probes reach only their gateway', async () => {
    const seen = await witnessCounts();
    // Broadcast resolution reaches every host, so the witness sees the requests for the absent address...
    expect(seen.get(`arp ${NOBODY}`)).toBeGreaterThan(0);
    // ... but none from the node for any address that is not a target, and none of the unicast probes.
    expect(seen.get('arp other')).toBe(0);
    const gw2Arp = (await gw2Counts()).get(`arp ${gw2.address}`) ?? 0;
    const minutes = (Date.now() - startedAt) / 60_000;
    const stats = await prober.stats();
    console.log(
      `probe traffic over ${(minutes * 60).toFixed(0)} s: live gateway ${(gw2Arp / minutes).toFixed(1)} ARP ` +
        `requests/min; absent address ${((seen.get(`arp ${NOBODY}`) ?? 0) / minutes).toFixed(1)} ARP requests/min ` +
        `(broadcast); witness saw ${seen.get(`arp ${gw2.address}`)} requests for gateway 2 in all; ` +
        `prober stats ${JSON.stringify(stats)}`,
    );
    expect(gw2Arp).toBeGreaterThan(0);
    expect(stats.rounds).toBeGreaterThan(0);
    expect(stats.failedRounds).toBeGreaterThan(0);
    expect(stats.nudges).toBeGreaterThan(0);
  });

  it("leaves the gateways' neighbour entries with their own link-layer addresses", async () => {
    const entries = await neighbours(node);
    for (const [address, mac] of macs) expect(entries.get(address)?.lladdr).toBe(mac);
    expect(entries.get(PINNED)).toEqual({ lladdr: PINNED_MAC, state: ['PERMANENT'] });
  });

  it('never writes an entry someone else maintains: read only, flags and address kept, not Reachable while STALE', async () => {
    await prober.waitForChange(FOREIGN, 'Unreachable');
    expect((await prober.snapshot())[FOREIGN]).toMatchObject({
      state: 'Unreachable',
      probed: false,
      reason: expect.stringMatching(/owned by another .* not probed/),
    });
    expect((await neighbours(node)).get(FOREIGN)).toEqual({
      lladdr: FOREIGN_MAC,
      extern_learn: null,
      state: ['STALE'],
    });
    expect((await witnessCounts()).get(`arp ${FOREIGN}`)).toBe(0);
  });

  it('re-checks the connected subnet every round: a host route via a gateway stops the probing, Unknown', async () => {
    const from = prober.changes.length;
    await node.exec(['ip', 'route', 'add', `${NOBODY}/32`, 'via', gw2.address]);
    const change = await prober.waitForChange(NOBODY, 'Unknown', from);
    expect(change.reason).toBe(`not on a connected subnet (routed via ${gw2.address})`);
    expect((await prober.snapshot())[NOBODY]).toMatchObject({ state: 'Unknown', probed: false });
    await node.exec(['ip', 'route', 'del', `${NOBODY}/32`]);
    await prober.waitForChange(NOBODY, 'Unreachable', from);
  });

  it('drops the targets that are no longer wanted from the snapshot', async () => {
    await prober.setTargets([gw2.address]);
    const snapshot = await prober.snapshot();
    expect(Object.keys(snapshot)).toEqual([gw2.address]);
  });

  it('rounds that cannot run (netlink failing) are not judged: the state stays, the socket is reopened', async () => {
    const from = prober.changes.length;
    const before = await prober.stats();
    // Four rounds in a row cannot run (their first request fails); judged, they would count as failed rounds.
    await prober.failRequests(4);
    const deadline = Date.now() + 20_000;
    while ((await prober.stats()).rounds < before.rounds + 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const after = await prober.stats();
    expect(after.rounds).toBeGreaterThanOrEqual(before.rounds + 2);
    expect(after.failedRounds).toBe(before.failedRounds);
    expect(prober.changes.slice(from)).toEqual([]);
    expect((await prober.snapshot())[gw2.address]).toMatchObject({ state: 'Reachable', probed: true });
  });

  it('as an unprivileged user with only CAP_NET_ADMIN, it probes', async () => {
    const limited = await ProberDriver.start(node, { user: 'net_admin' });
    try {
      await limited.setTargets([gw2.address]);
      expect((await limited.waitForChange(gw2.address, 'Reachable')).reason).toBe('neighbour answered 2 rounds');
    } finally {
      await limited.close();
    }
  });

  it('without CAP_NET_ADMIN it probes nothing: the gateway stays Unknown, saying why', async () => {
    const powerless = await ProberDriver.start(node, { user: 'none' });
    try {
      await powerless.setTargets([gw2.address]);
      const deadline = Date.now() + 20_000;
      let entry = (await powerless.snapshot())[gw2.address];
      while (entry?.reason === undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        entry = (await powerless.snapshot())[gw2.address];
      }
      expect(entry).toEqual({
        state: 'Unknown',
        probed: false,
        reason: 'not probed: neighbour requests need CAP_NET_ADMIN (EPERM)',
      });
      expect(powerless.changes).toEqual([]);
    } finally {
      await powerless.close();
    }
  });
});
