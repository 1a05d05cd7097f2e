/**
 * Safety rules: destinations the operator refuses to route through a gateway because doing so could cut the node
 * off (from its own subnet, its gateway, the API server, the metadata service) or is meaningless (loopback,
 * multicast).
 *
 * The test is what a route would *capture*, not what it overlaps. The kernel sends a packet by the most specific route
 * that contains its destination, so a destination D takes the traffic for an address X only if D contains X and no
 * more specific route the node relies on contains X. The routes the operator can see the node rely on are those of
 * its connected subnets (from its interface addresses): `10.0.0.0/8` via a VPN gateway on a node in `10.116.0.0/20`
 * captures nothing of that subnet (the `/20` wins for it: the node's own address, the gateway and the other nodes
 * stay direct), while `10.116.0.0/24` captures the part of it that it covers. The predecessor operator installed the
 * former; refusing it left users with no way to route a private range through a VPN.
 *
 * A refusal is a status error for the StaticRoute on that node; the kernel is not touched for that destination.
 * Safety depends only on the destination, the route's own next hops, the object's allowances and the node, never on
 * other objects, so conflict resolution and safety commute.
 */
import {
  familyBits,
  formatPrefix,
  formatPrefixShort,
  hostPrefix,
  mustParsePrefix,
  networkOf,
  parseAddress,
  parseCidrList,
  prefixContains,
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
  /** Addresses on the node's interfaces. Their connected subnets are protected, and keep what they contain direct. */
  nodeAddresses: readonly NodeAddress[];
  /**
   * Destinations of the node's other direct routes (no gateway, scope link; not the operator's), e.g.
   * `10.128.0.1/32 dev ens4` where a node has a /32 address and reaches its gateway by such a route. Like connected
   * subnets they keep what they contain direct, so a destination around them does not capture it; they are not
   * protected themselves. Absent: only the connected subnets count.
   */
  directRoutes?: readonly Prefix[];
  /**
   * API server endpoints to keep off gateways (host prefixes; ranges work too): the addresses the API server is
   * really reached at (the `kubernetes` Service's endpoints, a managed control plane's IPs) besides its ClusterIP,
   * since kube-proxy turns the ClusterIP into one of those before the routing decision.
   */
  apiServerAddresses: readonly Prefix[];
  /** Extra CIDRs from configuration (PROTECTED_CIDRS); no allowance lifts them. */
  protectedCidrs: readonly Prefix[];
  /** Whether `0.0.0.0/0` / `::/0`, and destination sets that add up to them, may be installed (ALLOW_DEFAULT_ROUTE). */
  allowDefaultRoute: boolean;
  /**
   * ALLOW_COVERING_CIDRS: protected addresses and ranges inside these may be captured by every StaticRoute on this
   * node. Lifts the built-in ranges, API server endpoints and connected subnets; never the node's own addresses, a
   * route's own gateway or PROTECTED_CIDRS. Absent: none.
   */
  allowCoveringCidrs?: readonly Prefix[];
}

/** What the check needs to know about the object a destination belongs to. */
export interface RouteSafetyContext {
  /** The route's next hops (address text): a destination that would capture one of them is refused. */
  gateways?: readonly string[];
  /** The object's own allowances (annotation {@link ALLOW_COVERING_ANNOTATION}), on top of the policy's. */
  allowCovering?: readonly Prefix[];
}

/**
 * Annotation on a StaticRoute listing CIDRs (comma or space separated) whose protected addresses and ranges this
 * object's destinations may capture, with the limits of {@link SafetyPolicy.allowCoveringCidrs}.
 * E.g. `staticroute.opkit.dev/allow-covering: "10.245.0.0/16"` lets `10.0.0.0/8` capture the API server's ClusterIP.
 */
export const ALLOW_COVERING_ANNOTATION = 'staticroute.opkit.dev/allow-covering';

interface BuiltInRange {
  prefix: Prefix;
  reason: string;
}

/** Ranges that are never routed through a gateway unless allowed. The most specific first: it names the capture. */
export const BUILT_IN_PROTECTED_RANGES: readonly BuiltInRange[] = [
  { prefix: mustParsePrefix('169.254.169.254/32'), reason: 'the cloud metadata service address' },
  { prefix: mustParsePrefix('169.254.0.0/16'), reason: 'IPv4 link-local' },
  { prefix: mustParsePrefix('fe80::/10'), reason: 'IPv6 link-local' },
  { prefix: mustParsePrefix('127.0.0.0/8'), reason: 'loopback' },
  { prefix: mustParsePrefix('::1/128'), reason: 'loopback' },
  { prefix: mustParsePrefix('224.0.0.0/4'), reason: 'multicast' },
  { prefix: mustParsePrefix('ff00::/8'), reason: 'multicast' },
  { prefix: mustParsePrefix('0.0.0.0/8'), reason: '"this network"' },
  { prefix: mustParsePrefix('::/128'), reason: 'the unspecified address' },
  { prefix: mustParsePrefix('255.255.255.255/32'), reason: 'the limited broadcast address' },
];

/**
 * How a protected item may be lifted: `never` (the node's own addresses, the route's own gateway: capturing them cuts
 * the node off whatever the user intends), `configured` (PROTECTED_CIDRS: the administrator's explicit list; remove
 * the entry instead) or `allowable` (ALLOW_COVERING_CIDRS and the annotation lift it).
 */
type Lift = 'never' | 'configured' | 'allowable';

interface Protected {
  prefix: Prefix;
  /** Names it in a refusal, e.g. `API server endpoint 203.0.113.10`. */
  what: string;
  lift: Lift;
  /** Why capturing it is never allowed (for `never`). */
  why?: string;
}

/** The part of `item` a route for `destination` would take from the node, or undefined when it takes none. */
function captured(destination: Prefix, item: Prefix, connected: readonly Prefix[]): Prefix | undefined {
  let part: Prefix;
  if (prefixContains(destination, item)) part = item;
  else if (prefixContains(item, destination)) part = destination;
  else return undefined;
  // A connected route strictly more specific than the destination that holds the whole part keeps it direct (an
  // equally specific one does not: the two routes would compete on metric).
  return connected.some((subnet) => subnet.length > destination.length && prefixContains(subnet, part))
    ? undefined
    : part;
}

function refusalText(destination: Prefix, item: Protected, part: Prefix, allowances: readonly Prefix[]): string {
  const same = destination.length === item.prefix.length && prefixContains(destination, item.prefix);
  const relation = same ? 'is' : part === item.prefix ? 'would capture' : 'lies inside';
  const sentence = `${formatPrefix(destination)} ${relation} ${item.what}`;
  if (item.lift === 'never') return `${sentence}; ${item.why ?? 'never allowed'}`;
  if (item.lift === 'configured') return sentence;
  // An allowance that holds only part of what is captured would otherwise look ignored.
  const partial = allowances.find((allowance) => prefixContains(part, allowance));
  const note = partial ? ` (the allowance ${formatPrefixShort(partial)} holds only part of it)` : '';
  return (
    `${sentence}${note}; if that is intended, allow ${formatPrefixShort(part)} with the annotation ` +
    `${ALLOW_COVERING_ANNOTATION} or ALLOW_COVERING_CIDRS`
  );
}

/**
 * The destinations of `destinations` that, together, add up to a default route: the widest of them (those no other
 * destination contains) when their union is a whole address family; otherwise none. A `/0` itself is left to the
 * default route's own rule. Such a set takes every packet without a more specific route, like a default route, and
 * beats the node's own default route besides.
 */
export function defaultRouteCover(destinations: readonly Prefix[]): Prefix[] {
  const cover: Prefix[] = [];
  for (const family of [4, 6] as const) {
    const sorted = destinations
      .filter((prefix) => prefix.family === family && prefix.length > 0)
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.length - b.length));
    // Sorted by address, then the shorter first: a destination inside another comes after it, with only
    // destinations inside the same one in between, so comparing with the last widest one finds every containment.
    const widest: Prefix[] = [];
    for (const prefix of sorted) {
      const last = widest[widest.length - 1];
      if (!last || !prefixContains(last, prefix)) widest.push(prefix);
    }
    // The widest destinations are disjoint: they cover the family exactly when their sizes add up to it.
    const bits = BigInt(familyBits(family));
    const size = widest.reduce((sum, prefix) => sum + (1n << (bits - BigInt(prefix.length))), 0n);
    if (size === 1n << bits) cover.push(...widest);
  }
  return cover;
}

function listCover(cover: readonly Prefix[], family: Family): string {
  const members = cover.filter((prefix) => prefix.family === family).map(formatPrefix);
  return members.length <= 4
    ? members.join(' + ')
    : `${members.slice(0, 3).join(' + ')} + ... (${members.length} destinations)`;
}

/** A safety check compiled from a policy: the refusal of each destination of one object, in order. */
export type SafetyCheck = (destinations: readonly Prefix[], route?: RouteSafetyContext) => Array<string | undefined>;

/**
 * Compiles `policy` once for many objects (a full reconcile checks every destination of every object).
 *
 * A destination is refused when it:
 * - is the default route, or one of destinations that add up to it, and the default route is not allowed;
 * - would capture the node's own address or one of the route's own gateways (never allowed);
 * - otherwise (and not for an allowed default route, which takes everything without a more specific route by
 *   definition): would capture, or lies inside, an API server endpoint, a built-in range, a PROTECTED_CIDRS entry
 *   or a connected subnet, unless an allowance (ALLOW_COVERING_CIDRS, the object's annotation) holds what it captures.
 */
export function safetyCheck(policy: SafetyPolicy): SafetyCheck {
  const subnetOf = policy.nodeAddresses.map((address) =>
    networkOf(address.family, address.address, address.prefixLength),
  );
  const connected = [...subnetOf, ...(policy.directRoutes ?? [])];
  const on = (address: NodeAddress) => (address.interfaceName ? ` (${address.interfaceName})` : '');
  const own: Protected[] = policy.nodeAddresses.map((address) => {
    const prefix = hostPrefix(address.family, address.address);
    return {
      prefix,
      what: `the node's own address ${formatPrefixShort(prefix)}${on(address)}`,
      lift: 'never',
      why: "the node's own addresses are never routed through a gateway",
    };
  });
  const seenSubnets = new Set<string>();
  const subnets: Protected[] = [];
  policy.nodeAddresses.forEach((address, index) => {
    const prefix = subnetOf[index] as Prefix;
    const key = formatPrefix(prefix);
    if (seenSubnets.has(key)) return;
    seenSubnets.add(key);
    subnets.push({ prefix, what: `the node's connected subnet ${key}${on(address)}`, lift: 'allowable' });
  });
  const others: Protected[] = [
    ...policy.apiServerAddresses.map((prefix): Protected => ({
      prefix,
      what: `API server endpoint ${formatPrefixShort(prefix)}`,
      lift: 'allowable',
    })),
    ...BUILT_IN_PROTECTED_RANGES.map(({ prefix, reason }): Protected => ({
      prefix,
      what: `${reason} ${formatPrefixShort(prefix)}`,
      lift: 'allowable',
    })),
    ...policy.protectedCidrs.map((prefix): Protected => ({
      prefix,
      what: `the protected CIDR ${formatPrefix(prefix)} (PROTECTED_CIDRS)`,
      lift: 'configured',
    })),
    ...subnets,
  ];
  const clusterAllowances = policy.allowCoveringCidrs ?? [];

  return (destinations, route = {}) => {
    const gateways = (route.gateways ?? []).flatMap((text): Protected[] => {
      const parsed = parseAddress(text);
      if (!parsed) return [];
      const prefix = hostPrefix(parsed.family, parsed.address);
      return [
        {
          prefix,
          what: `its own gateway ${formatPrefixShort(prefix)}`,
          lift: 'never',
          why: 'the gateway must stay reachable through a more specific route (never allowed)',
        },
      ];
    });
    const allowances = [...clusterAllowances, ...(route.allowCovering ?? [])];
    const never = [...own, ...gateways];
    const cover = defaultRouteCover(destinations);
    const coverKeys = new Set(cover.map(formatPrefix));
    return destinations.map((destination) => {
      const text = formatPrefix(destination);
      const defaultLike = destination.length === 0 || coverKeys.has(text);
      if (defaultLike && !policy.allowDefaultRoute) {
        return destination.length === 0
          ? `${text} is the default route; it is refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true`
          : `${text}: destinations add up to a default route (${listCover(cover, destination.family)}); refused ` +
              'unless the operator runs with ALLOW_DEFAULT_ROUTE=true';
      }
      for (const item of never) {
        const part = captured(destination, item.prefix, connected);
        if (part) return refusalText(destination, item, part, allowances);
      }
      if (defaultLike) return undefined;
      for (const item of others) {
        const part = captured(destination, item.prefix, connected);
        if (!part) continue;
        if (item.lift === 'allowable' && allowances.some((allowance) => prefixContains(allowance, part))) continue;
        return refusalText(destination, item, part, allowances);
      }
      return undefined;
    });
  };
}

/**
 * Returns why `destination` must not be installed on this node, or `undefined` when it is safe. One destination on its
 * own: a set that adds up to a default route is only seen by {@link safetyCheck}.
 */
export function destinationRefusal(
  destination: Prefix,
  policy: SafetyPolicy,
  route: RouteSafetyContext = {},
): string | undefined {
  return safetyCheck(policy)([destination], route)[0];
}

/**
 * Reads the allowances of an object's {@link ALLOW_COVERING_ANNOTATION}. Entries that are not CIDRs are ignored (and
 * reported): a typo in an allowance must not withdraw the object's other routes, it only leaves protected what it
 * meant to lift.
 */
export function allowCoveringOf(annotations: Readonly<Record<string, string>> | undefined): {
  prefixes: Prefix[];
  problems: string[];
} {
  const value = annotations?.[ALLOW_COVERING_ANNOTATION];
  if (value === undefined) return { prefixes: [], problems: [] };
  const { prefixes, problems } = parseCidrList(value);
  return {
    prefixes,
    problems: problems.map((problem) => `metadata.annotations[${ALLOW_COVERING_ANNOTATION}]: ${problem}; ignored`),
  };
}
