/**
 * The CRD and the release against a real API server: every example applies, bad objects are refused at admission
 * with a message naming the field, the printer columns, and install/uninstall with the single release file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '@opkit/testbed';
import { REPO_DIR } from '../support/build.js';

const RELEASE = path.join(REPO_DIR, 'deploy/release/k8s-staticroute-operator-v1.0.0.yaml');
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
  await kubectl(['wait', '--for=condition=Established', 'crd/staticroutes.networking.digitalocean.com']);
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
    expect(result.stderr).toContain('spec.gateway: Invalid value');
    expect(result.stderr).toContain('must be an IP address');
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

/** The CRD's message for a matchLabels key that is not a label key. */
const KEY_MESSAGE = 'every key must be a label key: an optional DNS subdomain prefix of at most 253 characters';
/** A DNS subdomain of exactly 253 characters (the longest label key prefix). */
const PREFIX_253 = `${'a'.repeat(61)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
const NAME_63 = `N${'x'.repeat(61)}9`;

const many = <T>(count: number, make: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => make(i));

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
      'spec: Invalid value: "object": exactly one of spec.gateway or spec.gateways',
    ],
    [
      'gateway and gateways',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1', gateways: ['10.0.0.2'] },
      'exactly one of spec.gateway or spec.gateways',
    ],
    ['no destinations', { gateway: '10.0.0.1' }, 'spec.destinations: Required value'],
    ['empty destinations', { destinations: [], gateway: '10.0.0.1' }, 'spec.destinations: Invalid value: 0'],
    [
      'malformed IPv4',
      { destinations: ['34.160.111.1455'], gateway: '10.0.0.1' },
      'spec.destinations[0]: Invalid value: "string": must be an IP address or a CIDR',
    ],
    [
      'octet out of range',
      { destinations: ['1.1.1.1', '256.1.1.1'], gateway: '10.0.0.1' },
      'spec.destinations[1]: Invalid value',
    ],
    ['leading zeros', { destinations: ['010.1.1.1'], gateway: '10.0.0.1' }, 'spec.destinations[0]: Invalid value'],
    ['hostname', { destinations: ['ifconfig.me'], gateway: '10.0.0.1' }, 'spec.destinations[0]: Invalid value'],
    ['malformed IPv6', { destinations: ['2001:db8::g'], gateway: 'fd00::1' }, 'spec.destinations[0]: Invalid value'],
    ['IPv6 zone', { destinations: ['fe80::1%eth0'], gateway: 'fd00::1' }, 'spec.destinations[0]: Invalid value'],
    [
      'IPv4-mapped IPv6',
      { destinations: ['::ffff:1.2.3.4'], gateway: '10.0.0.1' },
      'spec.destinations[0]: Invalid value',
    ],
    ['prefix too long', { destinations: ['10.0.0.0/33'], gateway: '10.0.0.1' }, 'spec.destinations[0]: Invalid value'],
    [
      'host bits (IPv4)',
      { destinations: ['10.0.0.1/8'], gateway: '10.116.0.5' },
      'spec.destinations[0]: Invalid value: "string": CIDR has host bits set',
    ],
    [
      'host bits (IPv6)',
      { destinations: ['2001:db8::1/32'], gateway: 'fd00::1' },
      'spec.destinations[0]: Invalid value: "string": CIDR has host bits set',
    ],
    [
      'duplicate destination',
      { destinations: ['1.1.1.1', '1.1.1.1'], gateway: '10.0.0.1' },
      'spec.destinations[1]: Duplicate value',
    ],
    [
      'IPv6 destination, IPv4 gateway',
      { destinations: ['2001:db8::/32'], gateway: '10.0.0.1' },
      'spec.destinations: Invalid value: "object": every destination must be of the gateway\'s address family',
    ],
    [
      'IPv4 destination, IPv6 gateways',
      { destinations: ['1.1.1.1'], gateways: ['fd00::1'] },
      'spec.destinations: Invalid value: "object": every destination must be of the gateways\' address family',
    ],
    [
      'too many destinations',
      { destinations: many(2001, (i) => `198.18.${i >> 8}.${i & 255}`), gateway: '10.0.0.1' },
      'spec.destinations: Too many: 2001: must have at most 2000 items',
    ],
    [
      'malformed gateway',
      { destinations: ['1.1.1.1'], gateway: '10.0.0' },
      'spec.gateway: Invalid value: "string": must be an IP address',
    ],
    [
      'gateway as CIDR',
      { destinations: ['1.1.1.1'], gateway: '10.0.0.1/32' },
      'spec.gateway: Invalid value: "string": must be an IP address',
    ],
    [
      'placeholder gateway',
      { destinations: ['1.1.1.1'], gateway: PLACEHOLDER },
      'spec.gateway: Invalid value: "string": must be an IP address',
    ],
    [
      'loopback gateway',
      { destinations: ['1.1.1.1'], gateway: '127.0.0.1' },
      'spec.gateway: Invalid value: "string": must be a unicast address',
    ],
    [
      'link-local gateway',
      { destinations: ['1.1.1.1'], gateway: '169.254.0.1' },
      'spec.gateway: Invalid value: "string": must be a unicast address',
    ],
    [
      'multicast gateway',
      { destinations: ['2001:db8::/32'], gateway: 'ff02::1' },
      'spec.gateway: Invalid value: "string": must be a unicast address',
    ],
    ['empty gateways', { destinations: ['1.1.1.1'], gateways: [] }, 'spec.gateways: Invalid value: 0'],
    [
      'malformed gateways entry',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', 'x'] },
      'spec.gateways[1]: Invalid value: "string": must be an IP address',
    ],
    [
      'duplicate gateways',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', '10.0.0.1'] },
      'spec.gateways[1]: Duplicate value',
    ],
    [
      'mixed gateway families',
      { destinations: ['1.1.1.1'], gateways: ['10.0.0.1', 'fd00::1'] },
      'spec.gateways: Invalid value: "object": all gateways must be of one address family',
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
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for In and NotIn',
    ],
    [
      'nodeSelector Exists with values',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for In and NotIn, and empty',
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
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for In and NotIn',
    ],
    [
      'nodeSelector DoesNotExist with values',
      {
        destinations: ['1.1.1.1'],
        gateway: '10.0.0.1',
        nodeSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] },
      },
      'spec.nodeSelector.matchExpressions[0]: Invalid value: "object": values must be non-empty for In and NotIn, and empty',
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
        `spec.nodeSelector.matchLabels: Invalid value: "object": ${KEY_MESSAGE}`,
      ],
      [
        'matchLabels key whose name has 64 characters (CEL syntax)',
        { matchLabels: { [`example.com/${'n'.repeat(64)}`]: 'v' } },
        `spec.nodeSelector.matchLabels: Invalid value: "object": ${KEY_MESSAGE}`,
      ],
      [
        'matchLabels key whose prefix has 254 characters (CEL prefix length)',
        { matchLabels: { [`${PREFIX_253}x/name`]: 'v' } },
        `spec.nodeSelector.matchLabels: Invalid value: "object": ${KEY_MESSAGE}`,
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
        `spec.nodeSelector.matchExpressions[0].key: Invalid value: "string": the prefix before '/' must be at most 253 characters`,
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
      {
        destinations: many(2000, (i) => `2001:db8:${i.toString(16)}:ffff:ffff:ffff:ffff:ff00/120`),
        gateways: many(16, (i) => `fd00:116::${i + 1}`),
        nodeSelector: {
          matchLabels: Object.fromEntries(
            many(64, (i) => [`${PREFIX_253}/${NAME_63.slice(0, 60)}${100 + i}`, NAME_63]),
          ),
          matchExpressions: many(32, (i) => ({
            key: `${PREFIX_253}/${NAME_63.slice(0, 60)}${200 + i}`,
            operator: 'In',
            values: many(256, (j) => `${NAME_63.slice(0, 60)}${100 + j}`),
          })),
        },
      },
    ],
  ])('accepts %s', async (_name, spec) => {
    // `create`, not `apply`: the largest object would not fit in apply's last-applied-configuration annotation.
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], staticRoute('good', spec));
    expect(result.code, result.stderr).toBe(0);
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
