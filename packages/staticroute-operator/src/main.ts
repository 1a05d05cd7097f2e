#!/usr/bin/env node
/**
 * Entry point of the k8s-staticroute-operator image: runs {@link StaticRouteOperator} for this node.
 *
 * Configuration comes from the environment (see logic/config.ts and docs/operator-guide.md). SIGTERM/SIGINT stop
 * gracefully: no new work, running handlers finish within the grace period, exit 0. Routes stay in the kernel across
 * restarts; the next start converges from what the kernel holds.
 */
import { limitYoungGeneration } from 'opkit/heap';
import { readConfig } from './logic/config.js';

async function main(): Promise<number> {
  // Before the framework and its dependencies are even loaded (hence the dynamic imports below and the small
  // `opkit/heap` entry point): loading them is the first allocation burst, and the young generation would grow under
  // it and stay grown.
  limitYoungGeneration();
  const { runOperators, runUntilSignalled } = await import('opkit');
  const { StaticRouteOperator } = await import('./handlers/operator.js');
  let config;
  try {
    config = readConfig(process.env);
  } catch (error) {
    process.stderr.write(`k8s-staticroute-operator: ${(error as Error).message}\n`);
    return 2;
  }
  const runtime = runOperators([StaticRouteOperator], {
    instanceId: config.nodeName,
    scope: 'node',
    logLevel: config.logLevel,
    component: 'k8s-staticroute-operator',
    probes: { host: '0.0.0.0', port: config.probePort },
    ...(process.env.KUBECONFIG ? { kubeconfigPath: process.env.KUBECONFIG } : {}),
  });
  return runUntilSignalled(runtime);
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
