/** A simulated machine: one network namespace with `eth0` on the VPC bridge. Nodes and gateways are both hosts. */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { runCommand, type CommandResult } from '../exec.js';
import type { RunScope } from '../lifetime/run-scope.js';
import { startRouteMonitor, type RouteMonitor } from './route-monitor.js';
import { parseIpRouteJson, type Route } from './routes.js';

/** Options of {@link SimHost.exec}. */
export interface HostExecOptions {
  /** Variables added to the test process's environment. */
  env?: Record<string, string>;
  input?: string;
  /** Resolve with a non-zero exit code instead of throwing. Defaults to false. */
  allowFailure?: boolean;
  /** Kill the command after this many milliseconds. Defaults to 60 000. */
  timeoutMs?: number;
}

/** Options of {@link SimHost.spawn}. */
export interface HostSpawnOptions {
  env?: Record<string, string>;
  /** Defaults to `['ignore', 'pipe', 'pipe']`. */
  stdio?: StdioOptions;
  cwd?: string;
}

/** Options of {@link SimHost.routes}. */
export interface RouteQuery {
  /** Defaults to `'all'`. */
  family?: 4 | 6 | 'all';
  /** A table number or `'all'` (includes the kernel's `local` table 255). Defaults to `'all'`. */
  table?: number | 'all';
}

/** What nodes and gateways have in common. */
export interface SimHost {
  readonly name: string;
  /** Name of the network namespace (`ip netns exec <netns> ...`). */
  readonly netns: string;
  /** IPv4 address on the VPC (e.g. 10.116.0.10). */
  readonly address: string;
  /** IPv6 address on the VPC (e.g. fd00:116::a). */
  readonly addressV6: string;
  /** Runs a command inside the namespace and collects its output. */
  exec(cmd: string[], opts?: HostExecOptions): Promise<CommandResult>;
  /** Starts a long-running process inside the namespace; it is killed on removal/destroy or if the test dies. */
  spawn(cmd: string[], opts?: HostSpawnOptions): ChildProcess;
  /** Routes of the namespace, structured, with numeric protocol and table. */
  routes(opts?: RouteQuery): Promise<Route[]>;
  /** Starts an ordered log of route add/delete notifications in the namespace. */
  monitorRoutes(): Promise<RouteMonitor>;
  /** One ICMP echo (`ping`, needs iputils-ping); true when answered within `timeoutSeconds` (default 2). */
  ping(address: string, opts?: { count?: number; timeoutSeconds?: number }): Promise<boolean>;
  /** Packet counters of `eth0` (these include broadcast and multicast chatter of the VPC). */
  interfaceCounters(): Promise<{ rxPackets: number; txPackets: number }>;
  /** ICMP echo requests this host has received so far (exact, per family): which gateway did traffic reach? */
  echoRequestsReceived(): Promise<{ v4: number; v6: number }>;
  /**
   * Takes the host off the VPC (`eth0` down: it neither answers nor sends, as a stopped machine) or puts it back.
   * Others' neighbour entries for it are left to their kernels, as in a real outage.
   */
  setOnline(online: boolean): Promise<void>;
  /** ARP requests and IPv6 neighbour solicitations this host has received on `eth0` so far (probe traffic). */
  neighbourProbesReceived(): Promise<{ arp: number; ndp: number }>;
}

/** Implementation shared by nodes and gateways. */
export class NamespaceHost implements SimHost {
  private readonly children = new Set<ChildProcess>();

  constructor(
    protected readonly scope: RunScope,
    readonly name: string,
    readonly netns: string,
    readonly address: string,
    readonly addressV6: string,
  ) {}

  exec(cmd: string[], opts: HostExecOptions = {}): Promise<CommandResult> {
    return runCommand(['ip', 'netns', 'exec', this.netns, ...cmd], opts);
  }

  spawn(cmd: string[], opts: HostSpawnOptions = {}): ChildProcess {
    const child = this.scope.spawn(cmd, { netns: this.netns, ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async routes(opts: RouteQuery = {}): Promise<Route[]> {
    const families: (4 | 6)[] = opts.family === 4 ? [4] : opts.family === 6 ? [6] : [4, 6];
    const table = String(opts.table ?? 'all');
    const lists = await Promise.all(
      families.map(async (family) => {
        const result = await runCommand(
          ['ip', '-n', this.netns, '-j', '-d', '-N', `-${family}`, 'route', 'show', 'table', table],
          { allowFailure: true },
        );
        // IPv6 reports a table without routes as missing; for the caller that is an empty table.
        if (result.code !== 0 && /table does not exist/i.test(result.stderr)) return [];
        if (result.code !== 0) throw new Error(`ip route show in ${this.netns} failed: ${result.stderr.trim()}`);
        return parseIpRouteJson(result.stdout, family, table === 'all' ? undefined : Number(table));
      }),
    );
    return lists.flat();
  }

  monitorRoutes(): Promise<RouteMonitor> {
    return startRouteMonitor(this.scope, this.netns);
  }

  async ping(address: string, opts: { count?: number; timeoutSeconds?: number } = {}): Promise<boolean> {
    const count = String(opts.count ?? 1);
    const wait = String(opts.timeoutSeconds ?? 2);
    const result = await this.exec(['ping', '-n', '-q', '-c', count, '-W', wait, address], { allowFailure: true });
    if (/not found|No such file/i.test(result.stderr)) {
      throw new Error('ping is not installed: the test bed needs the iputils-ping package');
    }
    return result.code === 0;
  }

  async interfaceCounters(): Promise<{ rxPackets: number; txPackets: number }> {
    const { stdout } = await runCommand(['ip', '-n', this.netns, '-j', '-s', 'link', 'show', 'eth0']);
    const [link] = JSON.parse(stdout) as { stats64?: { rx: { packets: number }; tx: { packets: number } } }[];
    return { rxPackets: link?.stats64?.rx.packets ?? 0, txPackets: link?.stats64?.tx.packets ?? 0 };
  }

  async echoRequestsReceived(): Promise<{ v4: number; v6: number }> {
    // /proc/net is the reading process's namespace's view, so `cat` inside the namespace reads the host's counters.
    const { stdout } = await this.exec(['cat', '/proc/net/snmp', '/proc/net/snmp6']);
    const icmp = stdout.split('\n').filter((line) => line.startsWith('Icmp: '));
    const names = icmp[0]?.split(/\s+/) ?? [];
    const values = icmp[1]?.split(/\s+/) ?? [];
    const v4 = Number(values[names.indexOf('InEchos')] ?? 0);
    const v6 = Number(/^Icmp6InEchos\s+(\d+)/m.exec(stdout)?.[1] ?? 0);
    return { v4, v6 };
  }

  async setOnline(online: boolean): Promise<void> {
    // Linux drops a link's IPv6 addresses when it goes down (keep_addr_on_down=0) and does not bring them back: a
    // machine that is stopped and started keeps its configured addresses, so this host keeps them too.
    if (!online) await this.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.keep_addr_on_down=1']);
    await this.exec(['ip', 'link', 'set', 'eth0', online ? 'up' : 'down']);
  }

  async neighbourProbesReceived(): Promise<{ arp: number; ndp: number }> {
    // The kernel counts received ARP only in aggregate, so an nftables counter per kind is added on first use.
    await this.ensureProbeCounters();
    const { stdout } = await this.exec(['nft', '-j', 'list', 'table', 'netdev', 'testbed_probes']);
    const counters = new Map<string, number>();
    for (const item of (JSON.parse(stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> })
      .nftables) {
      if (item.counter) counters.set(item.counter.name, item.counter.packets);
    }
    return { arp: counters.get('arp_requests') ?? 0, ndp: counters.get('nd_solicits') ?? 0 };
  }

  private probeCountersReady = false;

  private async ensureProbeCounters(): Promise<void> {
    if (this.probeCountersReady) return;
    const rules = [
      'table netdev testbed_probes {',
      '  counter arp_requests { }',
      '  counter nd_solicits { }',
      '  chain ingress {',
      '    type filter hook ingress device "eth0" priority 0; policy accept;',
      '    arp operation request counter name "arp_requests"',
      '    icmpv6 type nd-neighbor-solicit counter name "nd_solicits"',
      '  }',
      '}',
    ].join('\n');
    const result = await this.exec(['nft', '-f', '-'], { input: rules, allowFailure: true });
    if (/not found|No such file/i.test(result.stderr) && result.code !== 0) {
      throw new Error('nft is not installed: counting neighbour probes needs the nftables package');
    }
    if (result.code !== 0) throw new Error(`nft in ${this.netns} failed: ${result.stderr.trim()}`);
    this.probeCountersReady = true;
  }

  /** Kills the processes this host started (the namespace's deletion catches any others). */
  async killProcesses(): Promise<void> {
    await Promise.all([...this.children].map((child) => this.scope.terminate(child, 'SIGKILL')));
  }
}
