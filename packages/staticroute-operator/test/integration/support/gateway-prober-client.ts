/**
 * Test-side client of gateway-prober-driver.mjs: the operator's GatewayProber running in a child process inside a
 * node's network namespace (its netlink socket must be opened there), and the helpers the prober's tests need around
 * it: compiling the prober, stopping and restarting a gateway host, nftables counters.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SimHost } from '@opkit/testbed';
import type { GatewayHealthEntry } from '../../../src/adapters/gateway-prober.js';
import type { GatewayHealthThresholds, GatewayState } from '../../../src/logic/gateway-health.js';
import { PACKAGE_DIR, REPO_DIR } from '../../support/build.js';

const DRIVER = fileURLToPath(new URL('./gateway-prober-driver.mjs', import.meta.url));

/** Compiles the prober (and the codec and logic it imports) into the package's dist/, for the driver. */
export async function buildProber(): Promise<void> {
  const flags = ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023'];
  flags.push('--types', 'node', '--strict', '--skipLibCheck', '--verbatimModuleSyntax', '--declaration', 'false');
  await promisify(execFile)(
    path.join(REPO_DIR, 'node_modules/.bin/tsc'),
    ['--outDir', 'dist', '--rootDir', 'src', ...flags, 'src/adapters/gateway-prober.ts'],
    { cwd: PACKAGE_DIR },
  ).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`compiling the gateway prober failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
}

/** A state change the prober reported, with when (ms since the epoch, the driver's clock: same machine). */
export interface ProberChange {
  gateway: string;
  state: GatewayState;
  reason: string;
  at: number;
}

/** A GatewayProber running in a node's namespace. */
export class ProberDriver {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** Every state change so far, in order. */
  readonly changes: ProberChange[] = [];
  private stderr = '';
  private exit: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  /**
   * Starts the driver as root, or (`user`) as uid 10001 with only CAP_NET_ADMIN (`'net_admin'`, what the agent's
   * DaemonSet grants) or with no capability at all (`'none'`).
   */
  static async start(
    host: SimHost,
    opts: { thresholds?: Partial<GatewayHealthThresholds>; user?: 'net_admin' | 'none' } = {},
  ): Promise<ProberDriver> {
    const caps = opts.user === 'net_admin' ? '-all,+net_admin' : '-all';
    const asUser = ['setpriv', '--reuid', '10001', '--regid', '10001', '--clear-groups'];
    asUser.push(`--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`);
    const child = host.spawn([...(opts.user ? asUser : []), process.execPath, DRIVER], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { GATEWAY_THRESHOLDS: JSON.stringify(opts.thresholds ?? {}) },
    });
    const driver = new ProberDriver(child);
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) => {
        driver.exit = `the prober driver exited (code ${code}, signal ${signal}): ${driver.stderr}`;
        reject(new Error(driver.exit));
        for (const waiter of driver.waiting.values()) waiter.reject(new Error(driver.exit));
        driver.waiting.clear();
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line) as { ready?: boolean; id?: number; result?: unknown; error?: string } & {
          change?: ProberChange;
        };
        if (message.ready) resolve();
        else if (message.change) driver.changes.push(message.change);
        else if (message.id !== undefined) {
          const waiter = driver.waiting.get(message.id);
          driver.waiting.delete(message.id);
          if (message.error !== undefined) waiter?.reject(new Error(message.error));
          else waiter?.resolve(message.result);
        }
      });
    });
    return driver;
  }

  private call<T>(method: string, args?: unknown): Promise<T> {
    if (this.exit) return Promise.reject(new Error(this.exit));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, method, args })}\n`);
    });
  }

  setTargets(gateways: string[]): Promise<void> {
    return this.call('setTargets', gateways);
  }

  async snapshot(): Promise<Record<string, GatewayHealthEntry>> {
    return this.call('snapshot');
  }

  stats(): Promise<{ rounds: number; failedRounds: number; nudges: number }> {
    return this.call('stats');
  }

  /**
   * Waits for the gateway's change to `state` at or after index `from` of {@link changes} (a liveness bound, not a
   * timing assertion: it only keeps a broken prober from hanging the test).
   */
  async waitForChange(gateway: string, state: GatewayState, from = 0, timeoutMs = 30_000): Promise<ProberChange> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.changes.find((c, at) => at >= from && c.gateway === gateway && c.state === state);
      if (found) return found;
      if (this.exit) throw new Error(this.exit);
      if (Date.now() > deadline) {
        throw new Error(`${gateway} never became ${state}; changes: ${JSON.stringify(this.changes.slice(from))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The prober's next `requests` netlink requests fail as on a failed socket. */
  failRequests(requests: number): Promise<void> {
    return this.call('failRequests', requests);
  }

  async close(): Promise<void> {
    if (this.exit) return;
    await this.call('close').catch(() => undefined);
  }
}

/**
 * Counts, on `host`'s eth0 ingress, the ARP requests for each given IPv4 address, those sent by `from` for any other
 * address, and IP packets for each given address: `counters()` reads them by name (`arp <address>`,
 * `arp other`, `ip <address>`).
 */
export async function addArpCounters(
  host: SimHost,
  from: string,
  targets: string[],
): Promise<() => Promise<Map<string, number>>> {
  const name = (kind: string, index: number) => `${kind}_${index}`;
  const rules = [
    'table netdev gateway_prober_test {',
    ...targets.flatMap((_, index) => [`  counter ${name('arp', index)} { }`, `  counter ${name('ip', index)} { }`]),
    '  counter arp_other { }',
    '  chain ingress {',
    '    type filter hook ingress device "eth0" priority -1; policy accept;',
    ...targets.flatMap((target, index) => [
      `    arp operation request arp daddr ip ${target} counter name "${name('arp', index)}"`,
      `    ip daddr ${target} counter name "${name('ip', index)}"`,
    ]),
    `    arp operation request arp saddr ip ${from} arp daddr ip != { ${targets.join(', ')} } counter name "arp_other"`,
    '  }',
    '}',
  ].join('\n');
  const result = await host.exec(['nft', '-f', '-'], { input: rules, allowFailure: true });
  if (result.code !== 0) throw new Error(`nft in ${host.netns} failed: ${result.stderr.trim()}`);
  return async () => {
    const { stdout } = await host.exec(['nft', '-j', 'list', 'table', 'netdev', 'gateway_prober_test']);
    const packets = new Map<string, number>();
    for (const item of (JSON.parse(stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> })
      .nftables) {
      if (item.counter) packets.set(item.counter.name, item.counter.packets);
    }
    const counts = new Map<string, number>([['arp other', packets.get('arp_other') ?? 0]]);
    targets.forEach((target, index) => {
      counts.set(`arp ${target}`, packets.get(name('arp', index)) ?? 0);
      counts.set(`ip ${target}`, packets.get(name('ip', index)) ?? 0);
    });
    return counts;
  };
}

/** The node's neighbour entries on eth0 as `ip -j neigh show` prints them (flags as keys), keyed by address. */
export async function neighbours(host: SimHost): Promise<Map<string, Record<string, unknown>>> {
  const { stdout } = await host.exec(['ip', '-j', 'neigh', 'show', 'dev', 'eth0']);
  const entries = JSON.parse(stdout) as Array<{ dst: string; dev?: string } & Record<string, unknown>>;
  return new Map(entries.map(({ dst, dev: _dev, ...entry }) => [dst, entry]));
}
