/**
 * A node's route notifications with microsecond timestamps: `ip -ts -o -N monitor route` inside the node's namespace,
 * writing to a file.
 *
 * Why not the test bed's `monitorRoutes()`: its `at` is `Date.now()` (millisecond resolution) when the test process
 * reads the line through a pipe, so it includes the reader's event-loop delays, and a burst of 4,000 notifications
 * can fill the pipe and stall `ip`. Here `ip` stamps each notification itself (`gettimeofday` when it reads the
 * message; the kernel puts no timestamp on netlink notifications) and writes to a file, so nothing downstream can slow
 * it down. The timestamps are wall-clock time, comparable with `Date.now()` in this process.
 *
 * Caveat: a burst faster than `ip` can read and print is stamped at `ip`'s pace (measured by netlink-throughput.ts:
 * "monitor lag"), which can only lengthen, never hide, a window between a delete and the following add.
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { SimHost } from '@opkit/testbed';
import { sleep } from './report.js';

/** One route notification. */
export interface RouteNotification {
  kind: 'add' | 'delete';
  /** Always a CIDR (`198.18.0.1/32`). */
  dst: string;
  /** Next hop(s); empty for routes without a gateway. */
  gateways: string[];
  protocol: number;
  /** Wall-clock time in milliseconds (with microseconds as the fraction), as stamped by `ip`. */
  at: number;
}

const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?\]\s+(.*)$/;

/** Parses one line of `ip -ts -o -N monitor route` (undefined for anything that is not a route). */
export function parseNotification(line: string): RouteNotification | undefined {
  const match = LINE.exec(line);
  if (!match) return undefined;
  const [, seconds = '', fraction = '', rest = ''] = match;
  const at = Date.parse(`${seconds}Z`) + Number(`0.${fraction || '0'}`) * 1000;
  const words = rest.split(/[\s\\]+/).filter(Boolean);
  let kind: RouteNotification['kind'] = 'add';
  if (words[0] === 'Deleted') {
    kind = 'delete';
    words.shift();
  }
  // A route type (`unicast`, `blackhole`, a number with -N) may precede the destination.
  while (words.length > 0 && !/^(default|[0-9a-f]*[.:][0-9a-f.:]*(\/\d+)?)$/i.test(words[0] as string)) words.shift();
  const destination = words.shift();
  if (!destination) return undefined;
  const family = destination.includes(':') ? 6 : 4;
  const dst =
    destination === 'default'
      ? family === 6
        ? '::/0'
        : '0.0.0.0/0'
      : destination.includes('/')
        ? destination
        : `${destination}/${family === 6 ? 128 : 32}`;
  const gateways: string[] = [];
  let protocol = 0;
  for (let index = 0; index < words.length; index++) {
    const word = words[index];
    if (word === 'via') {
      let next = words[index + 1] ?? '';
      if (next === 'inet' || next === 'inet6') next = words[index + 2] ?? '';
      gateways.push(next);
    } else if (word === 'proto') {
      protocol = Number(words[index + 1]);
    }
  }
  return { kind, dst, gateways: gateways.sort(), protocol, at };
}

/** True once process `pid` holds a netlink socket subscribed to some multicast group. */
function subscribed(pid: number): boolean {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (link.startsWith('socket:[')) inodes.add(link.slice('socket:['.length, -1));
      } catch {
        // The descriptor closed meanwhile.
      }
    }
    // Columns of /proc/<pid>/net/netlink: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    return readFileSync(`/proc/${pid}/net/netlink`, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .some((columns) => columns[1] === '0' && !/^0+$/.test(columns[3] ?? '0') && inodes.has(columns[9] ?? ''));
  } catch {
    return false;
  }
}

/**
 * One read buffer for every log: {@link RouteLog.poll} is synchronous and decodes what it read before the next read,
 * so a benchmark polling a hundred logs every few milliseconds allocates nothing.
 */
const READ_BUFFER = Buffer.allocUnsafe(1 << 20);

/** What the log needs of a host: a test-bed node, or a scratch namespace (lib/scratch-netns.ts). */
export type MonitoredHost = Pick<SimHost, 'name' | 'spawn'>;

/** A running `ip monitor route` of one host, read incrementally from its file. */
export class RouteLog {
  /** Every notification read so far, in the kernel's order. */
  readonly events: RouteNotification[] = [];
  private offset = 0;
  private partial = '';
  private readonly fd: number;

  private constructor(
    readonly host: MonitoredHost,
    readonly file: string,
    private readonly child: ChildProcess,
  ) {
    this.fd = openSync(file, 'r');
  }

  /** Starts the monitor and resolves once it is subscribed (no later change can be missed). */
  static async start(host: MonitoredHost, file: string): Promise<RouteLog> {
    const out = openSync(file, 'w');
    const errors = openSync(`${file}.stderr`, 'w');
    // 4 MiB (net.core.rmem_max here) instead of ip's 1 MiB: a 4,000-change burst must not overflow the socket.
    const child = host.spawn(['ip', '-rcvbuf', String(4 << 20), '-ts', '-o', '-N', 'monitor', 'route'], {
      stdio: ['ignore', out, errors],
      env: { TZ: 'UTC' },
    });
    closeSync(out);
    closeSync(errors);
    const deadline = Date.now() + 10_000;
    while (child.pid === undefined || !subscribed(child.pid)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`ip monitor did not start on ${host.name}`);
      await sleep(10);
    }
    return new RouteLog(host, file, child);
  }

  /** Reads what `ip` wrote since the last call; returns the new notifications (also appended to `events`). */
  poll(): RouteNotification[] {
    const fresh: RouteNotification[] = [];
    const buffer = READ_BUFFER;
    for (;;) {
      const read = readSync(this.fd, buffer, 0, buffer.length, this.offset);
      if (read <= 0) break;
      this.offset += read;
      const lines = (this.partial + buffer.toString('utf8', 0, read)).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        const event = parseNotification(line);
        if (event) fresh.push(event);
      }
    }
    for (const event of fresh) this.events.push(event);
    return fresh;
  }

  /** What `ip` reported on stderr (e.g. "No buffer space available": notifications were lost). */
  errors(): string {
    try {
      return readFileSync(`${this.file}.stderr`, 'utf8').trim();
    } catch {
      return '';
    }
  }

  /** Polls every `intervalMs` until `done()` is true; rejects after `timeoutMs`. */
  async waitUntil(done: () => boolean, what: string, timeoutMs = 30_000, intervalMs = 2): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      if (done()) return;
      if (Date.now() > deadline) {
        const errors = this.errors();
        throw new Error(`${this.host.name}: timed out waiting for ${what}${errors ? ` (ip monitor: ${errors})` : ''}`);
      }
      await sleep(intervalMs);
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    this.poll();
    closeSync(this.fd);
  }
}

/** Starts one log per host, in `dir` (`<host>.routes.log`). */
export async function startRouteLogs(hosts: MonitoredHost[], dir: string): Promise<RouteLog[]> {
  return Promise.all(hosts.map((host) => RouteLog.start(host, `${dir}/${host.name}.routes.log`)));
}

/** A route change a benchmark expects on every node: `kind` of `dst` via `gateways` (sorted, comma-joined). */
export interface ExpectedChange {
  kind: RouteNotification['kind'];
  dst: string;
  gateways: string;
}

/**
 * Waits until every log shows every expected change of routes with `protocol`, after its mark (the log's event count
 * when the change was made). Resolves with each node's time of its last expected change (the kernel's stamp, not the
 * poll's), in log order. Rejects after `timeoutMs` naming the nodes still missing changes.
 */
export async function waitForChanges(
  logs: readonly RouteLog[],
  marks: readonly number[],
  expected: readonly ExpectedChange[],
  protocol: number,
  timeoutMs: number,
  intervalMs = 20,
): Promise<number[]> {
  const keyOf = (kind: string, dst: string, gateways: string): string => `${kind} ${dst} ${gateways}`;
  const wanted = expected.map((change) => keyOf(change.kind, change.dst, change.gateways));
  const pending = logs.map(() => new Set(wanted));
  const cursor = [...marks];
  const doneAt = logs.map(() => 0);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    logs.forEach((log, index) => {
      const left = pending[index] as Set<string>;
      if (left.size === 0) return;
      log.poll();
      for (let at = cursor[index] as number; at < log.events.length; at++) {
        const event = log.events[at] as RouteNotification;
        if (event.protocol !== protocol) continue;
        if (left.delete(keyOf(event.kind, event.dst, event.gateways.join(',')))) {
          doneAt[index] = Math.max(doneAt[index] as number, event.at);
        }
      }
      cursor[index] = log.events.length;
    });
    if (pending.every((left) => left.size === 0)) return doneAt;
    if (Date.now() > deadline) {
      const lagging = logs
        .map((log, index) => `${log.host.name} (${(pending[index] as Set<string>).size} missing)`)
        .filter((_, index) => (pending[index] as Set<string>).size > 0);
      throw new Error(`timed out after ${timeoutMs} ms waiting for route changes on ${lagging.join(', ')}`);
    }
    await sleep(intervalMs);
  }
}
