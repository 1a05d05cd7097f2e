#!/usr/bin/env node
/**
 * The local demo (`bash scripts/demo.sh`): what a cluster admin sees when installing the StaticRoute operator.
 *
 * 1. a real kube-apiserver + etcd on loopback, three nodes and two gateway hosts as network namespaces on a
 *    simulated VPC (10.116.0.0/20);
 * 2. the release applied with kubectl; the aggregator started as its Deployment starts it (`main.js aggregator`, its
 *    ServiceAccount's token, leader election); one agent process per node inside its namespace, started as the
 *    DaemonSet starts it (NODE_NAME, a token of the agents' ServiceAccount bound to a pod on that node);
 * 3. the old operator's examples applied with the first gateway: `kubectl get sr` once the aggregator shows READY
 *    3/3, `kubectl get srns` (each node's report), each node's table printed like `route -n`;
 * 4. the gateway changed in place (the edit the old operator could not handle), the same shown again;
 * 5. the objects deleted (routes removed on every node, then the aggregator releases its finalizer), the tables
 *    printed once more, and everything torn down.
 *
 * Only routing tables are inspected: no packet is sent to the examples' public destinations.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, startNetwork, type ControlPlane, type Route, type SimNetwork } from '@opkit/testbed';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const RELEASE = path.join(REPO, 'deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
const OPERATOR_MAIN = path.join(REPO, 'packages/staticroute-operator/dist/main.js');
const EXAMPLES = ['static-route-ifconfig.me.yaml', 'static-route-ipinfo.io.yaml'];
const PLACEHOLDER = /<[A-Z_]+>/g;
const GATEWAY_A = '10.116.0.5';
const GATEWAY_B = '10.116.0.12';
const PROBE_PORT = '9860';
/** The operator's default rtm_protocol (DEFAULT_ROUTE_PROTOCOL in the operator's logic/config.ts). */
const OPERATOR_PROTOCOL = 201;
/** The release's namespace and ServiceAccounts (deploy/rbac.yaml). */
const NAMESPACE = 'static-routes';
const AGENT_SERVICE_ACCOUNT = 'k8s-staticroute-operator';
const AGGREGATOR_SERVICE_ACCOUNT = 'k8s-staticroute-aggregator';

function banner(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

/** Prints one node's IPv4 main table the way `route -n` does, which is what the old operator's README shows. */
function formatRouteTable(nodeName: string, routes: Route[]): string {
  const rows = routes
    .filter((route) => route.family === 4 && route.table === 254)
    .map((route) => {
      const [network = '', prefix = '32'] = route.dst.split('/');
      const bits = Number(prefix);
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      const genmask = [24, 16, 8, 0].map((shift) => (mask >>> shift) & 0xff).join('.');
      const gateway = route.gateway ?? route.nexthops?.map((hop) => hop.gateway).join(',') ?? '0.0.0.0';
      const flags = `U${route.gateway || route.nexthops ? 'G' : ''}${bits === 32 ? 'H' : ''}`;
      const proto = route.protocol === OPERATOR_PROTOCOL ? '  <- staticroute' : '';
      return `${network.padEnd(16)}${gateway.padEnd(16)}${genmask.padEnd(16)}${flags.padEnd(6)}${route.dev ?? ''}${proto}`;
    });
  return [
    `${nodeName}:`,
    `${'Destination'.padEnd(16)}${'Gateway'.padEnd(16)}${'Genmask'.padEnd(16)}Flags Iface`,
    ...rows,
  ].join('\n');
}

async function printTables(network: SimNetwork): Promise<void> {
  for (const node of network.nodes) process.stdout.write(`${formatRouteTable(node.name, await node.routes())}\n\n`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** True once every node's table holds exactly `destinations` via `gateway`, installed by the operator. */
async function converged(network: SimNetwork, destinations: string[], gateway: string | undefined): Promise<boolean> {
  for (const node of network.nodes) {
    const ours = (await node.routes({ family: 4 })).filter((route) => route.protocol === OPERATOR_PROTOCOL);
    if (ours.length !== destinations.length) return false;
    for (const destination of destinations) {
      if (!ours.some((route) => route.dst === `${destination}/32` && route.gateway === gateway)) return false;
    }
  }
  return true;
}

/**
 * True once the aggregator shows every StaticRoute READY on all nodes for its current generation (what `kubectl get
 * sr` shows).
 */
async function allReady(controlPlane: ControlPlane, nodes: number): Promise<boolean> {
  const listed = await controlPlane.kubectl(['get', 'staticroutes', '-o', 'json']);
  const { items } = JSON.parse(listed.stdout) as {
    items: Array<{ metadata: { generation?: number }; status?: { ready?: string; observedGeneration?: number } }>;
  };
  return items.every(
    (item) => item.status?.ready === `${nodes}/${nodes}` && item.status.observedGeneration === item.metadata.generation,
  );
}

/** True once no StaticRoute is left (the aggregator released each one's finalizer). */
async function noneLeft(controlPlane: ControlPlane): Promise<boolean> {
  return (await controlPlane.kubectl(['get', 'staticroutes', '-o', 'name'])).stdout.trim() === '';
}

/** True once no node's report holds an entry any more (an agent drops a deleted object's entry once it is gone). */
async function reportsEmpty(controlPlane: ControlPlane): Promise<boolean> {
  const listed = await controlPlane.kubectl(['get', 'srns', '-o', 'json']);
  const { items } = JSON.parse(listed.stdout) as { items: Array<{ status?: { summary?: { staticRoutes?: number } } }> };
  return items.every((item) => (item.status?.summary?.staticRoutes ?? 0) === 0);
}

/** A free TCP port on loopback, for the aggregator's probes (it runs on the host, where 9860 may be taken). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs kubectl and prints the command and what it printed (`No resources found` goes to stderr). */
async function show(controlPlane: ControlPlane, args: string[]): Promise<void> {
  const result = await controlPlane.kubectl(args);
  process.stdout.write(`$ kubectl ${args.join(' ')}\n${result.stdout || result.stderr}`);
}

/** `kubectl get sr` and `kubectl get srns`: each StaticRoute's summary, then each node's report. */
async function showStatus(controlPlane: ControlPlane, wide = false): Promise<void> {
  await show(controlPlane, ['get', 'sr', ...(wide ? ['-o', 'wide'] : [])]);
  process.stdout.write('\n');
  await show(controlPlane, ['get', 'srns']);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'staticroute-demo-'));
  const processes: ChildProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  let network: SimNetwork | undefined;
  try {
    banner('Starting a control plane (kube-apiserver + etcd on loopback)');
    controlPlane = await startControlPlane();
    process.stdout.write(`API server ${controlPlane.server}, kubeconfig ${controlPlane.kubeconfigPath}\n`);

    banner('Installing the release: kubectl apply -f deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
    process.stdout.write((await controlPlane.kubectl(['apply', '-f', RELEASE])).stdout);
    await controlPlane.kubectl(['wait', '--for=condition=Established', 'crd/staticroutes.networking.digitalocean.com']);

    banner('Creating 3 nodes and gateways 10.116.0.5 and 10.116.0.12 (network namespaces on 10.116.0.0/20)');
    network = await startNetwork({ nodes: 3, controlPlane, gateways: [GATEWAY_A, GATEWAY_B] });
    process.stdout.write((await controlPlane.kubectl(['get', 'nodes', '-o', 'wide'])).stdout);

    banner('Starting the aggregator (as its Deployment does: `main.js aggregator` + its ServiceAccount token)');
    const aggregatorToken = await controlPlane.mintToken(NAMESPACE, AGGREGATOR_SERVICE_ACCOUNT, {
      expirationSeconds: 3600,
    });
    const aggregatorPort = await freePort();
    processes.push(
      spawn(process.execPath, [OPERATOR_MAIN, 'aggregator'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: {
          PATH: process.env.PATH ?? '',
          KUBECONFIG: await controlPlane.writeKubeconfig({ token: aggregatorToken }),
          POD_NAME: 'k8s-staticroute-aggregator-demo',
          PROBE_PORT: String(aggregatorPort),
          PROBE_ADDRESS: '127.0.0.1',
          LOG_LEVEL: 'warn',
        },
      }),
    );
    // Ready once it leads (the Lease) and has listed StaticRoutes, Nodes and node reports.
    await waitFor('the aggregator', async () => {
      const response = await fetch(`http://127.0.0.1:${aggregatorPort}/readyz`).catch(() => undefined);
      return response?.status === 200;
    });
    process.stdout.write('aggregator ready (leader)\n');

    banner('Starting the agent on every node (as the DaemonSet does: NODE_NAME + a token bound to a pod on the node)');
    for (const node of network.nodes) {
      // Bound to a pod on this node, as the kubelet projects it: the agent may write this node's report only.
      const token = await controlPlane.mintToken(NAMESPACE, AGENT_SERVICE_ACCOUNT, {
        expirationSeconds: 3600,
        boundToPodOnNode: node.name,
      });
      const child = node.spawn([process.execPath, OPERATOR_MAIN], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: {
          NODE_NAME: node.name,
          KUBECONFIG: await network.nodeKubeconfig(token),
          OPKIT_STATE_DIR: path.join(work, node.name),
          PROBE_PORT,
          LOG_LEVEL: 'warn',
        },
      });
      processes.push(child);
    }
    for (const node of network.nodes) {
      await waitFor(`agent on ${node.name}`, async () => {
        const probe = await node.exec(['curl', '-sf', `http://127.0.0.1:${PROBE_PORT}/readyz`], { allowFailure: true });
        return probe.code === 0;
      });
    }
    process.stdout.write('agents ready on all nodes\n');

    banner(`Applying the examples with gateway ${GATEWAY_A} (placeholders replaced)`);
    const destinations: string[] = [];
    for (const example of EXAMPLES) {
      const text = readFileSync(path.join(REPO, 'examples', example), 'utf8').replace(PLACEHOLDER, GATEWAY_A);
      destinations.push(...[...text.matchAll(/- ['"]?([\d.]+)['"]?$/gm)].map((match) => match[1] ?? ''));
      writeFileSync(path.join(work, example), text);
      process.stdout.write((await controlPlane.kubectl(['apply', '-f', path.join(work, example)])).stdout);
    }
    await waitFor('routes on every node', () => converged(network!, destinations, GATEWAY_A));
    await waitFor('every StaticRoute ready', () => allReady(controlPlane!, network!.nodes.length));
    banner("READY nodes per StaticRoute (written by the aggregator) and each node's report (written by its agent)");
    await showStatus(controlPlane, true);
    banner('Routing tables (route -n)');
    await printTables(network);

    banner(`Changing the gateway in place to ${GATEWAY_B} (kubectl patch; the old operator could not do this)`);
    for (const example of EXAMPLES) {
      const name = example.replace(/\.yaml$/, '');
      const patch = JSON.stringify({ spec: { gateway: GATEWAY_B } });
      process.stdout.write(
        (await controlPlane.kubectl(['patch', 'staticroute', name, '--type=merge', '-p', patch])).stdout,
      );
    }
    await waitFor('the new gateway on every node', () => converged(network!, destinations, GATEWAY_B));
    await waitFor('every StaticRoute ready', () => allReady(controlPlane!, network!.nodes.length));
    await showStatus(controlPlane);
    banner('Routing tables after the gateway change: old routes deleted first, then the new ones added');
    await printTables(network);

    banner('Deleting the StaticRoutes: routes removed on every node, then the aggregator releases its finalizer');
    for (const example of EXAMPLES) {
      process.stdout.write(
        (await controlPlane.kubectl(['delete', '-f', path.join(work, example), '--wait=false'])).stdout,
      );
    }
    await waitFor('routes removed', () => converged(network!, [], undefined));
    await waitFor('the StaticRoutes gone', () => noneLeft(controlPlane!));
    await waitFor('the node reports emptied', () => reportsEmpty(controlPlane!));
    await showStatus(controlPlane);
    banner('Routing tables after the delete');
    await printTables(network);
    banner('Done: tearing down');
  } finally {
    for (const child of processes) child.kill('SIGTERM');
    await Promise.all(
      processes.map((child) =>
        child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve(),
      ),
    );
    await network?.destroy();
    await controlPlane?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
