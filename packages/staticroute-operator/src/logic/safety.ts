/**
 * Safety rules: destinations the operator refuses to route through a gateway because doing so could cut the node
 * off (from its own subnet, the API server, the metadata service) or is meaningless (loopback, multicast).
 *
 * A refusal is a status error for the StaticRoute on that node; the kernel is not touched for that destination.
 * Safety depends only on the destination and the node, never on which object asks, so conflict resolution and
 * safety commute.
 */
import {
  formatPrefix,
  hostPrefix,
  mustParsePrefix,
  networkOf,
  prefixesOverlap,
  type Family,
  type Prefix,
} from './ip.js';

/** One address configured on a node interface. */
export interface NodeAddress {
  family: Family;
  address: bigint;
  /** Prefix length of the address (its connected subnet). */
  prefixLength: number;
  /** Interface name, for messages. */
  interfaceName?: string;
}

/** What the safety check knows about the node and the operator's configuration. */
export interface SafetyPolicy {
  /** Addresses on the node's interfaces; their connected subnets are protected too. */
  nodeAddresses: readonly NodeAddress[];
  /** API server endpoints the operator talks to (host addresses). */
  apiServerAddresses: readonly Prefix[];
  /** Extra CIDRs from configuration (PROTECTED_CIDRS). */
  protectedCidrs: readonly Prefix[];
  /** Whether `0.0.0.0/0` / `::/0` may be installed (ALLOW_DEFAULT_ROUTE). */
  allowDefaultRoute: boolean;
}

interface BuiltInRange {
  prefix: Prefix;
  reason: string;
}

/** Ranges that are never routed through a gateway. */
export const BUILT_IN_PROTECTED_RANGES: readonly BuiltInRange[] = [
  { prefix: mustParsePrefix('169.254.169.254/32'), reason: 'the cloud metadata service address' },
  { prefix: mustParsePrefix('169.254.0.0/16'), reason: 'IPv4 link-local' },
  { prefix: mustParsePrefix('fe80::/10'), reason: 'IPv6 link-local' },
  { prefix: mustParsePrefix('127.0.0.0/8'), reason: 'loopback' },
  { prefix: mustParsePrefix('::1/128'), reason: 'loopback' },
  { prefix: mustParsePrefix('224.0.0.0/4'), reason: 'multicast' },
  { prefix: mustParsePrefix('ff00::/8'), reason: 'multicast' },
  { prefix: mustParsePrefix('0.0.0.0/8'), reason: '"this network" (0.0.0.0/8)' },
  { prefix: mustParsePrefix('::/128'), reason: 'the unspecified address' },
  { prefix: mustParsePrefix('255.255.255.255/32'), reason: 'the limited broadcast address' },
];

/**
 * Returns why `destination` must not be installed on this node, or `undefined` when it is safe.
 *
 * "Overlap" means one prefix contains the other: a destination inside a protected range is refused, and so is a
 * destination that would swallow a protected range or address (e.g. `10.0.0.0/8` on a node at `10.116.0.2`).
 * The default route is the exception: it overlaps everything by definition, is refused unless explicitly allowed,
 * and once allowed only loses to more specific routes by longest-prefix match.
 */
export function destinationRefusal(destination: Prefix, policy: SafetyPolicy): string | undefined {
  const text = formatPrefix(destination);
  if (destination.length === 0) {
    return policy.allowDefaultRoute
      ? undefined
      : `${text} is the default route; it is refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true`;
  }
  for (const range of BUILT_IN_PROTECTED_RANGES) {
    if (prefixesOverlap(destination, range.prefix)) {
      return `${text} overlaps ${formatPrefix(range.prefix)} (${range.reason})`;
    }
  }
  for (const address of policy.nodeAddresses) {
    if (address.family !== destination.family) continue;
    const on = address.interfaceName ? ` on ${address.interfaceName}` : '';
    const own = hostPrefix(address.family, address.address);
    if (prefixesOverlap(destination, own)) {
      return `${text} overlaps the node's own address ${formatPrefix(own)}${on}`;
    }
    const subnet = networkOf(address.family, address.address, address.prefixLength);
    if (prefixesOverlap(destination, subnet)) {
      return `${text} overlaps the node's connected subnet ${formatPrefix(subnet)}${on}`;
    }
  }
  for (const api of policy.apiServerAddresses) {
    if (prefixesOverlap(destination, api)) return `${text} overlaps the API server endpoint ${formatPrefix(api)}`;
  }
  for (const range of policy.protectedCidrs) {
    if (prefixesOverlap(destination, range)) {
      return `${text} overlaps the protected CIDR ${formatPrefix(range)} (PROTECTED_CIDRS)`;
    }
  }
  return undefined;
}
