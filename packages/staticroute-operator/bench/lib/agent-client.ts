/**
 * Drives test/support/netlink-agent.mjs (the operator's compiled netlink adapter and planner in a process inside a
 * namespace) with a chosen Node.js binary: JSON commands on stdin, one JSON reply per line on stdout.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { MonitoredHost } from './route-log.js';
import { PACKAGE_DIR } from './report.js';

const AGENT = path.join(PACKAGE_DIR, 'test/support/netlink-agent.mjs');

/** What the agent's `bench` command reports (ms): plan + pipelined apply of `count` host routes, then removal. */
export interface AgentBench {
  count: number;
  listed: number;
  addMs: number;
  listMs: number;
  noopMs: number;
  deleteMs: number;
  addFailures: number;
  deleteFailures: number;
}

export interface AgentReconcile {
  operations: unknown[];
  failures: unknown[];
}

export class AgentClient {
  private nextId = 1;
  private readonly waiting = new Map<number, (message: { result?: unknown; error?: string }) => void>();
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {}

  static async start(host: Pick<MonitoredHost, 'spawn'>, nodeBinary: string): Promise<AgentClient> {
    const child = host.spawn([nodeBinary, AGENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const client = new AgentClient(child);
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (client.stderr += chunk));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`netlink agent exited ${code}: ${client.stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as { id?: number; ready?: boolean; result?: unknown; error?: string };
        if (message.ready) resolve();
        else if (message.id !== undefined) client.deliver(message.id, message);
      });
    });
    return client;
  }

  private deliver(id: number, message: { result?: unknown; error?: string }): void {
    const waiter = this.waiting.get(id);
    this.waiting.delete(id);
    waiter?.(message);
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (message) => {
        if (message.error !== undefined) reject(new Error(message.error));
        else resolve(message.result as T);
      });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  /** Installs `count` host routes via `gateway`, re-plans, dumps and removes them (the agent times each step). */
  bench(count: number, gateway: string): Promise<AgentBench> {
    return this.call('bench', { count, gateway });
  }

  /** Converges the namespace's table to `desired` (plan + apply, as the operator does). */
  reconcile(desired: Array<{ destination: string; gateways: string[] }>): Promise<AgentReconcile> {
    return this.call('reconcile', { desired });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin?.end();
    await exited;
  }
}
