/** Test-side client of netlink-agent.mjs: one agent process per simulated node. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SimHost } from '@opkit/testbed';

const AGENT = fileURLToPath(new URL('./netlink-agent.mjs', import.meta.url));

/** A route as the agent reports it (the adapter's decoded form). */
export interface AgentRoute {
  family: 4 | 6;
  destination: string;
  gateways: string[];
  protocol: number;
  metric: number;
  type: number;
  table: number;
}

export interface AgentEvent {
  kind: 'route-added' | 'route-deleted' | 'link-changed' | 'address-changed' | 'overflow';
  route?: AgentRoute;
}

export interface ReconcileReport {
  operations: Array<{ op: string; destination: string; gateways: string[]; reason: string }>;
  blocked: Array<{ destination: string; by: AgentRoute }>;
  unchanged: number;
  failures: Array<{ op: string; destination: string; errno: string; error: string }>;
}

export interface DesiredInput {
  destination: string;
  gateways: string[];
  seedGateways?: string[][];
}

/** A running agent. */
export class NetlinkAgent {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly events: AgentEvent[] = [];
  private stderr = '';

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  static async start(host: SimHost, env: Record<string, string> = {}): Promise<NetlinkAgent> {
    const child = host.spawn([process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const agent = new NetlinkAgent(child);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`netlink agent exited (${code}): ${agent.stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as {
          ready?: boolean;
          id?: number;
          result?: unknown;
          error?: string;
          event?: AgentEvent;
        };
        if (message.ready) resolve();
        else if (message.event) agent.events.push(message.event);
        else if (message.id !== undefined) {
          const waiter = agent.waiting.get(message.id);
          agent.waiting.delete(message.id);
          if (message.error !== undefined) waiter?.reject(new Error(message.error));
          else waiter?.resolve(message.result);
        }
      });
    });
    return agent;
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  list(): Promise<AgentRoute[]> {
    return this.call('list');
  }

  reconcile(desired: DesiredInput[]): Promise<ReconcileReport> {
    return this.call('reconcile', { desired });
  }

  stop(): void {
    this.child.stdin?.end();
  }
}
