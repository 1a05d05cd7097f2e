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
      'spec.destinations[1]: "300.1.1.1" is not a valid IP address or CIDR',
    ],
    [
      'host bits',
      { destinations: ['192.0.2.1/24'], gateway: '10.0.0.1' },
      'spec.destinations[0]: "192.0.2.1/24" has host bits set (the network is 192.0.2.0/24)',
    ],
    [
      'family mismatch',
      { destinations: ['2001:db8::/32'], gateway: '10.0.0.1' },
      'spec.destinations[0]: "2001:db8::/32" is IPv6 but the gateway is IPv4',
    ],
    [
      'duplicate written differently',
      { destinations: ['192.0.2.1', '192.0.2.1/32'], gateway: '10.0.0.1' },
      'spec.destinations[1]: duplicate of spec.destinations[0] (192.0.2.1/32)',
    ],
    [
      'malformed gateway',
      { destinations: ['192.0.2.1'], gateway: '10.0.0' },
      'spec.gateway: "10.0.0" is not a valid IP',
    ],
    ['gateway as CIDR', { destinations: ['192.0.2.1'], gateway: '10.0.0.1/32' }, 'spec.gateway: "10.0.0.1/32" is not'],
    [
      'loopback gateway',
      { destinations: ['192.0.2.1'], gateway: '127.0.0.1' },
      'spec.gateway: "127.0.0.1" is a loopback',
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
      'spec.gateways: all gateways must be of one address family',
    ],
    [
      'too many destinations',
      {
        destinations: Array.from({ length: MAX_DESTINATIONS + 1 }, (_, i) => `198.18.${i >> 8}.${i & 255}`),
        gateway: '10.0.0.1',
      },
      `spec.destinations: at most ${MAX_DESTINATIONS} destinations`,
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
  it.each([
    ['10.116.0.5', undefined],
    ['fd00::1', undefined],
    ['2001:db8::1', undefined],
    ['0.0.0.0', 'is the unspecified address'],
    ['::', 'is the unspecified address'],
    ['::1', 'is a loopback address'],
    ['169.254.1.1', 'is a link-local address (not usable without an interface)'],
    ['fe80::1', 'is a link-local address (not usable without an interface)'],
    ['224.0.0.1', 'is a multicast address'],
    ['ff02::1', 'is a multicast address'],
    ['255.255.255.255', 'is not a unicast address'],
    ['0.1.2.3', 'is not a unicast address'],
  ])('%s -> %s', (address, expected) => expect(gatewayProblem(address)).toBe(expected));
});
