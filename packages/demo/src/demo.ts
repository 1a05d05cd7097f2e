#!/usr/bin/env node
/**
 * The local demo (`bash scripts/demo.sh`): what a cluster admin sees when installing the StaticRoute operator.
 *
 * 1. a real kube-apiserver + etcd on loopback, three nodes and two gateway hosts as network namespaces on a
 *    simulated VPC (10.116.0.0/20);
 * 2. the release applied with kubectl, one operator process per node inside its namespace, started as the DaemonSet
 *    starts it (NODE_NAME, the shipped ServiceAccount's token);
 * 3. the old operator's examples applied with the first gateway, each node's table printed like `route -n`;
 * 4. the gateway changed in place (the edit the old operator could not handle), the tables printed again;
 * 5. the objects deleted, the tables printed once more, and everything torn down.
 *
 * Only routing tables are inspected: no packet is sent to the examples' public destinations.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** True once every StaticRoute reports all nodes ready for its current generation (what `kubectl get sr` shows). */
async function allReady(controlPlane: ControlPlane, nodes: number): Promise<boolean> {
  const listed = await controlPlane.kubectl(['get', 'staticroutes', '-o', 'json']);
  const { items } = JSON.parse(listed.stdout) as {
    items: Array<{
      metadata: { generation?: number };
      status?: { ready?: string; nodes?: Record<string, { observedGeneration?: number }> };
    }>;
  };
  return items.every(
    (item) =>
      item.status?.ready === `${nodes}/${nodes}` &&
      Object.values(item.status.nodes ?? {}).every((entry) => entry.observedGeneration === item.metadata.generation),
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'staticroute-demo-'));
  const operators: ChildProcess[] = [];
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

    banner('Starting the operator on every node (as the DaemonSet does: NODE_NAME + the ServiceAccount token)');
    const token = await controlPlane.mintToken('static-routes', 'k8s-staticroute-operator', {
      expirationSeconds: 3600,
    });
    const kubeconfig = await network.nodeKubeconfig(token);
    for (const node of network.nodes) {
      const child = node.spawn([process.execPath, OPERATOR_MAIN], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: {
          NODE_NAME: node.name,
          KUBECONFIG: kubeconfig,
          OPKIT_STATE_DIR: path.join(work, node.name),
          PROBE_PORT,
          LOG_LEVEL: 'warn',
        },
      });
      operators.push(child);
    }
    for (const node of network.nodes) {
      await waitFor(`operator on ${node.name}`, async () => {
        const probe = await node.exec(['curl', '-sf', `http://127.0.0.1:${PROBE_PORT}/readyz`], { allowFailure: true });
        return probe.code === 0;
      });
    }
    process.stdout.write('operators ready on all nodes\n');

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
    process.stdout.write((await controlPlane.kubectl(['get', 'staticroutes', '-o', 'wide'])).stdout);
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
    process.stdout.write((await controlPlane.kubectl(['get', 'staticroutes'])).stdout);
    banner('Routing tables after the gateway change: old routes deleted first, then the new ones added');
    await printTables(network);

    banner('Deleting the StaticRoutes: routes removed on every node, then each node releases its finalizer');
    for (const example of EXAMPLES) {
      process.stdout.write((await controlPlane.kubectl(['delete', '-f', path.join(work, example)])).stdout);
    }
    await waitFor('routes removed', () => converged(network!, [], undefined));
    await printTables(network);
    banner('Done: tearing down');
  } finally {
    for (const child of operators) child.kill('SIGTERM');
    await Promise.all(
      operators.map((child) =>
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
