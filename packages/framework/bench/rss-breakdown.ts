/**
 * Runs bench/rss.ts (the layer-by-layer memory breakdown: bare node, + pino/prom-client, + opkit kube layer idle,
 * + @kubernetes/client-node) through the benchmark runner, shows its table as it comes, and stores it in
 * results/rss.txt and, parsed, results/rss.json. rss.ts itself is left as its author wrote it.
 *
 * Run: node --import ./packages/framework/bench/register.mjs packages/framework/bench/rss-breakdown.ts
 *        [--runs=5] [--quick] [other rss.ts options, passed through]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { figure, numericOptions, type Figure } from '@opkit/testbed/bench';
import { benchDir, writeResults } from './lib/report.js';

const opts = numericOptions({ runs: 5 }, { runs: 3 });

interface Row {
  node: string;
  scenario: string;
  rssMB: number;
  heapMB: number;
  externalMB: number;
  peakMB: number;
  resolveMs?: number;
}

async function main(): Promise<void> {
  const passThrough = process.argv.slice(2).filter((arg) => !arg.startsWith('--runs=') && arg !== '--quick');
  const child = spawn(
    process.execPath,
    [
      '--import',
      path.join(benchDir, 'register.mjs'),
      path.join(benchDir, 'rss.ts'),
      `--runs=${opts.runs}`,
      ...passThrough,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  writeFileSync(path.join(benchDir, 'results/rss.txt'), output);
  if (code !== 0) throw new Error(`bench/rss.ts exited with ${code}`);

  const rows: Row[] = [];
  let node = '';
  for (const line of output.split('\n')) {
    if (line.startsWith('Node ')) node = line.split(' ')[1] ?? '';
    const match = /^(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)(?:\s+(\d+) ms)?\s*$/.exec(line);
    if (!match) continue;
    rows.push({
      node,
      scenario: match[1]!.trim(),
      rssMB: Number(match[2]),
      heapMB: Number(match[3]),
      externalMB: Number(match[4]),
      peakMB: Number(match[5]),
      ...(match[6] ? { resolveMs: Number(match[6]) } : {}),
    });
  }
  const bare = rows.find((row) => row.scenario.startsWith('node (bare)'));
  const figures: Figure[] = rows.map((row) =>
    figure(
      `${row.node} ${row.scenario}`,
      row.rssMB,
      'MB',
      bare && row !== bare ? { baseline: { name: 'node (bare)', value: bare.rssMB } } : {},
    ),
  );
  writeResults('rss', figures, { options: { ...opts, passThrough }, rows });
}

await main();
