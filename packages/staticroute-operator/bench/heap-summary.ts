/**
 * Summarizes a V8 heap snapshot (`node --heapsnapshot-signal=SIGUSR2`, as written by `cold-start.ts --heap-snapshot`):
 * self size by constructor (objects), and by kind (strings, arrays, code, ...), largest first. What holds the memory
 * of an operator with 10,000 routes.
 *
 * Run: node --import ./packages/staticroute-operator/bench/lib/register.mjs packages/staticroute-operator/bench/heap-summary.ts
 *        FILE.heapsnapshot [--top=25]
 */
import { readFileSync } from 'node:fs';
import { numericOptions, printTable } from '@opkit/testbed/bench';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self sizes of a snapshot by "kind: constructor" (objects) or kind (everything else), in bytes, with counts. */
export function summarizeHeap(file: string): Array<{ name: string; count: number; bytes: number }> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const totals = new Map<string, { count: number; bytes: number }>();
  for (let index = 0; index < snapshot.nodes.length; index += stride) {
    const type = types[snapshot.nodes[index + typeAt] as number] as string;
    const name = snapshot.strings[snapshot.nodes[index + nameAt] as number] as string;
    const key = type === 'object' || type === 'closure' ? `${type}: ${name.slice(0, 60)}` : type;
    const entry = totals.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snapshot.nodes[index + sizeAt] as number;
    totals.set(key, entry);
  }
  return [...totals].map(([name, entry]) => ({ name, ...entry })).sort((a, b) => b.bytes - a.bytes);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
  if (!file) throw new Error('usage: heap-summary.ts FILE.heapsnapshot [--top=25]');
  const { top } = numericOptions({ top: 25 });
  const rows = summarizeHeap(file);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  printTable(
    `${file}: ${(total / 1e6).toFixed(1)} MB in the snapshot`,
    ['what', 'count', 'MB'],
    rows.slice(0, top).map((row) => [row.name, row.count, (row.bytes / 1e6).toFixed(2)]),
  );
}
