/**
 * The CRD and the release against a real API server: every example applies, bad objects are refused at admission
 * with a message naming the field and the value, the printer columns, objects stored before the destination limit,
 * and install/uninstall with the single release file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { REPO_DIR } from '../support/build.js';

const RELEASE = path.join(REPO_DIR, 'deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
const CRD = path.join(REPO_DIR, 'deploy/crd.yaml');
const CRD_NAME = 'crd/staticroutes.networking.digitalocean.com';
const EXAMPLES = path.join(REPO_DIR, 'examples');
const PLACEHOLDER = '<YOUR_NAT_GW_DROPLET_PRIVATE_IP_HERE>';
let controlPlane: ControlPlane;

function staticRoute(name: string, spec: unknown): string {
  return JSON.stringify({
    apiVersion: 'networking.digitalocean.com/v1',
    kind: 'StaticRoute',
    metadata: { name },
    spec,
  });
}

async function kubectl(args: string[], input?: string) {
  return controlPlane.kubectl(args, { allowFailure: true, ...(input === undefined ? {} : { input }) });
}

beforeAll(async () => {
  controlPlane = await startControlPlane();
  const applied = await kubectl(['apply', '-f', RELEASE]);
  expect(applied.code, applied.stderr).toBe(0);
  // The validation cases are about deploy/crd.yaml itself (the deploy unit test checks that the release is generated
  // from it); applying it also shows the API server accepts its rules' estimated cost.
  const crd = await kubectl(['apply', '-f', CRD]);
  expect(crd.code, crd.stderr).toBe(0);
  await kubectl(['wait', '--for=condition=Established', CRD_NAME]);
});

afterAll(async () => {
  await controlPlane?.stop();
});

describe('examples', () => {
  const files = readdirSync(EXAMPLES).filter((file) => file.endsWith('.yaml'));

  it('ships the seed examples and the new ones', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'static-route-ifconfig.me.yaml',
        'static-route-ipinfo.io.yaml',
        'curl-test.yaml',
        'static-route-ecmp.yaml',
        'static-route-node-selector.yaml',
        'static-route-ipv6.yaml',
        'static-route-ecmp-gateway-health.yaml',
      ]),
    );
  });

  it.each(files)('%s applies (placeholders replaced by a gateway address, as the README says)', async (file) => {
    const text = readFileSync(path.join(EXAMPLES, file), 'utf8').replaceAll(PLACEHOLDER, '10.116.0.5');
    const result = await kubectl(['apply', '-f', '-'], text);
    expect(result.code, result.stderr).toBe(0);
  });

  it('refuses an example whose placeholder was not replaced, naming spec.gateway', async () => {
    const text = readFileSync(path.join(EXAMPLES, 'static-route-ifconfig.me.yaml'), 'utf8').replace('ifconfig.me', 'x');
    const result = await kubectl(['apply', '-f', '-'], text);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `spec.gateway: Invalid value: "string": gateway "${PLACEHOLDER}" is not an IP address (e.g. 10.116.0.5)`,
    );
  });

  it('shows DESTINATIONS, GATEWAY (gateway or gateways), READY and AGE', async () => {
    const result = await kubectl(['get', 'sr']);
    expect(result.stdout).toMatch(/^NAME\s+DESTINATIONS\s+GATEWAY\s+READY\s+AGE/);
    expect(result.stdout).toMatch(/static-route-ifconfig.me\s+\["34.160.111.145"\]\s+10.116.0.5\s/);
    expect(result.stdout).toMatch(
      /static-route-ecmp\s+\["198.51.100.0\/24","203.0.113.0\/24"\]\s+\["10.116.0.5","10.116.0.12"\]/,
    );
  });
});

/** The CRD's message for a matchLabels key that is not a label key (after the key). */
const KEY_MESSAGE =
  'is not a valid label key: a label key is an optional DNS subdomain prefix of at most 253 characters';
/** The CRD's explanation of an IPv4-mapped IPv6 address (after the value). */
const MAPPED =
  'is an IPv4-mapped IPv6 address, which is not accepted: the kernel would route it as IPv6 while the address is IPv4; ' +
  'write it as IPv4';
const UNICAST = '; a gateway must be a unicast address';
const NOT_IP = 'is not an IP address or CIDR (e.g. 34.160.111.145, 10.0.0.0/8 or 2001:db8::/32)';
/** A DNS subdomain of exactly 253 characters (the longest label key prefix). */
const PREFIX_253 = `${'a'.repeat(61)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
const NAME_63 = `N${'x'.repeat(61)}9`;

const many = <T>(count: number, make: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => make(i));

/** The largest object the CRD admits: every list at its limit, every entry at its maximal length. */
const LARGEST = {
  destinations: many(2000, (i) => `2001:db8:${i.toString(16)}:ffff:ffff:ffff:ffff:ff00/120`),
  gateways: many(16, (i) => `fd00:116::${i + 1}`),
  nodeSelector: {
    matchLabels: Object.fromEntries(many(64, (i) => [`${PREFIX_253}/${NAME_63.slice(0, 60)}${100 + i}`, NAME_63])),
    matchExpressions: many(32, (i) => ({
      key: `${PREFIX_253}/${NAME_63.slice(0, 60)}${200 + i}`,
      operator: 'In',
      values: many(256, (j) => `${NAME_63.slice(0, 60)}${100 + j}`),
    })),
  },
};

/** Refusal cases about `spec.nodeSelector`, on an otherwise valid spec. */
function selectorCases(cases: Array<[string, unknown, string]>): Array<[string, unknown, string]> {
  return cases.map(([name, nodeSelector, message]) => [
    `nodeSelector ${name}`,
    { destinations: ['1.1.1.1'], gateway: '10.0.0.1', nodeSelector },
    message,
  ]);
}

describe('validation at admission', () => {
  const refused: Array<[string, unknown, string]> = [
    [
      'no gateway',
      { destinations: ['34.160.111.145'] },
      'spec: Invalid value: "object": exactly one of spec.gateway or spec.gateways must be set (neither is)',
    ],
    [
      'gateway and gateways',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1', gateways: ['10.0.0.2'] },
      'spec: Invalid value: "object": exactly one of spec.gateway or spec.gateways must be set (both are)',
    ],
    ['no destinations', { gateway: '10.0.0.1' }, 'spec.destinations: Required value'],
    ['empty destinations', { destinations: [], gateway: '10.0.0.1' }, 'spec.destinations: Invalid value: 0'],
    [
      'gatewayHealth.check not Enabled or Disabled',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', '10.0.0.2'], gatewayHealth: { check: 'enabled' } },
      'spec.gatewayHealth.check: Invalid value: "string": "enabled" is not one of Enabled, Disabled',
    ],
    [
      'gatewayHealth.whenAllDown not Keep or Withdraw',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1', gatewayHealth: { whenAllDown: 'Drop' } },
      'spec.gatewayHealth.whenAllDown: Invalid value: "string": "Drop" is not one of Keep, Withdraw',
    ],
    // Issue 12: every CEL refusal names the value it refuses.
    [
      'malformed IPv4',
      { destinations: ['34.160.111.1455'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "34.160.111.1455" ${NOT_IP}`,
    ],
    [
      'octet out of range',
      { destinations: ['1.1.1.1', '256.1.1.1'], gateway: '10.0.0.1' },
      `spec.destinations[1]: Invalid value: "string": destination "256.1.1.1" ${NOT_IP}`,
    ],
    [
      'leading zeros',
      { destinations: ['010.1.1.1'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "010.1.1.1" ${NOT_IP}`,
    ],
    [
      'hostname',
      { destinations: ['ifconfig.me'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "ifconfig.me" ${NOT_IP}`,
    ],
    [
      'malformed IPv6',
      { destinations: ['2001:db8::g'], gateway: 'fd00::1' },
      `spec.destinations[0]: Invalid value: "string": destination "2001:db8::g" ${NOT_IP}`,
    ],
    [
      'IPv6 zone',
      { destinations: ['fe80::1%eth0'], gateway: 'fd00::1' },
      `spec.destinations[0]: Invalid value: "string": destination "fe80::1%eth0" ${NOT_IP}`,
    ],
    [
      'prefix too long',
      { destinations: ['10.0.0.0/33'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "10.0.0.0/33" ${NOT_IP}`,
    ],
    // Issue 12: IPv4-mapped IPv6 is an address, and is told why it is refused, in any spelling.
    [
      'IPv4-mapped IPv6 destination',
      { destinations: ['::ffff:1.2.3.4'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "::ffff:1.2.3.4" ${MAPPED} (1.2.3.4)`,
    ],
    [
      'IPv4-mapped IPv6 destination in hex, upper case',
      { destinations: ['::FFFF:102:304'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "::FFFF:102:304" ${MAPPED}`,
    ],
    [
      'IPv4-mapped IPv6 CIDR, uncompressed',
      { destinations: ['0:0:0:0:0:ffff:1.2.3.0/120'], gateway: '10.0.0.1' },
      `spec.destinations[0]: Invalid value: "string": destination "0:0:0:0:0:ffff:1.2.3.0/120" ${MAPPED}`,
    ],
    [
      'IPv4-mapped IPv6 gateway',
      { destinations: ['1.2.3.4'], gateway: '::ffff:10.116.0.5' },
      `spec.gateway: Invalid value: "string": gateway "::ffff:10.116.0.5" ${MAPPED} (10.116.0.5)`,
    ],
    [
      'IPv4-mapped IPv6 in gateways',
      { destinations: ['1.2.3.4'], gateways: ['10.116.0.6', '::ffff:a74:5'] },
      `spec.gateways[1]: Invalid value: "string": gateway "::ffff:a74:5" ${MAPPED}`,
    ],
    [
      'host bits (IPv4)',
      { destinations: ['10.0.0.1/8'], gateway: '10.116.0.5' },
      'spec.destinations[0]: Invalid value: "string": destination "10.0.0.1/8" has host bits set; use the network ' +
        'address (e.g. 10.0.0.0/8, not 10.0.0.1/8)',
    ],
    [
      'host bits (IPv6)',
      { destinations: ['2001:db8::1/32'], gateway: 'fd00::1' },
      'spec.destinations[0]: Invalid value: "string": destination "2001:db8::1/32" has host bits set',
    ],
    [
      'duplicate destination',
      { destinations: ['1.1.1.1', '1.1.1.1'], gateway: '10.0.0.1' },
      'spec.destinations[1]: Duplicate value: "1.1.1.1"',
    ],
    [
      'IPv6 destination, IPv4 gateway',
      { destinations: ['1.1.1.1', '2001:db8::/32'], gateway: '10.0.0.1' },
      'spec.destinations: Invalid value: "object": destination "2001:db8::/32" is IPv6 but the gateway is IPv4 ' +
        "(every destination must be of the gateway's address family)",
    ],
    [
      'IPv4 destination, IPv6 gateways',
      { destinations: ['2001:db8::1', '1.1.1.1'], gateways: ['fd00::1'] },
      'spec.destinations: Invalid value: "object": destination "1.1.1.1" is IPv4 but the gateways are IPv6 ' +
        "(every destination must be of the gateways' address family)",
    ],
    [
      'too many destinations',
      { destinations: many(2001, (i) => `198.18.${i >> 8}.${i & 255}`), gateway: '10.0.0.1' },
      'spec.destinations: Too many: 2001: must have at most 2000 items',
    ],
    [
      'malformed gateway',
      { destinations: ['1.1.1.1'], gateway: '10.0.0' },
      'spec.gateway: Invalid value: "string": gateway "10.0.0" is not an IP address (e.g. 10.116.0.5)',
    ],
    [
      'gateway as CIDR',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1/32' },
      'spec.gateway: Invalid value: "string": gateway "10.0.0.1/32" is not an IP address',
    ],
    [
      'placeholder gateway',
      { destinations: ['1.1.1.1'], gateway: PLACEHOLDER },
      `spec.gateway: Invalid value: "string": gateway "${PLACEHOLDER}" is not an IP address`,
    ],
    [
      'loopback gateway',
      { destinations: ['1.1.1.1'], gateway: '127.0.0.1' },
      `spec.gateway: Invalid value: "string": gateway "127.0.0.1" is a loopback address${UNICAST}`,
    ],
    [
      'link-local gateway',
      { destinations: ['1.1.1.1'], gateway: '169.254.0.1' },
      'spec.gateway: Invalid value: "string": gateway "169.254.0.1" is a link-local address (not usable without ' +
        `an interface)${UNICAST}`,
    ],
    [
      'multicast gateway',
      { destinations: ['2001:db8::/32'], gateway: 'ff02::1' },
      `spec.gateway: Invalid value: "string": gateway "ff02::1" is a multicast address${UNICAST}`,
    ],
    [
      'unspecified gateway',
      { destinations: ['1.1.1.1'], gateway: '0.0.0.0' },
      `spec.gateway: Invalid value: "string": gateway "0.0.0.0" is the unspecified address${UNICAST}`,
    ],
    [
      'broadcast gateway',
      { destinations: ['1.1.1.1'], gateway: '255.255.255.255' },
      `spec.gateway: Invalid value: "string": gateway "255.255.255.255" is the limited broadcast address${UNICAST}`,
    ],
    // isGlobalUnicast() accepts 0.0.0.0/8 other than 0.0.0.0; the operator's parser never did.
    [
      '"this network" gateway',
      { destinations: ['1.1.1.1'], gateways: ['0.1.2.3'] },
      `spec.gateways[0]: Invalid value: "string": gateway "0.1.2.3" is in "this network" (0.0.0.0/8)${UNICAST}`,
    ],
    ['empty gateways', { destinations: ['1.1.1.1'], gateways: [] }, 'spec.gateways: Invalid value: 0'],
    [
      'malformed gateways entry',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', 'x'] },
      'spec.gateways[1]: Invalid value: "string": gateway "x" is not an IP address',
    ],
    [
      'duplicate gateways',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', '10.0.0.1'] },
      'spec.gateways[1]: Duplicate value',
    ],
    [
      'mixed gateway families',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', 'fd00::1'] },
      'spec.gateways: Invalid value: "object": gateway "fd00::1" is IPv6 but gateway "10.0.0.1" is IPv4 (all ' +
        'gateways must be of one address family)',
    ],
    [
      'too many gateways',
      { destinations: ['1.1.1.1'], gateways: many(17, (i) => `10.0.0.${i + 1}`) },
      'spec.gateways: Too many: 17: must have at most 16 items',
    ],
    [
      'nodeSelector In without values',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for operator In (non-empty',
    ],
    [
      'nodeSelector Exists with values',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be empty for operator Exists (non-empty',
    ],
    [
      'nodeSelector bad operator',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Equals' }] },
      },
      'spec.nodeSelector.matchExpressions[0].operator: Unsupported value: "Equals"',
    ],
    [
      'nodeSelector matchLabels not strings',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1', nodeSelector: { matchLabels: { a: 1 } } },
      'spec.nodeSelector.matchLabels.a: Invalid value',
    ],
    [
      'nodeSelector NotIn with an empty list',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for operator NotIn',
    ],
    [
      'nodeSelector DoesNotExist with values',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be empty for operator DoesNotExist',
    ],
    // B4: label keys and values with the syntax Kubernetes requires of its own selectors. One case per rule: each
    // fails if its rule is removed (the messages tell the rules apart).
    ...selectorCases([
      [
        'matchLabels value that is not a label value (pattern)',
        { matchLabels: { 'kubernetes.io/os': 'linux!!' } },
        'spec.nodeSelector.matchLabels.kubernetes.io/os: Invalid value: "linux!!": spec.nodeSelector.matchLabels.kubernetes.io/os in body should match',
      ],
      [
        'matchLabels value of 64 characters (maxLength)',
        { matchLabels: { zone: 'v'.repeat(64) } },
        'spec.nodeSelector.matchLabels.zone: Too long: may not be more than 63 bytes',
      ],
      [
        'matchLabels key that is not a label key (CEL syntax)',
        { matchLabels: { 'bad key/with/slashes': 'v' } },
        `spec.nodeSelector.matchLabels: Invalid value: "object": "bad key/with/slashes" ${KEY_MESSAGE}`,
      ],
      [
        'matchLabels key whose name has 64 characters (CEL syntax)',
        { matchLabels: { ok: 'v', [`example.com/${'n'.repeat(64)}`]: 'v' } },
        `spec.nodeSelector.matchLabels: Invalid value: "object": "example.com/${'n'.repeat(64)}" ${KEY_MESSAGE}`,
      ],
      [
        'matchLabels key whose prefix has 254 characters (CEL prefix length)',
        { matchLabels: { [`${PREFIX_253}x/name`]: 'v' } },
        `spec.nodeSelector.matchLabels: Invalid value: "object": "${PREFIX_253}x/name" ${KEY_MESSAGE}`,
      ],
      [
        'matchLabels with 65 labels (maxProperties)',
        { matchLabels: Object.fromEntries(many(65, (i) => [`label-${i}`, 'v'])) },
        'spec.nodeSelector.matchLabels: Too many: 65: must have at most 64 items',
      ],
      [
        'matchExpressions key that is not a label key (pattern)',
        { matchExpressions: [{ key: 'not a key!!', operator: 'Exists' }] },
        'spec.nodeSelector.matchExpressions[0].key: Invalid value: "not a key!!": spec.nodeSelector.matchExpressions[0].key in body should match',
      ],
      [
        'matchExpressions key whose prefix has 254 characters (CEL prefix length)',
        { matchExpressions: [{ key: `${PREFIX_253}x/name`, operator: 'Exists' }] },
        `spec.nodeSelector.matchExpressions[0].key: Invalid value: "string": "${PREFIX_253}x/name" is not a valid label ` +
          'key: the prefix before "/" must be at most 253 characters',
      ],
      [
        'matchExpressions value that is not a label value (pattern)',
        { matchExpressions: [{ key: 'zone', operator: 'In', values: ['fra1', 'bad value'] }] },
        'spec.nodeSelector.matchExpressions[0].values[1]: Invalid value: "bad value": spec.nodeSelector.matchExpressions[0].values[1] in body should match',
      ],
      [
        'matchExpressions value of 64 characters (maxLength)',
        { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['v'.repeat(64)] }] },
        'spec.nodeSelector.matchExpressions[0].values[0]: Too long: may not be more than 63 bytes',
      ],
    ]),
  ];

  it(`has at least 25 refusal cases (${refused.length})`, () => expect(refused.length).toBeGreaterThanOrEqual(25));

  it.each(refused)('refuses %s', async (_name, spec, message) => {
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], staticRoute('bad', spec));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it.each<[string, unknown]>([
    ['IPv6 with ECMP', { destinations: ['2001:db8::/32', '2001:db8:1::1'], gateways: ['fd00::5', 'fd00::c'] }],
    ['upper-case IPv6', { destinations: ['2001:DB8::/32'], gateway: 'FD00::5' }],
    [
      'IPv6 that only looks like IPv4-mapped (the mapped rule does not overreach)',
      { destinations: ['::fffe:1.2.3.4', '64:ff9b::1.2.3.4', 'ffff::/16', '1::ffff:1.2.3.4'], gateway: 'fd00::ffff' },
    ],
    [
      'gatewayHealth with both fields',
      {
        destinations: ['1.1.1.1'],
        gateways: ['10.0.0.1', '10.0.0.2'],
        gatewayHealth: { check: 'Enabled', whenAllDown: 'Withdraw' },
      },
    ],
    [
      'gatewayHealth check Disabled',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1', gatewayHealth: { check: 'Disabled' } },
    ],
    [
      'default route (refused later by the operator unless allowed)',
      { destinations: ['0.0.0.0/0'], gateway: '10.0.0.1' },
    ],
    [
      '2000 IPv6 destinations at maximal length and 16 gateways (CEL cost within budget)',
      {
        destinations: many(2000, (i) => `2001:db8:${i.toString(16)}:ffff:ffff:ffff:ffff:ff00/120`),
        gateways: many(16, (i) => `fd00:116::${i + 1}`),
      },
    ],
    [
      'label keys and values at the limits of their syntax',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: {
          matchLabels: { [`${PREFIX_253}/${NAME_63}`]: NAME_63, 'kubernetes.io/os': '', 'Zone_1.a-b': 'A.b-c_d' },
          matchExpressions: [
            { key: `${PREFIX_253}/${NAME_63}`, operator: 'In', values: ['', NAME_63] },
            { key: 'node-role.kubernetes.io/egress', operator: 'Exists' },
          ],
        },
      },
    ],
    [
      '2000 destinations, 16 gateways and the largest nodeSelector (64 labels, 32 expressions of 256 values, every ' +
        'key and value at its maximal length: CEL cost within budget)',
      LARGEST,
    ],
  ])('accepts %s', async (_name, spec) => {
    // `create`, not `apply`: the largest object would not fit in apply's last-applied-configuration annotation.
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], staticRoute('good', spec));
    expect(result.code, result.stderr).toBe(0);
  });

  // The messageExpressions that search the lists run only when their rule fails: their runtime cost is shown here,
  // on the largest object, with the offending entry last.
  it('names the offending entry of the largest object', async () => {
    const spec = {
      ...LARGEST,
      destinations: [...LARGEST.destinations.slice(0, 1999), '198.51.100.7'],
      gateways: [...LARGEST.gateways.slice(0, 15), '10.116.0.5'],
      nodeSelector: {
        ...LARGEST.nodeSelector,
        matchLabels: Object.fromEntries([
          ...Object.entries(LARGEST.nodeSelector.matchLabels).slice(1),
          ['bad key/x', 'v'],
        ]),
      },
    };
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], staticRoute('bad', spec));
    expect(result.code).not.toBe(0);
    for (const message of [
      'spec.destinations: Invalid value: "object": destination "198.51.100.7" is IPv4 but the gateways are IPv6',
      'spec.gateways: Invalid value: "object": gateway "10.116.0.5" is IPv4 but gateway "fd00:116::1" is IPv6',
      `spec.nodeSelector.matchLabels: Invalid value: "object": "bad key/x" ${KEY_MESSAGE}`,
    ]) {
      expect(result.stderr).toContain(message);
    }
  });
});

/**
 * The CRD of the seed operator, which had no limits: objects stored under it may hold more destinations than the
 * current CRD admits.
 */
const SEED_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'staticroutes.networking.digitalocean.com' },
  spec: {
    group: 'networking.digitalocean.com',
    scope: 'Cluster',
    names: { kind: 'StaticRoute', listKind: 'StaticRouteList', plural: 'staticroutes', singular: 'staticroute' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                properties: { destinations: { type: 'array', items: { type: 'string' } }, gateway: { type: 'string' } },
              },
              status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
      },
    ],
  },
};

// The operator applies such objects as they are (see MAX_DESTINATIONS in src/logic/spec.ts). That is only sane if the
// API server, once the current CRD is installed, still lets the operator and the user work with them.
describe('an object stored before the 2000-destination limit, after the upgrade to this CRD', () => {
  const destinations = many(2500, (i) => `198.18.${i >> 8}.${i & 255}`);

  beforeAll(async () => {
    const removed = await kubectl(['delete', CRD_NAME, '--wait=true']);
    expect(removed.code, removed.stderr).toBe(0);
    const seed = await kubectl(['create', '-f', '-'], JSON.stringify(SEED_CRD));
    expect(seed.code, seed.stderr).toBe(0);
    await kubectl(['wait', '--for=condition=Established', CRD_NAME]);
    const created = await kubectl(
      ['create', '-f', '-'],
      staticRoute('old-huge', { destinations, gateway: '10.116.0.5' }),
    );
    expect(created.code, created.stderr).toBe(0);
    const upgraded = await kubectl(['apply', '-f', RELEASE]);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    const crd = await kubectl(['apply', '-f', CRD]);
    expect(crd.code, crd.stderr).toBe(0);
    await kubectl(['wait', '--for=condition=Established', CRD_NAME]);
  });

  afterAll(async () => {
    await kubectl(['patch', 'sr', 'old-huge', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await kubectl(['delete', 'sr', 'old-huge', '--wait=true']);
  });

  const patch = (args: string[], value: unknown) =>
    kubectl(['patch', 'sr', 'old-huge', ...args, '-p', JSON.stringify(value)]);

  it('is still served as stored', async () => {
    const result = await kubectl(['get', 'sr', 'old-huge', '-o', 'jsonpath={.spec.destinations[2499]}']);
    expect(result.stdout).toBe('198.18.9.195');
  });

  it("accepts the operator's writes: status and finalizers", async () => {
    const status = await patch(['--subresource=status', '--type=merge'], { status: { ready: '1/1' } });
    expect(status.code, status.stderr).toBe(0);
    const finalizer = await patch(['--type=merge'], { metadata: { finalizers: ['networking.digitalocean.com/test'] } });
    expect(finalizer.code, finalizer.stderr).toBe(0);
  });

  it('accepts a failover (a gateway change) while the list is left as it is', async () => {
    const result = await patch(['--type=merge'], { spec: { gateway: '10.116.0.12' } });
    expect(result.code, result.stderr).toBe(0);
  });

  it('refuses growing the list, and accepts bringing it within the limit', async () => {
    const grown = await patch(['--type=json'], [{ op: 'add', path: '/spec/destinations/-', value: '198.51.100.1' }]);
    expect(grown.code).not.toBe(0);
    expect(grown.stderr).toContain('spec.destinations: Too many: 2501: must have at most 2000 items');
    const trimmed = await patch(['--type=merge'], { spec: { destinations: destinations.slice(0, 2000) } });
    expect(trimmed.code, trimmed.stderr).toBe(0);
  });
});

describe('release', () => {
  it('kubectl delete -f removes what kubectl apply -f installed', async () => {
    await kubectl(['delete', 'staticroutes', '--all']);
    const deleted = await kubectl(['delete', '-f', RELEASE, '--wait=false']);
    expect(deleted.code, deleted.stderr).toBe(0);
    for (const line of [
      'customresourcedefinition.apiextensions.k8s.io "staticroutes.networking.digitalocean.com" deleted',
      'serviceaccount "k8s-staticroute-operator" deleted',
      'clusterrole.rbac.authorization.k8s.io "k8s-staticroute-operator" deleted',
      'clusterrolebinding.rbac.authorization.k8s.io "k8s-staticroute-operator" deleted',
      'daemonset.apps "k8s-staticroute-operator" deleted',
    ]) {
      expect(deleted.stdout).toContain(line);
    }
    const crd = await kubectl(['get', 'crd', 'staticroutes.networking.digitalocean.com']);
    expect(crd.stderr).toContain('NotFound');
    // The namespace's deletion is requested (finishing it is the namespace controller's job, absent here).
    const namespace = await kubectl(['get', 'namespace', 'static-routes', '-o', 'jsonpath={.status.phase}']);
    expect(namespace.stdout).toBe('Terminating');
  });
});
