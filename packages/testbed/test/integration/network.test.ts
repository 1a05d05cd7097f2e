/**
 * The simulated network: nodes and gateways in their own namespaces on one bridge, reachable from each other, with
 * separate routing tables, a path to the API server that can be cut per node, and a teardown that leaves nothing —
 * and never a change to the root namespace.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { runCommand } from '../../src/exec.js';
import { startControlPlane, startNetwork, type ControlPlane, type Route, type SimNetwork } from '@opkit/testbed';
import { processesMentioning, waitFor } from './helpers.js';

/** Everything routing-related in the root namespace, to prove the test bed never touches it. */
async function rootNamespaceSnapshot(): Promise<string> {
  const parts = await Promise.all(
    [
      ['ip', '-4', '-j', 'route', 'show', 'table', 'all'],
      ['ip', '-6', '-j', 'route', 'show', 'table', 'all'],
      ['ip', '-j', 'rule', 'show'],
      ['sysctl', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'],
    ].map(async (command) => (await runCommand(command)).stdout),
  );
  return parts.join('\n');
}

async function rootLinkNames(): Promise<string[]> {
  const { stdout } = await runCommand(['ip', '-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).map((link) => link.ifname).sort();
}

let controlPlane: ControlPlane;
let network: SimNetwork;
let rootBefore: string;
let linksBefore: string[];

beforeAll(async () => {
  rootBefore = await rootNamespaceSnapshot();
  linksBefore = await rootLinkNames();
  controlPlane = await startControlPlane();
  network = await startNetwork({
    nodes: 2,
    controlPlane,
    gatewayDestinations: ['198.51.100.0/24', '2001:db8:5::/64'],
  });
});

afterAll(async () => {
  await network?.destroy();
  await controlPlane?.stop();
});

describe('connectivity', () => {
  test('nodes ping each other and both gateways over IPv4 and IPv6', async () => {
    const [first, second] = network.nodes;
    expect(await first!.ping(second!.address)).toBe(true);
    expect(await second!.ping(first!.address)).toBe(true);
    expect(await first!.ping(second!.addressV6)).toBe(true);
    for (const gateway of network.gateways) {
      expect(await first!.ping(gateway.address)).toBe(true);
      expect(await second!.ping(gateway.addressV6)).toBe(true);
    }
    expect(network.gateways.map((gateway) => gateway.address)).toEqual(['10.116.0.5', '10.116.0.12']);
  });

  test('nodes have only the connected VPC routes: no default route, no way out', async () => {
    const main = await network.nodes[0]!.routes({ table: 254 });
    expect(main.map((route) => route.dst).sort()).toEqual(['10.116.0.0/20', 'fd00:116::/64', 'fe80::/64']);
    expect(await network.nodes[0]!.ping('198.51.100.1', { timeoutSeconds: 1 })).toBe(false);
  });

  test('traffic to a hosted destination goes to the gateway the route names', async () => {
    const node = network.nodes[0]!;
    const [viaGateway, otherGateway] = network.gateways;
    await node.exec(['ip', 'route', 'add', '198.51.100.0/24', 'via', viaGateway!.address]);
    try {
      const before = [await viaGateway!.echoRequestsReceived(), await otherGateway!.echoRequestsReceived()];
      const packetsBefore = await viaGateway!.interfaceCounters();
      expect(await node.ping('198.51.100.77', { count: 3, timeoutSeconds: 2 })).toBe(true);
      const after = [await viaGateway!.echoRequestsReceived(), await otherGateway!.echoRequestsReceived()];
      expect(after[0]!.v4 - before[0]!.v4).toBe(3);
      expect(after[1]!.v4 - before[1]!.v4).toBe(0);
      expect((await viaGateway!.interfaceCounters()).rxPackets - packetsBefore.rxPackets).toBeGreaterThanOrEqual(3);
    } finally {
      await node.exec(['ip', 'route', 'del', '198.51.100.0/24']);
    }
  });

  test('a gateway taken offline answers nothing until it is back; its neighbour probes are counted', async () => {
    const node = network.nodes[0]!;
    const gateway = network.gateways[0]!;
    const before = await gateway.neighbourProbesReceived();
    // A fresh neighbour entry on the node makes the kernel ask for the address once (ARP, NDP).
    await node.exec(['ip', 'neigh', 'flush', 'dev', 'eth0']);
    expect(await node.ping(gateway.address)).toBe(true);
    expect(await node.ping(gateway.addressV6)).toBe(true);
    const after = await gateway.neighbourProbesReceived();
    expect(after.arp).toBeGreaterThan(before.arp);
    expect(after.ndp).toBeGreaterThan(before.ndp);
    await gateway.setOnline(false);
    try {
      expect(await node.ping(gateway.address, { timeoutSeconds: 1 })).toBe(false);
      expect(await network.nodes[1]!.ping(network.gateways[1]!.address)).toBe(true);
    } finally {
      await gateway.setOnline(true);
    }
    await waitFor('the gateway back online', () => node.ping(gateway.address, { timeoutSeconds: 1 }));
    // Both families, as a restarted machine would be.
    await waitFor('the gateway back online over IPv6', () => node.ping(gateway.addressV6, { timeoutSeconds: 1 }));
  });

  test('IPv6 destinations are hosted too', async () => {
    const node = network.nodes[1]!;
    await node.exec(['ip', '-6', 'route', 'add', '2001:db8:5::/64', 'via', network.gateways[1]!.addressV6]);
    try {
      expect(await node.ping('2001:db8:5::1')).toBe(true);
    } finally {
      await node.exec(['ip', '-6', 'route', 'del', '2001:db8:5::/64']);
    }
  });
});

describe('routes', () => {
  test('a route added in one namespace is in no other namespace', async () => {
    const [first, second] = network.nodes;
    await first!.exec(['ip', 'route', 'add', '203.0.113.0/24', 'via', '10.116.0.5', 'proto', '188']);
    try {
      const has = (routes: Route[]): boolean => routes.some((route) => route.dst === '203.0.113.0/24');
      expect(has(await first!.routes())).toBe(true);
      expect(has(await second!.routes())).toBe(false);
      expect(has(await network.gateways[0]!.routes())).toBe(false);
      expect((await runCommand(['ip', 'route', 'show', 'table', 'all'])).stdout).not.toContain('203.0.113.0');
    } finally {
      await first!.exec(['ip', 'route', 'del', '203.0.113.0/24']);
    }
  });

  test('routes() reports tables, numeric protocols, multipath, host and default routes', async () => {
    const node = network.nodes[1]!;
    const commands = [
      ['ip', 'route', 'add', '203.0.113.0/25', 'proto', '188', 'table', '100', 'nexthop', 'via', '10.116.0.5',
        'weight', '1', 'nexthop', 'via', '10.116.0.12', 'weight', '2'],
      ['ip', 'route', 'add', '203.0.113.200', 'via', '10.116.0.12', 'proto', '188', 'table', '100', 'metric', '7'],
      ['ip', 'route', 'add', 'default', 'via', '10.116.0.5', 'proto', '188', 'table', '100'],
      ['ip', '-6', 'route', 'add', '2001:db8:7::/64', 'via', 'fd00:116::5', 'proto', '188', 'table', '100'],
    ]; // prettier-ignore
    for (const command of commands) await node.exec(command);
    try {
      const routes = await node.routes({ table: 100 });
      expect(routes).toEqual([
        {
          dst: '0.0.0.0/0', family: 4, type: 'unicast', protocol: 188, table: 100,
          gateway: '10.116.0.5', dev: 'eth0', scope: 'global',
        },
        {
          dst: '203.0.113.0/25', family: 4, type: 'unicast', protocol: 188, table: 100, scope: 'global',
          nexthops: [
            { gateway: '10.116.0.5', dev: 'eth0', weight: 1 },
            { gateway: '10.116.0.12', dev: 'eth0', weight: 2 },
          ],
        },
        {
          dst: '203.0.113.200/32', family: 4, type: 'unicast', protocol: 188, table: 100,
          gateway: '10.116.0.12', dev: 'eth0', scope: 'global', metric: 7,
        },
        {
          dst: '2001:db8:7::/64', family: 6, type: 'unicast', protocol: 188, table: 100,
          gateway: 'fd00:116::5', dev: 'eth0', scope: 'global', metric: 1024,
        },
      ]); // prettier-ignore
      expect(await node.routes({ table: 100, family: 6 })).toHaveLength(1);
    } finally {
      await node.exec(['ip', 'route', 'flush', 'table', '100']);
      await node.exec(['ip', '-6', 'route', 'flush', 'table', '100']);
    }
  });

  test('monitorRoutes logs adds and deletes in order, with the same fields as routes()', async () => {
    const node = network.nodes[0]!;
    const monitor = await node.monitorRoutes();
    try {
      await node.exec(['ip', 'route', 'add', '203.0.113.64/26', 'via', '10.116.0.5', 'proto', '188', 'table', '120']);
      await node.exec([
        'ip',
        'route',
        'replace',
        '203.0.113.64/26',
        'via',
        '10.116.0.12',
        'proto',
        '188',
        'table',
        '120',
      ]);
      await node.exec(['ip', 'route', 'del', '203.0.113.64/26', 'table', '120']);
      await node.exec([
        'ip', 'route', 'add', '203.0.113.128/26', 'proto', '188', 'table', '120',
        'nexthop', 'via', '10.116.0.5', 'nexthop', 'via', '10.116.0.12',
      ]); // prettier-ignore
      await node.exec(['ip', '-6', 'route', 'add', '2001:db8:9::/64', 'via', 'fd00:116::5', 'proto', '188']);
      await monitor.waitFor((event) => event.route.dst === '2001:db8:9::/64');
      const events = monitor.events().map((event) => [event.kind, event.route.dst, event.route.gateway]);
      expect(events).toEqual([
        ['add', '203.0.113.64/26', '10.116.0.5'],
        ['add', '203.0.113.64/26', '10.116.0.12'],
        ['delete', '203.0.113.64/26', '10.116.0.12'],
        ['add', '203.0.113.128/26', undefined],
        ['add', '2001:db8:9::/64', 'fd00:116::5'],
      ]);
      const multipath = monitor.events()[3]!.route;
      const [listed] = (await node.routes({ table: 120 })).filter((route) => route.dst === '203.0.113.128/26');
      expect(multipath).toEqual(listed);
      expect(multipath.protocol).toBe(188);
    } finally {
      await monitor.stop();
      await node.exec(['ip', 'route', 'flush', 'table', '120']);
      await node.exec(['ip', '-6', 'route', 'del', '2001:db8:9::/64']);
    }
  });
});

/** A script for inside a node: holds a watch on Nodes open and reports when the connection closes. */
const watchScript = `
const https = require('node:https');
const fs = require('node:fs');
const yaml = fs.readFileSync(process.argv[1], 'utf8');
const server = /server: (\\S+)/.exec(yaml)[1];
const ca = Buffer.from(/certificate-authority-data: (\\S+)/.exec(yaml)[1], 'base64');
const token = /token: (\\S+)/.exec(yaml)[1];
const request = https.get(server + '/api/v1/nodes?watch=1', { ca, headers: { authorization: 'Bearer ' + token } });
request.on('response', (response) => { console.log('open ' + response.statusCode); response.resume(); response.on('close', () => { console.log('closed'); process.exit(0); }); });
request.on('error', (error) => { console.log('closed ' + error.code); process.exit(0); });
`;

describe('API server access from nodes', () => {
  test('a node reaches the API server with nodeKubeconfig, verifying TLS', async () => {
    const kubeconfig = await network.nodeKubeconfig();
    const { stdout } = await network.nodes[0]!.exec([
      'kubectl', `--kubeconfig=${kubeconfig}`, 'get', 'nodes',
      '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.addresses[0].address},{end}',
    ]); // prettier-ignore
    expect(stdout).toBe('node-1=10.116.0.10,node-2=10.116.0.11,');
    expect(network.apiServerUrl).toBe('https://10.116.0.1:6443');
  });

  test('Node objects carry the hostname label and InternalIP addresses', async () => {
    const node = await controlPlane.request<{
      metadata: { labels: Record<string, string> };
      status: { addresses: { type: string; address: string }[] };
    }>('GET', '/api/v1/nodes/node-2');
    expect(node.body.metadata.labels['kubernetes.io/hostname']).toBe('node-2');
    expect(node.body.status.addresses).toContainEqual({ type: 'InternalIP', address: '10.116.0.11' });
  });

  test('a ServiceAccount token works from inside a node too', async () => {
    const token = await controlPlane.mintToken('node-access', 'agent');
    const kubeconfig = await network.nodeKubeconfig(token);
    const result = await network.nodes[1]!.exec(['kubectl', `--kubeconfig=${kubeconfig}`, 'get', 'nodes'], {
      allowFailure: true,
    });
    expect(result.stderr).toMatch(/forbidden/i);
    expect(result.stderr).toContain('system:serviceaccount:node-access:agent');
  });

  test('blockApi drops open connections and refuses new ones for that node only; unblockApi restores', async () => {
    const kubeconfig = await network.nodeKubeconfig();
    const [blocked, other] = network.nodes;
    const getNodes = ['kubectl', `--kubeconfig=${kubeconfig}`, 'get', 'nodes', '--request-timeout=3s'];
    const watcher = blocked!.spawn([process.execPath, '-e', watchScript, kubeconfig]);
    let output = '';
    watcher.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitFor('the watch to open', () => output.includes('open 200'));

    await network.blockApi(blocked!.name);
    await waitFor('the open watch to be dropped', () => output.includes('closed'));
    const refused = await blocked!.exec(getNodes, { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect((await other!.exec(getNodes)).code).toBe(0);
    expect(await blocked!.ping(other!.address)).toBe(true);

    await network.unblockApi(blocked!.name);
    expect((await blocked!.exec(getNodes)).code).toBe(0);
  });
});

describe('nodes come and go', () => {
  test('addNode takes the next free address and registers a Node; removeNode undoes all of it', async () => {
    const extra = await network.addNode('extra');
    expect(extra.address).toBe('10.116.0.13');
    expect(network.nodes.map((node) => node.name)).toContain('extra');
    expect(await extra.ping(network.nodes[0]!.address)).toBe(true);
    expect((await controlPlane.request('GET', '/api/v1/nodes/extra')).status).toBe(200);
    const sleeper = extra.spawn(['sleep', '300']);
    await waitFor('the spawned process', () => sleeper.pid !== undefined && existsSync(`/proc/${sleeper.pid}`));

    await network.removeNode('extra');
    expect((await controlPlane.request('GET', '/api/v1/nodes/extra')).status).toBe(404);
    expect((await runCommand(['ip', 'netns', 'list'])).stdout).not.toContain(extra.netns);
    await waitFor('the spawned process to be gone', () => !existsSync(`/proc/${sleeper.pid}`));
    expect(network.nodes.map((node) => node.name)).not.toContain('extra');
  });

  test('a gateway destination outside the documentation ranges is refused before anything is built', async () => {
    await expect(startNetwork({ nodes: 1, gatewayDestinations: ['8.8.8.0/24'] })).rejects.toThrow(/not allowed/);
  });
});

describe('teardown', () => {
  test('destroy leaves no namespace, link, process or file, and the root namespace is as it was', async () => {
    const runId = network.runId;
    const spawned = network.nodes[0]!.spawn(['sleep', '300']);
    await network.destroy();
    await controlPlane.stop();
    const namespaces = (await runCommand(['ip', 'netns', 'list'])).stdout;
    expect(namespaces).not.toContain(runId);
    expect(processesMentioning(runId)).toEqual([]);
    expect(processesMentioning(controlPlane.dir)).toEqual([]);
    await waitFor('the node process to be gone', () => !existsSync(`/proc/${spawned.pid}`));
    expect(existsSync(controlPlane.dir)).toBe(false);
    expect(await rootLinkNames()).toEqual(linksBefore);
    expect(await rootNamespaceSnapshot()).toBe(rootBefore);
  });
});
