#!/usr/bin/env node
/**
 * Entry point of the k8s-staticroute-operator image. One image, two roles:
 * - `agent` (default; the DaemonSet): keeps this node's routing table in line with every StaticRoute and writes this
 *   node's report;
 * - `aggregator` (the Deployment, `node dist/main.js aggregator` or ROLE=aggregator): turns the reports into each
 *   StaticRoute's status and holds its finalizer; replicas elect one active leader through a Lease.
 *
 * Configuration comes from the environment (logic/config.ts, logic/aggregator-config.ts, docs/operator-guide.md).
 * SIGTERM/SIGINT stop gracefully and exit 0. Routes stay in the kernel across agent restarts; the next start converges
 * from what the kernel holds.
 */
import { limitYoungGeneration } from 'opkit/heap';

type Role = 'agent' | 'aggregator';

function roleOf(argv: readonly string[], env: NodeJS.ProcessEnv): Role {
  const role = (argv[2] ?? env.ROLE ?? 'agent').trim();
  if (role === 'agent' || role === 'aggregator') return role;
  throw new Error(`unknown role ${JSON.stringify(role)}: expected "agent" or "aggregator"`);
}

async function runAgent(): Promise<number> {
  const { readConfig } = await import('./logic/config.js');
  const config = readConfig(process.env);
  const { runOperators, runUntilSignalled } = await import('opkit');
  const { Registry } = await import('prom-client');
  const { StaticRouteAgent, kernelProbes } = await import('./agent/agent-operator.js');
  // One registry for the runtime's metrics and the agent's (routes, netlink), served together on /metrics.
  const registry = new Registry();
  StaticRouteAgent.metricsRegistry = registry;
  const runtime = runOperators([StaticRouteAgent], {
    metricsRegistry: registry,
    // /readyz and /healthz also say whether this node can program routes (adapters/health.ts).
    runnables: [kernelProbes],
    instanceId: config.nodeName,
    scope: 'node',
    // The agent needs its own Node's labels only: O(1) Node traffic per node instead of O(N).
    nodeWatch: 'own',
    cleanupDeadInstances: false,
    logLevel: config.logLevel,
    component: 'k8s-staticroute-operator',
    probes: { host: process.env.PROBE_ADDRESS?.trim() || '0.0.0.0', port: config.probePort },
    ...(process.env.KUBECONFIG ? { kubeconfigPath: process.env.KUBECONFIG } : {}),
  });
  return runUntilSignalled(runtime);
}

async function runAggregator(): Promise<number> {
  const { readAggregatorConfig } = await import('./logic/aggregator-config.js');
  const config = readAggregatorConfig(process.env);
  const { runOperators, runUntilSignalled } = await import('opkit');
  const { Aggregator } = await import('./aggregator/aggregator.js');
  const aggregator = new Aggregator({
    silentAfterMs: config.silentAfterMs,
    deletionGraceMs: config.deletionGraceMs,
    settleMs: config.settleMs,
  });
  const runtime = runOperators([], {
    runnables: [aggregator],
    leaderElection: {
      namespace: config.leaseNamespace,
      name: config.leaseName,
      ...(config.identity ? { identity: config.identity } : {}),
      leaseDurationSeconds: config.leaseDurationSeconds,
    },
    logLevel: config.logLevel,
    component: 'k8s-staticroute-aggregator',
    probes: { host: config.probeAddress, port: config.probePort },
    ...(process.env.KUBECONFIG ? { kubeconfigPath: process.env.KUBECONFIG } : {}),
  });
  return runUntilSignalled(runtime);
}

async function main(): Promise<number> {
  // Before the framework and its dependencies are even loaded (hence the dynamic imports): loading them is the first
  // allocation burst, and the young generation would grow under it and stay grown.
  limitYoungGeneration();
  let role: Role;
  try {
    role = roleOf(process.argv, process.env);
    return await (role === 'aggregator' ? runAggregator() : runAgent());
  } catch (error) {
    if (error instanceof Error && /must be|unknown role/.test(error.message)) {
      process.stderr.write(`k8s-staticroute-operator: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `k8s-staticroute-operator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
