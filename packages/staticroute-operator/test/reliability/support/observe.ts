/**
 * What the reliability tests read back from a running cluster: the processes' logs (pino JSON), the agents' Prometheus
 * metrics (scraped inside each node's namespace) and process liveness. (The agents keep no node-local state: what they
 * report is in their node reports, see reports.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SimNode } from '@opkit/testbed';
import type { E2eCluster, OperatorProcess } from '../../e2e/support/cluster.js';

/** The operators' probe port (the fixture sets PROBE_PORT=9860). */
export const PROBE_PORT = 9860;

/** One pino log line. */
export interface LogEntry {
  level: number;
  time: string;
  msg: string;
  [key: string]: unknown;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** Parses pino JSON lines; anything else (a crash trace on stderr) is kept as a level-60 entry. */
export function parseLogs(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown> | null;
      // pino writes numeric levels, or their labels when configured with a level formatter.
      const level = typeof parsed?.level === 'number' ? parsed.level : LEVELS[String(parsed?.level)];
      if (parsed && typeof parsed === 'object' && level !== undefined) {
        entries.push({ ...parsed, level, time: String(parsed.time ?? ''), msg: String(parsed.msg ?? '') });
        continue;
      }
    } catch {
      // not JSON: fall through
    }
    entries.push({ level: 60, time: '', msg: `unstructured: ${line}` });
  }
  return entries;
}

/** Logs of one operator process. */
export function logsOf(operator: OperatorProcess): LogEntry[] {
  return parseLogs(operator.logs());
}

/** Every log file the fixture wrote for `nodeName` (one per operator start), oldest first. */
export function logFilesOf(cluster: E2eCluster, nodeName: string): string[] {
  const operator = cluster.operators.get(nodeName);
  if (!operator) return [];
  const folder = path.dirname(operator.logFile);
  // `<node>-<start time in ms>.log`; the exact pattern keeps node-1 from matching node-10's files.
  const started = (file: string) => {
    const match = /^(.+)-(\d+)\.log$/.exec(file);
    return match && match[1] === nodeName ? Number(match[2]) : undefined;
  };
  return readdirSync(folder)
    .filter((file) => started(file) !== undefined)
    .sort((a, b) => (started(a) as number) - (started(b) as number))
    .map((file) => path.join(folder, file));
}

/** Logs of every operator process that ever ran on `nodeName`, in start order. */
export function allLogsOf(cluster: E2eCluster, nodeName: string): LogEntry[] {
  return logFilesOf(cluster, nodeName).flatMap((file) => parseLogs(readFileSync(file, 'utf8')));
}

/** Prometheus text -> `name{label="value",...}` (labels sorted) -> value. */
export type Metrics = Map<string, number>;

export function parsePrometheus(text: string): Metrics {
  const metrics: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, value]) => `${key}="${value}"`)
      .sort()
      .join(',');
    metrics.set(`${match[1]}{${labels}}`, Number(match[4]));
  }
  return metrics;
}

/** Sum of the series of `name` whose labels include every pair of `labels`. */
export function metricSum(metrics: Metrics, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of metrics) {
    if (!key.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([label, wanted]) => key.includes(`${label}="${wanted}"`))) sum += value;
  }
  return sum;
}

/** Scrapes `/metrics` of the operator on `node` (inside its namespace). */
export async function scrapeOperator(node: SimNode): Promise<Metrics> {
  const result = await node.exec(['curl', '-sf', '--max-time', '10', `http://127.0.0.1:${PROBE_PORT}/metrics`], {
    allowFailure: true,
  });
  if (result.code !== 0) throw new Error(`cannot scrape the operator on ${node.name}: curl exited ${result.code}`);
  return parsePrometheus(result.stdout);
}

/** Scrapes the API server's `/metrics` (as admin, on loopback). */
export async function scrapeApiServer(cluster: E2eCluster): Promise<Metrics> {
  const response = await cluster.controlPlane.request('GET', '/metrics');
  if (response.status !== 200) throw new Error(`API server /metrics answered ${response.status}`);
  return parsePrometheus(response.text);
}

/** Whether the process is still the one started (no exit, no signal). */
export function isAlive(running: Pick<OperatorProcess, 'child'>): boolean {
  return running.child.exitCode === null && running.child.signalCode === null;
}

/** Resident set size of a process in bytes (from /proc), or undefined when it is gone. */
export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Percentile (nearest rank) of a list of numbers; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Log entries at warn level or above. */
export function warnings(entries: readonly LogEntry[]): LogEntry[] {
  return entries.filter((entry) => entry.level >= 40);
}
