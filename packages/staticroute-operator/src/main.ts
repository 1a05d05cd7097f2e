#!/usr/bin/env node
/**
 * Entry point of the k8s-staticroute-operator image: runs {@link StaticRouteOperator} for this node.
 *
 * Configuration comes from the environment (see logic/config.ts and docs/operator-guide.md). SIGTERM/SIGINT stop
 * gracefully: no new work, running handlers finish within the grace period, exit 0. Routes stay in the kernel across
 * restarts; the next start converges from what the kernel holds.
 */
import { setFlagsFromString } from 'node:v8';
import { runOperators } from 'opkit';
import { readConfig } from './logic/config.js';
import { StaticRouteOperator } from './handlers/operator.js';

/**
 * Keeps V8's young generation at its initial size (2 MB) instead of letting it double up to 32 MB (2 x 16 MB
 * semi-spaces) under the allocation bursts of a start with thousands of routes. V8 does not give that memory back
 * while the process stays busy now and then (the periodic reconcile, watch events), so it stayed resident: at 10,000
 * routes the new space was 32 of the ~135 MB RSS. The cost is more frequent scavenges, each of a smaller space. This is
 * one of the few V8 flags read at run time (at each resize), so setting it here works without a command-line flag.
 */
function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

async function main(): Promise<number> {
  limitYoungGeneration();
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
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) process.exit(1);
    runtime.logger.info({ signal }, 'stopping');
    void runtime.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await runtime.ready;
  } catch (error) {
    if (signals === 0) {
      runtime.logger.fatal({ err: error }, 'the operator failed to start');
      await runtime.stop();
      return 1;
    }
  }
  await runtime.done;
  return 0;
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
