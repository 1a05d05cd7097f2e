#!/usr/bin/env node
/**
 * The `opkit` command: `opkit run <module> [options]`, like `kopf run`.
 *
 * Imports the module (its `@Operator` classes register themselves), runs them with `runOperators`, serves probes and
 * metrics, and on SIGTERM/SIGINT stops gracefully (running handlers finish within the grace period) and exits 0.
 * A second signal exits at once with status 1. Startup failures exit 1; usage errors exit 2.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { importOperators } from '../engine/modules.js';
import { runOperators } from '../engine/runtime.js';
import type { RuntimeSettings } from '../engine/settings.js';
import { compactAfterBursts, HEAP_MODE_ENV, limitYoungGeneration, parseHeapMode, type HeapMode } from './heap.js';
import { createLogger } from './logging.js';
import { runUntilSignalled } from './signals.js';
import type { WebhookRuntimeSettings } from '../webhooks/settings.js';
import { WEBHOOK_FLAGS, WEBHOOK_USAGE, webhookSettingsFromFlags } from '../webhooks/flags.js';

const USAGE = `Usage: opkit run <module> [options]
       opkit manifests rbac|crd <module> [options]   (opkit manifests --help)

Runs the operator classes (decorated with @Operator) that <module> defines.

Options:
  --namespace <ns>          watch this namespace (repeatable; namespaced resources only)
  --all-namespaces          watch all namespaces (default)
  --instance-id <id>        this instance's id (default: $NODE_NAME, then the host name)
  --scope <cluster|node>    override the scope of every operator class
  --state-dir <dir>         node scope: node-local state directory (default: $OPKIT_STATE_DIR or /var/lib/opkit)
  --log-level <level>       trace|debug|info|warn|error|fatal|silent (default: info)
  --probe-host <host>       probe server address (default: 0.0.0.0)
  --probe-port <port>       probe server port for /healthz, /readyz, /metrics (default: 8080; 0 = any free port)
  --concurrency <n>         objects handled in parallel per operator (default: 4)
  --grace-period <ms>       how long running handlers may finish on shutdown (default: 30000)
  --kubeconfig <path>       kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --context <name>          kubeconfig context
  --heap <lean|default>     lean: keep V8's young generation at its initial size and compact the heap after
                            bursts of work (less memory, more CPU); default: V8's defaults
                            (default: $OPKIT_HEAP, then lean)
  -h, --help                show this help
${WEBHOOK_USAGE}`;

/** Parses the command line into runtime settings; throws a usage error message on bad input. */
export function parseCommandLine(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { module: string; settings: RuntimeSettings & WebhookRuntimeSettings; heap: HeapMode } | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: 'string', multiple: true },
      'all-namespaces': { type: 'boolean' },
      'instance-id': { type: 'string' },
      scope: { type: 'string' },
      'state-dir': { type: 'string' },
      'log-level': { type: 'string' },
      'probe-host': { type: 'string' },
      'probe-port': { type: 'string' },
      concurrency: { type: 'string' },
      'grace-period': { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      heap: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...WEBHOOK_FLAGS,
    },
  });
  if (values.help) return 'help';
  const [command, module, ...rest] = positionals;
  if (command !== 'run' || !module || rest.length > 0) throw new Error('expected: opkit run <module> [options]');
  if (values.scope !== undefined && values.scope !== 'cluster' && values.scope !== 'node') {
    throw new Error(`--scope must be cluster or node, not ${values.scope}`);
  }
  if (values['all-namespaces'] && values.namespace)
    throw new Error('--all-namespaces and --namespace exclude each other');
  const settings: RuntimeSettings & WebhookRuntimeSettings = {
    probes: {
      host: values['probe-host'] ?? '0.0.0.0',
      port: integer('--probe-port', values['probe-port'] ?? '8080', 0),
    },
  };
  if (values.namespace) settings.namespaces = values.namespace;
  if (values['instance-id']) settings.instanceId = values['instance-id'];
  if (values.scope) settings.scope = values.scope as 'cluster' | 'node';
  if (values['state-dir']) settings.stateDir = values['state-dir'];
  if (values['log-level']) settings.logLevel = values['log-level'];
  if (values.concurrency) settings.concurrency = integer('--concurrency', values.concurrency, 1);
  if (values['grace-period']) settings.gracePeriodMs = integer('--grace-period', values['grace-period'], 0);
  if (values.kubeconfig) settings.kubeconfigPath = values.kubeconfig;
  if (values.context) settings.context = values.context;
  const webhooks = webhookSettingsFromFlags(values);
  if (webhooks) settings.webhooks = webhooks;
  const heap =
    values.heap !== undefined
      ? parseHeapMode(values.heap, '--heap')
      : env[HEAP_MODE_ENV]
        ? parseHeapMode(env[HEAP_MODE_ENV], `$${HEAP_MODE_ENV}`)
        : 'lean';
  return { module, settings, heap };
}

function integer(flag: string, value: string, min: number): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new Error(`${flag} must be an integer >= ${min}, not ${value}`);
  return parsed;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'manifests') return (await import('../manifests/cli.js')).runManifestsCommand(argv.slice(1));
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`opkit: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { module, settings, heap } = parsed;
  // Before the operator module is imported and the initial list handled: the flag only stops future growth.
  if (heap === 'lean') limitYoungGeneration();
  const logger = createLogger({
    level: settings.logLevel ?? 'info',
    pretty: Boolean(process.stdout.isTTY),
    name: 'opkit',
  });
  const classes = await importOperators(module);
  if (classes.length === 0) {
    logger.fatal({ module }, 'the module defines no @Operator class');
    return 1;
  }
  const runtime = runOperators(classes, { ...settings, logger });
  if (heap === 'lean') {
    compactAfterBursts({
      requests: () => runtime.requestCount,
      onCompacted: (durationMs) => logger.debug({ durationMs: Math.round(durationMs) }, 'heap compacted after a burst'),
    });
  }
  return runUntilSignalled(runtime);
}

/** True when this file is the process's entry point (also through the `node_modules/.bin` symlink). */
function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Importing this module (tests of parseCommandLine) must not start an operator.
if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`opkit: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
