/**
 * Resident memory of an idle operator process, layer by layer (why the kube layer avoids @kubernetes/client-node).
 *
 * Each scenario runs in a fresh child process, waits until idle, forces two GCs and reads `process.memoryUsage()`;
 * the table shows the median of `--runs` runs (default 5) per Node.js binary. The opkit kube layer is compiled from
 * source first (into node_modules/.cache, so nothing in the tree changes), and a real control plane (testbed) serves
 * the API, so the "client idle" row has a real TLS keep-alive connection and an open watch.
 *
 * Run (from the repository root; the driver runs through the benchmarks' TypeScript hooks, children are plain JS):
 *   node --import ./packages/framework/bench/register.mjs packages/framework/bench/rss.ts
 *        [--runs=5] [--node=/usr/bin/node --node=/path/to/node24] [--flags="--lite-mode"]
 * On Node >= 22.18 `node packages/framework/bench/rss.ts ...` works too (built-in type stripping).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const frameworkDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = path.resolve(frameworkDir, '../..');
const compiledDir = path.join(frameworkDir, 'node_modules/.cache/opkit-bench');
const tsc = path.join(repoDir, 'node_modules/.bin/tsc');

interface Sample {
  rss: number;
  heapUsed: number;
  external: number;
  maxRss: number;
  /** Time resolveCredentials took (0 where not used). */
  resolveMs: number;
}

interface Scenario {
  name: string;
  /** Module code run in the child before measuring; `env.BENCH_KUBECONFIG` names the admin kubeconfig. */
  setup: string;
}

const compiled = (file: string): string => JSON.stringify(path.join(compiledDir, file));

const logging = `
  const { createLogger } = await import(${compiled('ops/logging.js')});
  const { createMetrics } = await import(${compiled('ops/metrics.js')});
  const logger = createLogger({ level: 'info', destination: (await import('node:fs')).createWriteStream('/dev/null') });
  const metrics = createMetrics();
  logger.info('ready');
  await metrics.registry.metrics();
`;

const scenarios: Scenario[] = [
  { name: 'node (bare)', setup: '' },
  { name: '+ pino, prom-client (logger, registry, process metrics)', setup: logging },
  ...(['process', 'worker'] as const).map((isolation) => ({
    name: `+ opkit kube layer idle, credentials resolved in a ${isolation === 'process' ? 'child process' : 'worker thread'}`,
    setup: `${logging}
      const { resolveCredentials } = await import(${compiled('kube/credentials.js')});
      const { createKubeApi } = await import(${compiled('kube/client.js')});
      const { Watcher } = await import(${compiled('kube/watcher.js')});
      const started = performance.now();
      const credentials = await resolveCredentials({ kubeconfigPath: process.env.BENCH_KUBECONFIG, isolation: '${isolation}' });
      globalThis.resolveMs = performance.now() - started;
      const api = createKubeApi({ credentials, logger });
      const watcher = new Watcher(api, { ref: { group: '', version: 'v1', plural: 'configmaps', namespaced: true }, logger });
      await new Promise((resolve) => watcher.start((event) => { if (event.type === 'synced') resolve(); }));
      globalThis.keep = watcher;
    `,
  })),
  {
    name: '+ @kubernetes/client-node imported (KubeConfig, CoreV1Api, one list)',
    setup: `${logging}
      const k8s = await import('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(process.env.BENCH_KUBECONFIG);
      const core = kc.makeApiClient(k8s.CoreV1Api);
      await core.listConfigMapForAllNamespaces();
      globalThis.keep = core;
    `,
  },
];

const measure = `
  await new Promise((resolve) => setTimeout(resolve, 1500));
  for (let i = 0; i < 2; i += 1) { globalThis.gc(); await new Promise((resolve) => setTimeout(resolve, 250)); }
  const usage = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external,
    maxRss: process.resourceUsage().maxRSS * 1024, resolveMs: globalThis.resolveMs ?? 0 }) + '\\n');
  process.exit(0);
`;

function runChild(node: string, flags: string[], scenario: Scenario, kubeconfig: string): Promise<Sample> {
  const code = `${scenario.setup}\n${measure}`;
  return new Promise((resolve, reject) => {
    const child = spawn(node, ['--expose-gc', ...flags, '--input-type=module', '-e', code], {
      // Resolve bare imports (pino, client-node) from the framework package, as the operator does.
      cwd: frameworkDir,
      env: { ...process.env, BENCH_KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as Sample);
      else reject(new Error(`${scenario.name} on ${node} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const W = 84;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 5);
  const nodes = args.filter((a) => a.startsWith('--node=')).map((a) => a.slice(7));
  if (nodes.length === 0) nodes.push(process.execPath);
  // V8 flags for the measured processes, e.g. --flags="--max-semi-space-size=1 --lite-mode".
  const flags = (args.find((a) => a.startsWith('--flags='))?.slice(8) ?? '').split(' ').filter(Boolean);

  // Compile only the kube layer and the ops modules it sits beside: the bench must not depend on the rest of the tree.
  execFileSync(
    tsc,
    [
      '--outDir',
      compiledDir,
      '--rootDir',
      path.join(frameworkDir, 'src'),
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--skipLibCheck',
      '--strict',
      '--declaration',
      'false',
      '--sourceMap',
      'false',
      '--verbatimModuleSyntax',
      path.join(frameworkDir, 'src/kube/index.ts'),
      path.join(frameworkDir, 'src/ops/logging.ts'),
      path.join(frameworkDir, 'src/ops/metrics.ts'),
    ],
    { stdio: 'inherit' },
  );
  // The testbed is imported compiled (its package entry point), so build it when missing.
  if (!existsSync(path.join(repoDir, 'packages/testbed/dist/index.js'))) {
    execFileSync(tsc, ['-b', path.join(repoDir, 'packages/testbed')], { stdio: 'inherit' });
  }
  const { startControlPlane } = await import('@opkit/testbed');
  const controlPlane = await startControlPlane();
  try {
    // A little content, so lists and the watch carry data.
    for (let i = 0; i < 20; i += 1) {
      await controlPlane.request('POST', '/api/v1/namespaces/default/configmaps', {
        metadata: { name: `bench-${i}` },
        data: { payload: 'x'.repeat(512) },
      });
    }
    console.log(
      `RSS of an idle process, median of ${runs} runs (MB; heap = V8 heap used; ext = external; peak = max RSS; resolve = resolveCredentials time)\n`,
    );
    for (const node of nodes) {
      const version = execFileSync(node, ['--version']).toString().trim();
      console.log(`Node ${version} (${node})${flags.length ? ` with ${flags.join(' ')}` : ''}`);
      console.log(
        `${'scenario'.padEnd(W)} ${'rss'.padStart(7)} ${'heap'.padStart(7)} ${'ext'.padStart(7)} ${'peak'.padStart(7)} ${'resolve'.padStart(8)}`,
      );
      for (const scenario of scenarios) {
        const samples: Sample[] = [];
        for (let i = 0; i < runs; i += 1)
          samples.push(await runChild(node, flags, scenario, controlPlane.kubeconfigPath));
        const pick = (key: keyof Sample): string => mb(median(samples.map((s) => s[key]))).padStart(7);
        const resolveMs = median(samples.map((s) => s.resolveMs));
        const resolveCell = (resolveMs ? `${resolveMs.toFixed(0)} ms` : '').padStart(8);
        console.log(
          `${scenario.name.padEnd(W)} ${pick('rss')} ${pick('heapUsed')} ${pick('external')} ${pick('maxRss')} ${resolveCell}`,
        );
      }
      console.log('');
    }
  } finally {
    await controlPlane.stop();
  }
}

await main();
