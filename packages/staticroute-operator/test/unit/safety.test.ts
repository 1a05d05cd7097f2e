import { describe, expect, it } from 'vitest';
import { formatPrefix, mustParsePrefix, parseAddress, type Prefix } from '../../src/logic/ip.js';
import {
  ALLOW_COVERING_ANNOTATION,
  allowCoveringOf,
  defaultRouteCover,
  destinationRefusal,
  safetyCheck,
  type NodeAddress,
  type RouteSafetyContext,
  type SafetyPolicy,
} from '../../src/logic/safety.js';

function nodeAddress(text: string, interfaceName?: string): NodeAddress {
  const [address, length] = text.split('/') as [string, string];
  const parsed = parseAddress(address) as { family: 4 | 6; address: bigint };
  return { ...parsed, prefixLength: Number(length), interfaceName };
}

const prefixes = (...texts: string[]): Prefix[] => texts.map(mustParsePrefix);

/** A DigitalOcean-like node: VPC 10.116.0.0/20 on eth1, public 206.81.0.0/20 on eth0, an IPv6 VPC subnet. */
const policy: SafetyPolicy = {
  nodeAddresses: [
    nodeAddress('10.116.0.2/20', 'eth1'),
    nodeAddress('206.81.0.10/20', 'eth0'),
    nodeAddress('fd00:10::2/64', 'eth1'),
  ],
  apiServerAddresses: prefixes('203.0.113.10'),
  protectedCidrs: prefixes('100.64.0.0/10'),
  allowDefaultRoute: false,
};

const ALLOW_HINT = `with the annotation ${ALLOW_COVERING_ANNOTATION} or ALLOW_COVERING_CIDRS`;
const NEVER_OWN = "the node's own addresses are never routed through a gateway";
const NEVER_GATEWAY = 'the gateway must stay reachable through a more specific route (never allowed)';

const refusal = (destination: string, overrides: Partial<SafetyPolicy> = {}, route: RouteSafetyContext = {}) =>
  destinationRefusal(mustParsePrefix(destination), { ...policy, ...overrides }, route);

/** The refusals of one object's destinations, by destination. */
function refusals(
  destinations: string[],
  overrides: Partial<SafetyPolicy> = {},
  route: RouteSafetyContext = {},
): Record<string, string | undefined> {
  const result = safetyCheck({ ...policy, ...overrides })(prefixes(...destinations), route);
  return Object.fromEntries(destinations.map((text, index) => [formatPrefix(mustParsePrefix(text)), result[index]]));
}

describe('destinationRefusal: what is allowed', () => {
  it.each(['34.160.111.145/32', '34.117.59.81/32', '198.51.100.0/24', '2001:db8::/32', '10.200.0.0/16'])(
    'allows %s',
    (destination) => expect(refusal(destination)).toBeUndefined(),
  );

  // Issue 10: the more specific connected route keeps the node's subnet direct, as with the predecessor operator.
  it.each<[string, string]>([
    ['10.0.0.0/8', "a private range around the node's VPC subnet (VPN gateway)"],
    ['10.116.0.0/19', 'the VPC subnet and its neighbour'],
    ['206.0.0.0/8', "a range around the node's public subnet"],
    ['fd00::/8', "a range around the node's IPv6 subnet"],
  ])('allows %s: %s', (destination) => {
    expect(refusal(destination, {}, { gateways: ['10.116.0.5'] })).toBeUndefined();
  });

  it('allows a covering destination whose gateway lies in the (more specific) connected subnet', () => {
    expect(refusal('10.0.0.0/8', {}, { gateways: ['10.116.0.5', '10.116.0.6'] })).toBeUndefined();
  });

  it('never compares across families', () => {
    expect(refusal('2001:db8::/32', { protectedCidrs: prefixes('0.0.0.0/1') })).toBeUndefined();
    expect(
      refusal('2000::/3', { apiServerAddresses: prefixes('32.0.0.1') }, { gateways: ['fd00:10::5'] }),
    ).toBeUndefined();
  });
});

describe('destinationRefusal: what is refused, naming what the route would capture', () => {
  it.each<[string, string]>([
    [
      '169.254.169.254/32',
      `169.254.169.254/32 is the cloud metadata service address 169.254.169.254; if that is intended, allow ` +
        `169.254.169.254 ${ALLOW_HINT}`,
    ],
    [
      '169.254.0.0/16',
      `169.254.0.0/16 would capture the cloud metadata service address 169.254.169.254; if that is intended, allow ` +
        `169.254.169.254 ${ALLOW_HINT}`,
    ],
    [
      '169.254.3.0/24',
      `169.254.3.0/24 lies inside IPv4 link-local 169.254.0.0/16; if that is intended, allow 169.254.3.0/24 ${ALLOW_HINT}`,
    ],
    [
      'fe80::/64',
      `fe80::/64 lies inside IPv6 link-local fe80::/10; if that is intended, allow fe80::/64 ${ALLOW_HINT}`,
    ],
    [
      '127.0.0.1/32',
      `127.0.0.1/32 lies inside loopback 127.0.0.0/8; if that is intended, allow 127.0.0.1 ${ALLOW_HINT}`,
    ],
    ['::1/128', `::1/128 is loopback ::1; if that is intended, allow ::1 ${ALLOW_HINT}`],
    [
      '224.0.0.0/8',
      `224.0.0.0/8 lies inside multicast 224.0.0.0/4; if that is intended, allow 224.0.0.0/8 ${ALLOW_HINT}`,
    ],
    ['ff02::/16', `ff02::/16 lies inside multicast ff00::/8; if that is intended, allow ff02::/16 ${ALLOW_HINT}`],
    ['255.255.255.255/32', '255.255.255.255/32 is the limited broadcast address 255.255.255.255'],
    ['0.0.0.0/8', '0.0.0.0/8 is "this network" 0.0.0.0/8'],
    ['::/128', '::/128 is the unspecified address ::'],
    ['10.116.0.2/32', `10.116.0.2/32 is the node's own address 10.116.0.2 (eth1); ${NEVER_OWN}`],
    ['10.116.0.0/24', `10.116.0.0/24 would capture the node's own address 10.116.0.2 (eth1); ${NEVER_OWN}`],
    // As specific as the connected route: the two would compete on metric, so the subnet is not kept direct.
    ['10.116.0.0/20', `10.116.0.0/20 would capture the node's own address 10.116.0.2 (eth1); ${NEVER_OWN}`],
    ['fd00:10::/64', `fd00:10::/64 would capture the node's own address fd00:10::2 (eth1); ${NEVER_OWN}`],
    [
      '10.116.8.0/21',
      `10.116.8.0/21 lies inside the node's connected subnet 10.116.0.0/20 (eth1); if that is intended, allow ` +
        `10.116.8.0/21 ${ALLOW_HINT}`,
    ],
    ['10.116.0.7/32', "10.116.0.7/32 lies inside the node's connected subnet 10.116.0.0/20 (eth1)"],
    ['fd00:10::ffff/128', "fd00:10::ffff/128 lies inside the node's connected subnet fd00:10::/64 (eth1)"],
    ['203.0.113.10/32', `203.0.113.10/32 is API server endpoint 203.0.113.10; if that is intended, allow 203.0.113.10`],
    ['203.0.113.0/24', '203.0.113.0/24 would capture API server endpoint 203.0.113.10; if that is intended'],
    ['100.100.0.0/16', '100.100.0.0/16 lies inside the protected CIDR 100.64.0.0/10 (PROTECTED_CIDRS)'],
    ['100.0.0.0/8', '100.0.0.0/8 would capture the protected CIDR 100.64.0.0/10 (PROTECTED_CIDRS)'],
    [
      '0.0.0.0/0',
      '0.0.0.0/0 is the default route; it is refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true',
    ],
    ['::/0', '::/0 is the default route; it is refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true'],
  ])('refuses %s', (destination, expected) => expect(refusal(destination)).toContain(expected));

  it('says nothing about allowances where none applies (PROTECTED_CIDRS, own addresses)', () => {
    expect(refusal('100.100.0.0/16')).toBe(
      '100.100.0.0/16 lies inside the protected CIDR 100.64.0.0/10 (PROTECTED_CIDRS)',
    );
    expect(refusal('10.116.0.2/32')).not.toContain(ALLOW_COVERING_ANNOTATION);
  });

  it("names the API server endpoint a covering route would capture (the ClusterIP outside the node's subnets)", () => {
    expect(refusal('10.0.0.0/8', { apiServerAddresses: prefixes('10.245.0.1') }, { gateways: ['10.116.0.5'] })).toBe(
      `10.0.0.0/8 would capture API server endpoint 10.245.0.1; if that is intended, allow 10.245.0.1 ${ALLOW_HINT}`,
    );
  });
});

describe("destinationRefusal: the route's own gateways", () => {
  it('refuses a destination that would capture its gateway, even inside a connected subnet', () => {
    expect(refusal('10.116.0.4/30', {}, { gateways: ['10.116.0.5'] })).toBe(
      `10.116.0.4/30 would capture its own gateway 10.116.0.5; ${NEVER_GATEWAY}`,
    );
    expect(refusal('10.116.0.5/32', {}, { gateways: ['10.116.0.5'] })).toBe(
      `10.116.0.5/32 is its own gateway 10.116.0.5; ${NEVER_GATEWAY}`,
    );
  });

  it('checks every ECMP next hop', () => {
    expect(refusal('10.116.0.8/30', {}, { gateways: ['10.116.0.5', '10.116.0.9'] })).toBe(
      `10.116.0.8/30 would capture its own gateway 10.116.0.9; ${NEVER_GATEWAY}`,
    );
  });

  it('refuses a destination around a gateway that no connected subnet keeps reachable', () => {
    expect(refusal('198.51.100.0/24', {}, { gateways: ['198.51.100.1'] })).toBe(
      `198.51.100.0/24 would capture its own gateway 198.51.100.1; ${NEVER_GATEWAY}`,
    );
  });

  it('counts direct routes (policy.directRoutes) as keeping the gateway reachable', () => {
    const directRoutes = prefixes('198.51.100.1/32');
    expect(refusal('198.51.100.0/24', { directRoutes }, { gateways: ['198.51.100.1'] })).toBeUndefined();
    // A direct route no more specific than the destination keeps nothing.
    expect(
      refusal('198.51.100.0/24', { directRoutes: prefixes('198.51.100.0/24') }, { gateways: ['198.51.100.1'] }),
    ).toContain('would capture its own gateway 198.51.100.1');
  });

  it('is not lifted by any allowance, nor is the own address', () => {
    const everything = prefixes('0.0.0.0/0', '::/0');
    expect(
      refusal(
        '10.116.0.4/30',
        { allowCoveringCidrs: everything },
        { gateways: ['10.116.0.5'], allowCovering: everything },
      ),
    ).toContain('would capture its own gateway 10.116.0.5');
    expect(refusal('10.116.0.0/24', { allowCoveringCidrs: everything }, { allowCovering: everything })).toContain(
      "would capture the node's own address 10.116.0.2",
    );
  });
});

describe('destinationRefusal: a more specific route keeps what it holds', () => {
  it('keeps an on-link API server endpoint direct under a covering route, not under a more specific one', () => {
    const onLink = { apiServerAddresses: prefixes('10.116.0.100') };
    expect(refusal('10.0.0.0/8', onLink)).toBeUndefined();
    expect(refusal('10.116.0.96/27', onLink)).toBe(
      `10.116.0.96/27 would capture API server endpoint 10.116.0.100; if that is intended, allow 10.116.0.100 ${ALLOW_HINT}`,
    );
  });

  it('keeps loopback direct when the node has its loopback addresses (every real node does)', () => {
    const noProtected = { protectedCidrs: [] };
    expect(refusal('64.0.0.0/2', noProtected)).toContain('64.0.0.0/2 would capture loopback 127.0.0.0/8');
    const withLoopback = { ...noProtected, nodeAddresses: [...policy.nodeAddresses, nodeAddress('127.0.0.1/8', 'lo')] };
    expect(refusal('64.0.0.0/2', withLoopback)).toBeUndefined();
    // Inside the loopback subnet it is still refused, as the node's own address.
    expect(refusal('127.0.0.0/24', withLoopback)).toBe(
      `127.0.0.0/24 would capture the node's own address 127.0.0.1 (lo); ${NEVER_OWN}`,
    );
  });

  it('keeps a protected CIDR direct when a more specific connected subnet holds all of it', () => {
    expect(refusal('10.0.0.0/8', { protectedCidrs: prefixes('10.116.0.0/24') })).toBeUndefined();
    expect(refusal('10.0.0.0/8', { protectedCidrs: prefixes('10.200.0.0/16') })).toContain(
      'would capture the protected CIDR 10.200.0.0/16 (PROTECTED_CIDRS)',
    );
  });

  it('counts direct routes like connected subnets', () => {
    expect(refusal('203.0.113.0/24', { directRoutes: prefixes('203.0.113.0/25') })).toBeUndefined();
  });
});

describe('allowances (ALLOW_COVERING_CIDRS and the allow-covering annotation)', () => {
  const clusterIp = { apiServerAddresses: prefixes('10.245.0.1') };
  const route = (allowCovering: string[]): RouteSafetyContext => ({
    gateways: ['10.116.0.5'],
    allowCovering: prefixes(...allowCovering),
  });

  it.each([['10.245.0.1'], ['10.245.0.0/16'], ['10.0.0.0/8']])(
    'lifts the capture of an API server endpoint with the object allowance %s',
    (allowance) => {
      expect(refusal('10.0.0.0/8', clusterIp, route([allowance]))).toBeUndefined();
    },
  );

  it('lifts it with the cluster allowance (ALLOW_COVERING_CIDRS) as well', () => {
    expect(refusal('10.0.0.0/8', { ...clusterIp, allowCoveringCidrs: prefixes('10.245.0.0/16') })).toBeUndefined();
  });

  it('adds the object allowances to the cluster ones', () => {
    const overrides = {
      apiServerAddresses: prefixes('10.245.0.1', '10.99.0.1'),
      allowCoveringCidrs: prefixes('10.245.0.1'),
    };
    expect(refusal('10.0.0.0/8', overrides, route([]))).toContain('would capture API server endpoint 10.99.0.1');
    expect(refusal('10.0.0.0/8', overrides, route(['10.99.0.1']))).toBeUndefined();
  });

  it('does not lift an allowance for another range', () => {
    expect(refusal('10.0.0.0/8', clusterIp, route(['10.246.0.0/16']))).toContain('API server endpoint 10.245.0.1');
  });

  it('says so when an allowance holds only part of what is captured', () => {
    expect(refusal('169.254.0.0/16', {}, route(['169.254.169.254']))).toBe(
      '169.254.0.0/16 is IPv4 link-local 169.254.0.0/16 (the allowance 169.254.169.254 holds only part of it); if ' +
        `that is intended, allow 169.254.0.0/16 ${ALLOW_HINT}`,
    );
    expect(refusal('169.254.0.0/16', {}, route(['169.254.0.0/16']))).toBeUndefined();
  });

  it('lifts built-in ranges and connected subnets', () => {
    expect(refusal('169.254.169.254/32', { allowCoveringCidrs: prefixes('169.254.169.254') })).toBeUndefined();
    expect(refusal('10.116.8.0/21', {}, { allowCovering: prefixes('10.116.8.0/21') })).toBeUndefined();
  });

  it('does not lift PROTECTED_CIDRS (the administrator lists them explicitly)', () => {
    const everything = prefixes('0.0.0.0/0');
    expect(refusal('100.100.0.0/16', { allowCoveringCidrs: everything }, { allowCovering: everything })).toContain(
      'PROTECTED_CIDRS',
    );
  });

  it('does not allow the default route', () => {
    const everything = prefixes('0.0.0.0/0');
    expect(refusal('0.0.0.0/0', { allowCoveringCidrs: everything }, { allowCovering: everything })).toContain(
      'ALLOW_DEFAULT_ROUTE=true',
    );
  });
});

describe('the default route and destinations that add up to it', () => {
  const ADD_UP = 'destinations add up to a default route';
  const UNLESS = 'refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true';

  it('allows the default route when configured, whatever it covers', () => {
    expect(refusal('0.0.0.0/0', { allowDefaultRoute: true }, { gateways: ['10.116.0.5'] })).toBeUndefined();
    expect(refusal('::/0', { allowDefaultRoute: true }, { gateways: ['fd00:10::5'] })).toBeUndefined();
  });

  it('still refuses an allowed default route whose gateway no connected subnet keeps reachable', () => {
    expect(refusal('0.0.0.0/0', { allowDefaultRoute: true }, { gateways: ['198.51.100.1'] })).toContain(
      'would capture its own gateway 198.51.100.1',
    );
  });

  it.each<[string, string[], string]>([
    ['the IPv4 halves', ['0.0.0.0/1', '128.0.0.0/1'], '0.0.0.0/1 + 128.0.0.0/1'],
    ['the IPv6 halves', ['::/1', '8000::/1'], '::/1 + 8000::/1'],
    [
      'quarters and a half, in any order',
      ['128.0.0.0/1', '64.0.0.0/2', '0.0.0.0/2'],
      '0.0.0.0/2 + 64.0.0.0/2 + 128.0.0.0/1',
    ],
  ])('refuses %s by name', (_name, destinations, listed) => {
    const result = refusals(destinations);
    for (const destination of destinations) {
      const key = formatPrefix(mustParsePrefix(destination));
      expect(result[key]).toBe(`${key}: ${ADD_UP} (${listed}); ${UNLESS}`);
    }
  });

  it('allows them when the default route is allowed', () => {
    const result = refusals(['0.0.0.0/1', '128.0.0.0/1'], { allowDefaultRoute: true }, { gateways: ['10.116.0.5'] });
    expect(result).toEqual({ '0.0.0.0/1': undefined, '128.0.0.0/1': undefined });
  });

  it('refuses only the widest destinations; the more specific ones inside them are judged on their own', () => {
    const result = refusals(['0.0.0.0/1', '128.0.0.0/1', '34.160.111.145', '169.254.169.254']);
    expect(result['0.0.0.0/1']).toContain(ADD_UP);
    expect(result['128.0.0.0/1']).toContain(ADD_UP);
    expect(result['34.160.111.145/32']).toBeUndefined();
    expect(result['169.254.169.254/32']).toContain('is the cloud metadata service address');
  });

  it('shortens a long list', () => {
    const eights = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
    expect(refusals(eights)['10.0.0.0/8']).toBe(
      `10.0.0.0/8: ${ADD_UP} (0.0.0.0/8 + 1.0.0.0/8 + 2.0.0.0/8 + ... (256 destinations)); ${UNLESS}`,
    );
  });

  it('does not call a set with a gap a default route', () => {
    const result = refusals(['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3']);
    expect(result['0.0.0.0/1']).not.toContain(ADD_UP);
    expect(result['0.0.0.0/1']).toBeDefined();
  });

  it('is a property of the set: one half alone is judged by what it captures', () => {
    expect(refusal('128.0.0.0/1')).toContain('128.0.0.0/1 would capture API server endpoint 203.0.113.10');
    expect(refusal('128.0.0.0/1', { apiServerAddresses: [] })).toContain(
      '128.0.0.0/1 would capture the cloud metadata service address 169.254.169.254',
    );
  });
});

describe('defaultRouteCover', () => {
  const cover = (...texts: string[]) => defaultRouteCover(prefixes(...texts)).map(formatPrefix);

  it('returns the widest destinations when they cover a family', () => {
    expect(cover('128.0.0.0/1', '0.0.0.0/1', '10.0.0.0/8')).toEqual(['0.0.0.0/1', '128.0.0.0/1']);
    expect(cover('::/1', '8000::/2', 'c000::/2', '2001:db8::/32')).toEqual(['::/1', '8000::/2', 'c000::/2']);
  });

  it('judges each family on its own', () => {
    expect(cover('0.0.0.0/1', '::/1', '128.0.0.0/1')).toEqual(['0.0.0.0/1', '128.0.0.0/1']);
    expect(cover('0.0.0.0/1', '8000::/1')).toEqual([]);
  });

  it('leaves /0 to its own rule', () => {
    expect(cover('0.0.0.0/0')).toEqual([]);
    expect(cover('0.0.0.0/0', '0.0.0.0/1')).toEqual([]);
  });

  it('is not fooled by duplicates or nested destinations', () => {
    expect(cover('0.0.0.0/1', '0.0.0.0/1')).toEqual([]);
    expect(cover('0.0.0.0/1', '0.0.0.0/2', '64.0.0.0/2')).toEqual([]);
  });

  it('finds nothing in an empty set', () => expect(cover()).toEqual([]));
});

describe('allowCoveringOf', () => {
  it('reads the annotation', () => {
    const result = allowCoveringOf({ [ALLOW_COVERING_ANNOTATION]: '10.245.0.0/16, 169.254.169.254' });
    expect(result.prefixes.map(formatPrefix)).toEqual(['10.245.0.0/16', '169.254.169.254/32']);
    expect(result.problems).toEqual([]);
  });

  it('is empty without the annotation', () => {
    expect(allowCoveringOf(undefined)).toEqual({ prefixes: [], problems: [] });
    expect(allowCoveringOf({ other: '10.0.0.0/8' })).toEqual({ prefixes: [], problems: [] });
  });

  it('ignores and reports bad entries, keeping the good ones', () => {
    const result = allowCoveringOf({ [ALLOW_COVERING_ANNOTATION]: '10.0.0.0/8 10.245.0.1/16 nope' });
    expect(result.prefixes.map(formatPrefix)).toEqual(['10.0.0.0/8']);
    expect(result.problems).toEqual([
      `metadata.annotations[${ALLOW_COVERING_ANNOTATION}]: "10.245.0.1/16" has host bits set (the network is 10.245.0.0/16); ignored`,
      `metadata.annotations[${ALLOW_COVERING_ANNOTATION}]: "nope" is not an IP address or CIDR; ignored`,
    ]);
  });
});
