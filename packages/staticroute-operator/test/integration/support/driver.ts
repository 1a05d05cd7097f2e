/** Test-side client of netlink-driver.mjs: the adapters running in a child process inside a node's namespace. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SimHost } from '@opkit/testbed';

const DRIVER = fileURLToPath(new URL('./netlink-driver.mjs', import.meta.url));

/** What the driver streams: monitor events (`event`) and adapter events (`adapter`). */
export interface DriverMessage {
  event?: { kind: string; route?: { destination: string; protocol: number; gateways: string[] }; error?: string };
  adapter?: { source: 'table' | 'monitor'; type: string; kind?: string; health?: { healthy: boolean } };
}

/** A running driver. */
export class NetlinkDriver {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** Everything streamed so far, in order. */
  readonly messages: DriverMessage[] = [];
  private stderr = '';
  private exit: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  static async start(host: SimHost): Promise<NetlinkDriver> {
    const child = host.spawn([process.execPath, DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] });
    const driver = new NetlinkDriver(child);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) => {
        driver.exit = `the driver exited (code ${code}, signal ${signal}): ${driver.stderr}`;
        reject(new Error(driver.exit));
        for (const waiter of driver.waiting.values()) waiter.reject(new Error(driver.exit));
        driver.waiting.clear();
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as DriverMessage & {
          ready?: boolean;
          id?: number;
          result?: unknown;
          error?: string;
        };
        if (message.ready) resolve();
        else if (message.id !== undefined) {
          const waiter = driver.waiting.get(message.id);
          driver.waiting.delete(message.id);
          if (message.error !== undefined) waiter?.reject(new Error(message.error));
          else waiter?.resolve(message.result);
        } else driver.messages.push(message);
      });
    });
    return driver;
  }

  /** Whether the process is still running (a netlink poll error in the binding aborts it). */
  get alive(): boolean {
    return this.exit === undefined;
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exit) return Promise.reject(new Error(this.exit));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  /**
   * Waits until a streamed message after index `from` matches (a liveness bound, not a timing assertion: it only
   * keeps a broken adapter from hanging the test). Returns its index.
   */
  async waitFor(predicate: (message: DriverMessage) => boolean, from = 0, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex((message, at) => at >= from && predicate(message));
      if (index >= 0) return index;
      if (this.exit) throw new Error(this.exit);
      if (Date.now() > deadline) {
        throw new Error(`no matching message; got ${JSON.stringify(this.messages.slice(from).slice(-20))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  stop(): void {
    this.child.stdin?.end();
  }
}
