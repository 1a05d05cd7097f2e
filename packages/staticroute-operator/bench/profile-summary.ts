/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, as written by `--profile` runs of the other benchmarks): where the
 * samples fall, by function (self time and inclusive time) and by code origin (a package under node_modules, the
 * framework's or the operator's own files, Node.js internals, GC, idle), optionally within a time window counted
 * from the start of the profile (≈ the process start).
 *
 * Run: node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/profile-summary.ts
 *        FILE.cpuprofile [--from-ms=0] [--to-ms=10000] [--top=25]
 */
import { readFileSync } from 'node:fs';
import { fixed, numericOptions, printTable } from '@opkit/testbed/bench';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const opts = numericOptions({ fromMs: 0, toMs: Number.POSITIVE_INFINITY, top: 25 });

/** Where a function's code comes from. */
function origin(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native (program)';
  if (url === '') return 'native';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return `npm:${pnpm[1]}`;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (plain) return `npm:${plain[1]}`;
  const own = /packages\/([^/]+)\/dist\/(.+)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.replace(/^file:\/\//, '');
}

function main(): void {
  const file = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
  if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--from-ms=N] [--to-ms=N] [--top=N]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const origins = new Map<string, number>();
  let elapsed = 0;
  let total = 0;
  profile.samples.forEach((id, index) => {
    const delta = (profile.timeDeltas[index] ?? 0) / 1000;
    elapsed += delta;
    if (elapsed < opts.fromMs || elapsed > opts.toMs) return;
    total += delta;
    const node = byId.get(id) as ProfileNode;
    const { functionName, url } = node.callFrame;
    const key = (n: ProfileNode): string =>
      `${n.callFrame.functionName || '(anonymous)'} ${origin(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;
    self.set(key(node), (self.get(key(node)) ?? 0) + delta);
    const where = origin(url, functionName);
    origins.set(where, (origins.get(where) ?? 0) + delta);
    const seen = new Set<string>();
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const name = key(byId.get(current) as ProfileNode);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
    }
  });
  const top = (map: Map<string, number>): (string | number)[][] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, opts.top)
      .map(([name, ms]) => [name.slice(0, 110), fixed(ms, 0), `${fixed((ms / total) * 100)}%`]);
  const window = `${opts.fromMs}-${Number.isFinite(opts.toMs) ? opts.toMs : 'end'} ms`;
  console.log(`${file}: ${fixed(total, 0)} ms sampled in ${window} (profile length ${fixed(elapsed, 0)} ms)`);
  printTable('By origin (self time)', ['origin', 'ms', 'share'], top(origins));
  printTable('By function, self time', ['function', 'ms', 'share'], top(self));
  printTable('By function, inclusive time', ['function', 'ms', 'share'], top(inclusive));
}

main();
