#!/usr/bin/env node
/**
 * `testbed up [--nodes N]`: a control plane and N simulated nodes for manual work; tears down on Ctrl-C.
 * `testbed cleanup`: removes what dead runs left behind.
 */
import { startControlPlane } from './control-plane/control-plane.js';
import { cleanupLeftovers } from './lifetime/cleanup.js';
import { startNetwork } from './network/network.js';

const usage = `usage:
  testbed up [--nodes N] [--no-network]   start kube-apiserver + etcd and N simulated nodes (default 2); Ctrl-C stops
  testbed cleanup                         remove namespaces, processes and files of dead test bed runs`;

function parseNodes(args: string[]): number {
  const index = args.indexOf('--nodes');
  const inline = args.find((arg) => arg.startsWith('--nodes='));
  const raw = inline ? inline.slice('--nodes='.length) : index >= 0 ? args[index + 1] : '2';
  const nodes = Number(raw);
  if (!Number.isInteger(nodes) || nodes < 0 || nodes > 200) throw new Error(`--nodes wants a number 0-200, got ${raw}`);
  return nodes;
}

async function up(args: string[]): Promise<void> {
  const nodes = parseNodes(args);
  const withNetwork = !args.includes('--no-network') && nodes > 0;
  const controlPlane = await startControlPlane();
  let network: Awaited<ReturnType<typeof startNetwork>> | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.error('\ntearing down...');
    await network?.destroy();
    await controlPlane.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  try {
    if (withNetwork) network = await startNetwork({ nodes, controlPlane });
  } catch (error) {
    await controlPlane.stop();
    throw error;
  }
  console.log(`API server:  ${controlPlane.server}`);
  console.log(`kubeconfig:  ${controlPlane.kubeconfigPath}`);
  console.log(`  export KUBECONFIG=${controlPlane.kubeconfigPath}`);
  if (network) {
    console.log(`network:     ${network.subnet} (run ${network.runId}), API inside: ${network.apiServerUrl}`);
    console.log(`node kubeconfig: ${await network.nodeKubeconfig()}`);
    for (const node of network.nodes)
      console.log(`  node ${node.name}  ${node.address}  ip netns exec ${node.netns} ...`);
    for (const gateway of network.gateways) console.log(`  gateway ${gateway.address}  netns ${gateway.netns}`);
  }
  console.log('Ctrl-C to stop.');
  // Stay alive until a signal arrives.
  setInterval(() => undefined, 1 << 30);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === 'up') await up(args);
  else if (command === 'cleanup') {
    const removed = await cleanupLeftovers();
    console.log(removed.length ? `removed:\n  ${removed.join('\n  ')}` : 'nothing to clean up');
  } else {
    console.error(usage);
    process.exit(command === undefined || command === '--help' || command === 'help' ? 0 : 2);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
