/**
 * The node's routing table as the operator sees it: list routes and addresses, and apply a route plan.
 *
 * Route identity: our routes carry a dedicated `rtm_protocol` (default 201, see logic/config.ts), live in the main
 * table and use the kernel's default metric (0 for IPv4, 1024 for IPv6). Deletes name the protocol, gateway(s) and
 * metric, so the kernel never matches a route we do not own.
 *
 * Idempotency: ESRCH on a delete means the route is already gone (converged). EEXIST on an add means a route for
 * the destination appeared since the table was read; it is reported, and the caller's next read shows whether it
 * is the one we meant (the reconcile loop then finds nothing to do) or a foreign one (reported as blocked).
 *
 * Health: the socket heals itself (rtnl-channel.ts); `health` and `subscribe` say whether this node can program
 * routes right now, and report errors, reopens, dump retries and the outcomes of every `apply` (for metrics.ts).
 */
import { parseAddress, type Prefix } from '../logic/ip.js';
import { defaultMetric, type KernelRoute, type RouteOperation } from '../logic/plan.js';
import type { NodeAddress } from '../logic/safety.js';
import {
  decodeAddress,
  decodeRoute,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_TABLE_MAIN,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  type DecodedRoute,
  type RouteRequest,
} from './netlink-codec.js';
import type { AdapterHealth, AdapterListener, ObservableAdapter, OperationCounts } from './health.js';
import { RtnlChannel, type ChannelStats, type RtnlChannelOptions } from './rtnl-channel.js';

/** Options of {@link RouteTable.open}. */
export interface RouteTableOptions extends RtnlChannelOptions {
  /** Our rtm_protocol. */
  protocol: number;
  /** Routing table. Defaults to main (254). */
  table?: number;
}

/** What happened to one operation. */
export type OperationOutcome =
  | { operation: RouteOperation; ok: true; converged?: 'already-absent' }
  | { operation: RouteOperation; ok: false; errno: string; error: string };

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  13: 'EACCES',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  101: 'ENETUNREACH',
  113: 'EHOSTUNREACH',
  105: 'ENOBUFS',
};

function errnoName(code: number): string {
  if (code === -1) return 'UNKNOWN';
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

function explain(operation: RouteOperation, code: number): string {
  const name = errnoName(code);
  const via = operation.route.gateways.join(', ');
  switch (name) {
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return `${name}: gateway ${via} is not reachable from this node (no connected route to it)`;
    case 'EEXIST':
      return `${name}: another route for this destination appeared in the kernel; re-checking`;
    case 'EPERM':
    case 'EACCES':
      return `${name}: the operator lacks CAP_NET_ADMIN`;
    case 'UNKNOWN':
      return 'no reply from the kernel (netlink socket overflow or failure); re-checking';
    default:
      return `${name} from the kernel while trying to ${operation.op} the route via ${via}`;
  }
}

/** Parsed next hops by text: a plan names the same few gateways for thousands of routes. */
const gatewayCache = new Map<string, bigint>();

function toGatewayValues(gateways: readonly string[]): bigint[] {
  return gateways.map((gateway) => {
    let value = gatewayCache.get(gateway);
    if (value === undefined) {
      value = (parseAddress(gateway) as { address: bigint }).address;
      if (gatewayCache.size > 1024) gatewayCache.clear();
      gatewayCache.set(gateway, value);
    }
    return value;
  });
}

function prefixOf(text: string): Prefix {
  const [address, length] = text.split('/') as [string, string];
  const parsed = parseAddress(address) as { family: 4 | 6; address: bigint };
  return { family: parsed.family, address: parsed.address, length: Number(length) };
}

/** The node's main routing table, through one netlink socket. */
export class RouteTable implements ObservableAdapter {
  private constructor(
    private readonly channel: RtnlChannel,
    private readonly protocol: number,
    private readonly table: number,
  ) {}

  /** Opens the table of the calling process's network namespace. */
  static open(options: RouteTableOptions): RouteTable {
    return new RouteTable(RtnlChannel.open(options), options.protocol, options.table ?? RT_TABLE_MAIN);
  }

  /** Whether the socket is open, so that routes can be programmed; why it failed last. */
  get health(): AdapterHealth {
    return this.channel.health;
  }

  /** Counters of the socket's life: reopens, failures, overflows, timeouts, dump retries. */
  get stats(): Readonly<ChannelStats> {
    return this.channel.stats;
  }

  /** Health changes, errors, reopens, dump retries and operation outcomes, from now on. */
  subscribe(listener: AdapterListener): () => void {
    return this.channel.subscribe(listener);
  }

  /** Closes the socket under the table as a failure would: for tests of the reopening. Not for production use. */
  failSocketForTesting(): void {
    this.channel.failSocketForTesting();
  }

  /** All routes of the table (every protocol, IPv4 and IPv6). */
  async listRoutes(): Promise<DecodedRoute[]> {
    return this.channel.dump(RTM_GETROUTE, (message) => {
      if (message.type !== RTM_NEWROUTE) return undefined;
      const route = decodeRoute(message);
      return route && route.table === this.table ? route : undefined;
    });
  }

  /** The addresses configured on the node's interfaces (with their prefix length: the connected subnets). */
  async listAddresses(): Promise<NodeAddress[]> {
    return this.channel.dump(RTM_GETADDR, (message) => {
      if (message.type !== RTM_NEWADDR) return undefined;
      const decoded = decodeAddress(message);
      if (!decoded) return undefined;
      const address: NodeAddress = {
        family: decoded.family,
        address: decoded.address,
        prefixLength: decoded.prefixLength,
      };
      if (decoded.label) address.interfaceName = decoded.label;
      return address;
    });
  }

  private requestFor(operation: RouteOperation): RouteRequest {
    if (operation.op === 'delete') {
      const route: KernelRoute = operation.route;
      const prefix = prefixOf(route.destination);
      return {
        type: RTM_DELROUTE,
        flags: 0,
        family: prefix.family,
        destination: prefix.address,
        prefixLength: prefix.length,
        gateways: toGatewayValues(route.gateways),
        protocol: route.protocol,
        table: this.table,
        priority: route.metric,
      };
    }
    const { destination } = operation.route;
    return {
      type: RTM_NEWROUTE,
      flags: operation.op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : NLM_F_CREATE | NLM_F_REPLACE,
      family: destination.family,
      destination: destination.address,
      prefixLength: destination.length,
      gateways: toGatewayValues(operation.route.gateways),
      protocol: this.protocol,
      table: this.table,
      priority: destination.family === 6 ? defaultMetric(6) : undefined,
    };
  }

  /**
   * Applies operations in the given order (the plan puts every delete first) and reports each outcome.
   * Operations are pipelined: many requests per datagram, several datagrams in flight.
   */
  async apply(operations: readonly RouteOperation[]): Promise<OperationOutcome[]> {
    if (operations.length === 0) return [];
    const codes = await this.channel.requestAll(operations.length, (index) =>
      this.requestFor(operations[index] as RouteOperation),
    );
    const counts: OperationCounts = { add: {}, replace: {}, delete: {} };
    const outcomes = operations.map((operation, index): OperationOutcome => {
      const code = codes[index] as number;
      const absent = operation.op === 'delete' && code === 3;
      const result = code === 0 ? 'ok' : absent ? 'already-absent' : errnoName(code);
      const byResult = counts[operation.op];
      byResult[result] = (byResult[result] ?? 0) + 1;
      if (code === 0) return { operation, ok: true };
      if (absent) return { operation, ok: true, converged: 'already-absent' };
      return { operation, ok: false, errno: result, error: explain(operation, code) };
    });
    this.channel.emit({ type: 'operations', counts });
    return outcomes;
  }

  close(): void {
    this.channel.close();
  }
}
