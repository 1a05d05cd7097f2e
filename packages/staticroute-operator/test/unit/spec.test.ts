import { describe, expect, it } from 'vitest';
import { formatPrefix } from '../../src/logic/ip.js';
import { MAX_DESTINATIONS, MAX_GATEWAYS, gatewayProblem, parseRouteSpec } from '../../src/logic/spec.js';

function problems(spec: unknown): string[] {
  const result = parseRouteSpec(spec);
  return result.ok ? [] : result.problems;
}

describe('parseRouteSpec: valid specs', () => {
  it("parses the seed's example", () => {
    const result = parseRouteSpec({ destinations: ['34.160.111.145'], gateway: '10.116.0.5' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.spec.family).toBe(4);
    expect(result.spec.destinations.map(formatPrefix)).toEqual(['34.160.111.145/32']);
    expect(result.spec.gateways).toEqual(['10.116.0.5']);
  });

  it('normalizes destinations and keeps their order', () => {
    const result = parseRouteSpec({
      destinations: ['198.51.100.0/24', '203.0.113.7/32', '192.0.2.1'],
      gateway: '10.0.0.1',
    });
    expect(result.ok && result.spec.destinations.map(formatPrefix)).toEqual([
      '198.51.100.0/24',
      '203.0.113.7/32',
      '192.0.2.1/32',
    ]);
  });

  it('sorts and canonicalizes ECMP gateways', () => {
    const result = parseRouteSpec({ destinations: ['2001:db8:100::/48'], gateways: ['fd00::B', 'fd00::a'] });
    expect(result.ok && result.spec).toMatchObject({ family: 6, gateways: ['fd00::a', 'fd00::b'] });
  });

  it('keeps a nodeSelector', () => {
    const nodeSelector = { matchLabels: { egress: 'true' } };
    const result = parseRouteSpec({ destinations: ['192.0.2.0/24'], gateway: '10.0.0.1', nodeSelector });
    expect(result.ok && result.spec.nodeSelector).toEqual(nodeSelector);
  });

  it('accepts the default route (safety decides later)', () => {
    expect(problems({ destinations: ['0.0.0.0/0'], gateway: '10.0.0.1' })).toEqual([]);
  });

  it(`accepts exactly ${MAX_DESTINATIONS} destinations and ${MAX_GATEWAYS} gateways`, () => {
    const destinations = Array.from({ length: MAX_DESTINATIONS }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const gateways = Array.from({ length: MAX_GATEWAYS }, (_, i) => `10.0.0.${i + 1}`);
    expect(problems({ destinations, gateways })).toEqual([]);
  });
});

describe('parseRouteSpec: refusals name the field', () => {
  it.each<[string, unknown, string]>([
    ['not an object', 'x', 'spec: must be an object'],
    ['no gateway', { destinations: ['192.0.2.1'] }, 'spec: exactly one of spec.gateway or spec.gateways'],
    [
      'both gateway and gateways',
      { destinations: ['192.0.2.1'], gateway: '10.0.0.1', gateways: ['10.0.0.2'] },
      'spec: exactly one of spec.gateway or spec.gateways',
    ],
    ['missing destinations', { gateway: '10.0.0.1' }, 'spec.destinations: must be a list'],
    ['empty destinations', { destinations: [], gateway: '10.0.0.1' }, 'spec.destinations: must not be empty'],
    ['non-string destination', { destinations: [5], gateway: '10.0.0.1' }, 'spec.destinations[0]: must be a string'],
    [
      'malformed destination',
      { destinations: ['192.0.2.1', '300.1.1.1'], gateway: '10.0.0.1' },
      'spec.destinations[1]: destination "300.1.1.1" is not an IP address or CIDR (e.g. 34.160.111.145, 10.0.0.0/8 or 2001:db8::/32)',
    ],
    [
      'host bits',
      { destinations: ['192.0.2.1/24'], gateway: '10.0.0.1' },
      'spec.destinations[0]: destination "192.0.2.1/24" has host bits set; use the network address 192.0.2.0/24',
    ],
    [
      'family mismatch',
      { destinations: ['2001:db8::/32'], gateway: '10.0.0.1' },
      'spec.destinations[0]: destination "2001:db8::/32" is IPv6 but the gateway is IPv4 (every destination must be of the gateway\'s address family)',
    ],
    [
      'duplicate written differently',
      { destinations: ['192.0.2.1', '192.0.2.1/32'], gateway: '10.0.0.1' },
      'spec.destinations[1]: duplicate of spec.destinations[0] (192.0.2.1/32)',
    ],
    [
      'malformed gateway',
      { destinations: ['192.0.2.1'], gateway: '10.0.0' },
      'spec.gateway: gateway "10.0.0" is not an IP address (e.g. 10.116.0.5)',
    ],
    [
      'gateway as CIDR',
      { destinations: ['192.0.2.1'], gateway: '10.0.0.1/32' },
      'spec.gateway: gateway "10.0.0.1/32" is not an IP address',
    ],
    [
      'loopback gateway',
      { destinations: ['192.0.2.1'], gateway: '127.0.0.1' },
      'spec.gateway: gateway "127.0.0.1" is a loopback address; a gateway must be a unicast address',
    ],
    ['empty gateways', { destinations: ['192.0.2.1'], gateways: [] }, 'spec.gateways: must not be empty'],
    ['gateways not a list', { destinations: ['192.0.2.1'], gateways: '10.0.0.1' }, 'spec.gateways: must be a list'],
    [
      'duplicate gateways',
      { destinations: ['192.0.2.1'], gateways: ['10.0.0.1', '10.0.0.1'] },
      'spec.gateways[1]: duplicate of spec.gateways[0]',
    ],
    [
      'mixed gateway families',
      { destinations: ['192.0.2.1'], gateways: ['10.0.0.1', 'fd00::1'] },
      'spec.gateways: gateway "fd00::1" is IPv6 but gateway "10.0.0.1" is IPv4 (all gateways must be of one address family)',
    ],
    [
      'too many gateways',
      { destinations: ['192.0.2.1'], gateways: Array.from({ length: MAX_GATEWAYS + 1 }, (_, i) => `10.0.0.${i + 1}`) },
      `spec.gateways: at most ${MAX_GATEWAYS} gateways`,
    ],
    [
      'bad nodeSelector',
      {
        destinations: ['192.0.2.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Is' }] },
      },
      'spec.nodeSelector.matchExpressions[0].operator',
    ],
    [
      'nodeSelector value that is not a label value (B4)',
      {
        destinations: ['192.0.2.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux!!' } },
      },
      'spec.nodeSelector.matchLabels.kubernetes.io/os: "linux!!" is not a valid label value',
    ],
    [
      'nodeSelector key that is not a label key (B4)',
      {
        destinations: ['192.0.2.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchLabels: { 'bad key/with/slashes': 'v' } },
      },
      'spec.nodeSelector.matchLabels: "bad key/with/slashes" is not a valid label key',
    ],
    [
      'nodeSelector expression key that is not a label key (B4)',
      {
        destinations: ['192.0.2.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'not a key!!', operator: 'Exists' }] },
      },
      'spec.nodeSelector.matchExpressions[0].key: "not a key!!" is not a valid label key',
    ],
  ])('%s', (_name, spec, expected) => {
    expect(problems(spec).join('\n')).toContain(expected);
  });

  it('reports every problem, not just the first', () => {
    expect(problems({ destinations: ['x', '192.0.2.1/24'], gateway: 'y' })).toHaveLength(3);
  });
});

describe('gatewayProblem', () => {
  const unicast = '; a gateway must be a unicast address';
  it.each([
    ['10.116.0.5', undefined],
    ['fd00::1', undefined],
    ['2001:db8::1', undefined],
    ['10.0.0', 'is not an IP address (e.g. 10.116.0.5)'],
    ['', 'is not an IP address (e.g. 10.116.0.5)'],
    ['0.0.0.0', `is the unspecified address${unicast}`],
    ['::', `is the unspecified address${unicast}`],
    ['127.0.0.1', `is a loopback address${unicast}`],
    ['::1', `is a loopback address${unicast}`],
    ['169.254.1.1', `is a link-local address (not usable without an interface)${unicast}`],
    ['fe80::1', `is a link-local address (not usable without an interface)${unicast}`],
    ['224.0.0.1', `is a multicast address${unicast}`],
    ['ff02::1', `is a multicast address${unicast}`],
    ['255.255.255.255', `is the limited broadcast address${unicast}`],
    ['0.1.2.3', `is in "this network" (0.0.0.0/8)${unicast}`],
    [
      '::ffff:10.116.0.5',
      'is an IPv4-mapped IPv6 address, which is not accepted: the kernel would route it as IPv6 while the address ' +
        'is IPv4; write it as IPv4 (10.116.0.5)',
    ],
    [
      '::FFFF:a74:5',
      'is an IPv4-mapped IPv6 address, which is not accepted: the kernel would route it as IPv6 while the address is IPv4; write it as IPv4 (10.116.0.5)',
    ],
  ])('%j -> %s', (address, expected) => expect(gatewayProblem(address)).toBe(expected));
});

describe('parseRouteSpec: IPv4-mapped IPv6 (issue 12)', () => {
  const mapped =
    'is an IPv4-mapped IPv6 address, which is not accepted: the kernel would route it as IPv6 while the address is IPv4';
  it.each<[string, string]>([
    ['::ffff:1.2.3.4', `spec.destinations[0]: destination "::ffff:1.2.3.4" ${mapped}; write it as IPv4 (1.2.3.4)`],
    ['::ffff:102:304', `spec.destinations[0]: destination "::ffff:102:304" ${mapped}; write it as IPv4 (1.2.3.4)`],
    [
      '0:0:0:0:0:FFFF:1.2.3.0/120',
      `spec.destinations[0]: destination "0:0:0:0:0:FFFF:1.2.3.0/120" ${mapped}; write it as IPv4 (1.2.3.0/24)`,
    ],
    // Shorter than /96 the prefix has no IPv4 form to suggest.
    ['::ffff:0:0/80', `spec.destinations[0]: destination "::ffff:0:0/80" ${mapped}; write it as IPv4`],
  ])('says what %s is', (destination, expected) => {
    expect(problems({ destinations: [destination], gateway: '10.0.0.1' })).toEqual([expected]);
  });

  it('names a mapped gateway the same way', () => {
    expect(problems({ destinations: ['192.0.2.1'], gateway: '::ffff:10.0.0.1' })).toEqual([
      `spec.gateway: gateway "::ffff:10.0.0.1" ${mapped}; write it as IPv4 (10.0.0.1)`,
    ]);
    expect(problems({ destinations: ['192.0.2.1'], gateways: ['10.0.0.2', '::ffff:10.0.0.1'] })).toEqual([
      `spec.gateways[1]: gateway "::ffff:10.0.0.1" ${mapped}; write it as IPv4 (10.0.0.1)`,
    ]);
  });

  it('still calls malformed text malformed', () => {
    expect(problems({ destinations: ['::ffff:1.2.3'], gateway: '10.0.0.1' })).toEqual([
      'spec.destinations[0]: destination "::ffff:1.2.3" is not an IP address or CIDR (e.g. 34.160.111.145, 10.0.0.0/8 or 2001:db8::/32)',
    ]);
  });
});

describe('parseRouteSpec: more destinations than the CRD admits (stored before the limit)', () => {
  const over = (count: number) =>
    Array.from({ length: count }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

  it('applies them all and says so in a warning', () => {
    const result = parseRouteSpec({ destinations: over(MAX_DESTINATIONS + 500), gateway: '192.0.2.1' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.spec.destinations).toHaveLength(MAX_DESTINATIONS + 500);
    expect(result.spec.warnings).toEqual([
      `spec.destinations: ${MAX_DESTINATIONS + 500} destinations, more than the ${MAX_DESTINATIONS} the CRD admits ` +
        '(stored before the limit existed): all are applied; a change of the list must bring it to 2000 or fewer',
    ]);
  });

  it('does not throw on a very long list, and still reports its bad entries', () => {
    const destinations = [...over(100_000), 'x'];
    const result = parseRouteSpec({ destinations, gateway: '192.0.2.1' });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      'spec.destinations[100000]: destination "x" is not an IP address or CIDR (e.g. 34.160.111.145, 10.0.0.0/8 or 2001:db8::/32)',
    ]);
  });

  it('warns about nothing at the limit', () => {
    const result = parseRouteSpec({ destinations: over(MAX_DESTINATIONS), gateway: '192.0.2.1' });
    expect(result.ok && result.spec.warnings).toBeUndefined();
  });
});

describe('parseRouteSpec: messages name the value', () => {
  it('names the gateway family in the destinations plural form', () => {
    expect(problems({ destinations: ['192.0.2.1'], gateways: ['fd00::1', 'fd00::2'] })).toEqual([
      'spec.destinations[0]: destination "192.0.2.1" is IPv4 but the gateways are IPv6 (every destination must be of the gateways\' address family)',
    ]);
  });

  it('compares gateways with the first one, as the CRD does', () => {
    expect(problems({ destinations: ['192.0.2.1'], gateways: ['fd00::1', '10.0.0.1', '10.0.0.2'] })).toEqual([
      'spec.gateways: gateway "10.0.0.1" is IPv4 but gateway "fd00::1" is IPv6 (all gateways must be of one address family)',
    ]);
  });

  it('says which of gateway and gateways is wrong', () => {
    expect(problems({ destinations: ['192.0.2.1'] })).toEqual([
      'spec: exactly one of spec.gateway or spec.gateways must be set (neither is)',
    ]);
    expect(problems({ destinations: ['192.0.2.1'], gateway: '10.0.0.1', gateways: ['10.0.0.2'] })).toEqual([
      'spec: exactly one of spec.gateway or spec.gateways must be set (both are)',
    ]);
  });
});
