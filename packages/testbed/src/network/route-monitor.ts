/** An ordered log of route notifications in one namespace, read from `ip -o -d -N monitor route`. */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { RunScope } from '../lifetime/run-scope.js';
import { parseMonitorLine, type RouteEvent } from './routes.js';

/** A running route monitor. Events are kept in the order the kernel sent them. */
export interface RouteMonitor {
  /** A copy of all events so far. */
  events(): RouteEvent[];
  /** Resolves with the first event (past or future) that matches; rejects after `timeoutMs` (default 10 000). */
  waitFor(predicate: (event: RouteEvent) => boolean, timeoutMs?: number): Promise<RouteEvent>;
  /** Stops the monitor; events stay readable. */
  stop(): Promise<void>;
}

/**
 * Waits until process `pid` holds a netlink socket subscribed to multicast groups, i.e. until `ip monitor` would
 * see the next change. Without this, a route added right after starting the monitor could be missed.
 */
async function waitForSubscription(pid: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('ip monitor exited at start');
    try {
      const inodes = new Set(
        readdirSync(`/proc/${pid}/fd`)
          .map((fd) => {
            try {
              return readlinkSync(`/proc/${pid}/fd/${fd}`);
            } catch {
              return '';
            }
          })
          .filter((link) => link.startsWith('socket:['))
          .map((link) => link.slice('socket:['.length, -1)),
      );
      // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
      const subscribed = readFileSync(`/proc/${pid}/net/netlink`, 'utf8')
        .split('\n')
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .some((columns) => columns[1] === '0' && inodes.has(columns[9] ?? '') && !/^0+$/.test(columns[3] ?? '0'));
      if (subscribed) return;
    } catch {
      // The process is still starting (exec chain); try again.
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`ip monitor (pid ${pid}) did not subscribe to route notifications within ${timeoutMs} ms`);
}

/** Starts `ip monitor route` inside `netns` and resolves once it is subscribed. */
export async function startRouteMonitor(scope: RunScope, netns: string): Promise<RouteMonitor> {
  const child = scope.spawn(['ip', '-o', '-d', '-N', 'monitor', 'route'], {
    netns,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: RouteEvent[] = [];
  const waiters = new Set<{ predicate: (event: RouteEvent) => boolean; resolve: (event: RouteEvent) => void }>();
  if (!child.stdout || child.pid === undefined) throw new Error('cannot start ip monitor');
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = parseMonitorLine(line, Date.now());
    if (!event) return;
    log.push(event);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(event)) {
        waiters.delete(waiter);
        waiter.resolve(event);
      }
    }
  });
  await waitForSubscription(child.pid, child, 10_000);
  return {
    events: () => log.map((event) => ({ ...event, route: { ...event.route } })),
    waitFor(predicate, timeoutMs = 10_000) {
      const seen = log.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching route event within ${timeoutMs} ms; seen: ${JSON.stringify(log)}`));
        }, timeoutMs);
        const waiter = {
          predicate,
          resolve: (event: RouteEvent) => {
            clearTimeout(timer);
            resolve(event);
          },
        };
        waiters.add(waiter);
      });
    },
    async stop() {
      const drained = new Promise<void>((resolve) => {
        if (child.stdout?.readableEnded || child.stdout?.destroyed) resolve();
        else child.stdout?.once('close', () => resolve());
      });
      await scope.terminate(child, 'SIGTERM', 2000);
      // Lines already written before the exit are still in the pipe; read them before returning.
      await drained;
    },
  };
}
