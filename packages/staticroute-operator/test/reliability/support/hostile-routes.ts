/**
 * A seeded generator of malformed or hostile StaticRoutes (pure: no I/O), for the bad-input reliability test.
 *
 * Every case is built so that nothing of it may reach a routing table: either the API server must refuse it at
 * admission (OpenAPI, CEL, strict field validation, object meta rules), or the operator must accept nothing of it and
 * report the object as Refused or Failed. Hostile objects therefore never mix in a usable destination, except where
 * admission must refuse them anyway (then a usable destination would show that admission let it through).
 *
 * Network safety: every usable-looking IPv4 destination is in 34.0.0.0/8 and every IPv6 one in 2001:db8::/32; they
 * are only ever written into the simulated nodes' tables.
 */
import { publicHost, seededRandom, type Random } from './random.js';

/** Kinds of bad input. */
export const HOSTILE_CATEGORIES = [
  'malformed-destination',
  'malformed-gateway',
  'host-bits',
  'default-route',
  'mixed-family',
  'loopback',
  'multicast',
  'link-local',
  'api-endpoint',
  'node-subnet',
  'too-many',
  'huge-name',
  'unknown-field',
  'wrong-type',
  'duplicate',
  'unreachable-gateway',
  'bad-selector',
  'user-status',
] as const;

export type HostileCategory = (typeof HOSTILE_CATEGORIES)[number];

/** What the generator needs to know about the cluster it attacks. */
export interface HostileTarget {
  /** An IPv4 gateway the nodes can reach. */
  gatewayV4: string;
  /** An IPv6 gateway the nodes can reach. */
  gatewayV6: string;
  /** The nodes' connected IPv4 subnet, e.g. `10.116.0.0/20`. */
  nodeSubnetV4: string;
  /** The nodes' connected IPv6 subnet, e.g. `fd00:116::/64`. */
  nodeSubnetV6: string;
  /** The nodes' own addresses. */
  nodeAddresses: string[];
  /** Node names (for status a user forges). */
  nodeNames: string[];
  /** The API server endpoint the nodes use, e.g. `10.116.0.1`. */
  apiServerAddress: string;
  apiServerAddressV6: string;
}

/** One hostile object. */
export interface HostileCase {
  /** Object name (invalid on purpose in some `huge-name` cases). */
  name: string;
  category: HostileCategory;
  /** What is wrong, for reports. */
  description: string;
  /** The field at fault: an admission error must name it (`spec.destinations`, `metadata.name`, ...). */
  field: string;
  /** The whole object, as sent to the API server. */
  manifest: Record<string, unknown>;
  /** Status a user writes through the status subresource once the object exists (`user-status`). */
  userStatus?: Record<string, unknown>;
}

/** Options of {@link generateHostileRoutes}. */
export interface HostileOptions {
  seed: number;
  /** At least this many cases (default 120). Every category appears at least once. */
  count?: number;
  /** Name prefix (default `fuzz`). */
  prefix?: string;
}

interface Draft {
  description: string;
  field: string;
  spec?: unknown;
  /** Replaces the whole object when set (wrong top-level types, unknown top-level fields). */
  extra?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** Overrides the generated name. */
  name?: string;
  userStatus?: Record<string, unknown>;
}

type Template = (random: Random, target: HostileTarget) => Draft;

const v6Host = (random: Random): string => `2001:db8:${random.int(1, 0xfffe).toString(16)}::${random.int(1, 0xfff).toString(16)}`;

/** Text that looks like an address but is not one. */
const MALFORMED_DESTINATIONS = [
  '300.1.2.3',
  '34.1.2',
  '34.1.2.3.4',
  '34.1.2.3/33',
  '34.1.2.3/',
  '/24',
  '34.1.2.3/-1',
  'abc',
  '',
  ' 34.1.2.3',
  '34.1.2.3 ',
  '34.1.2.3/24/8',
  '34,1,2,3',
  '0x22.1.2.3',
  '34.1.2.3%eth0',
  '2001:db8:::1',
  '2001:db8::g',
  '1:2:3:4:5:6:7:8:9',
  '34.1.2.3\n',
  '34.1.2.3/8x',
  '\uff13\uff14.1.2.3',
  '-34.1.2.3',
  '34.01.2.3',
  '34.1.2.3:80',
  'http://34.1.2.3',
  '34.1.2.3/024',
  '\u0000',
  '34.1.2.3;rm -rf /',
];

const MALFORMED_GATEWAYS = [
  '10.116.0.300',
  'gateway',
  '',
  '10.116.0',
  '10.116.0.5/32',
  '10.116.0.5 ',
  'fe80::1%eth0',
  '0x0a.116.0.5',
  '10.116.0.05',
  '$(reboot)',
];

const TEMPLATES: Record<HostileCategory, Template> = {
  'malformed-destination': (random, target) => {
    const bad = random.pick(MALFORMED_DESTINATIONS);
    const destinations = random.shuffle([bad, ...Array.from({ length: random.int(0, 2) }, () => publicHost(random))]);
    return {
      description: `destination ${JSON.stringify(bad)}`,
      field: 'spec.destinations',
      spec: { destinations, gateway: target.gatewayV4 },
    };
  },
  'malformed-gateway': (random, target) => {
    const bad = random.pick(MALFORMED_GATEWAYS);
    if (random.chance(0.5)) {
      return { description: `gateway ${JSON.stringify(bad)}`, field: 'spec.gateway', spec: { destinations: [publicHost(random)], gateway: bad } };
    }
    return {
      description: `gateways [${JSON.stringify(bad)}]`,
      field: 'spec.gateways',
      spec: { destinations: [publicHost(random)], gateways: random.shuffle([target.gatewayV4, bad]) },
    };
  },
  'host-bits': (random, target) => {
    if (random.chance(0.3)) {
      const length = random.int(16, 120);
      return {
        description: 'IPv6 CIDR with host bits',
        field: 'spec.destinations',
        spec: { destinations: [`2001:db8::${random.int(1, 0xffff).toString(16)}/${length}`], gateway: target.gatewayV6 },
      };
    }
    const length = random.int(8, 30);
    // The last octet is odd, so at least one host bit is set for every length up to 31.
    const text = `34.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(0, 127) * 2 + 1}/${length}`;
    return { description: `CIDR with host bits ${text}`, field: 'spec.destinations', spec: { destinations: [text], gateway: target.gatewayV4 } };
  },
  'default-route': (random, target) => {
    const v6 = random.chance(0.4);
    const destinations = [v6 ? '::/0' : '0.0.0.0/0'];
    const gateway = v6 ? target.gatewayV6 : target.gatewayV4;
    const spec = random.chance(0.3) ? { destinations, gateways: [gateway] } : { destinations, gateway };
    return { description: `default route ${destinations[0]} (not allowed)`, field: 'spec.destinations', spec };
  },
  'mixed-family': (random, target) => {
    switch (random.int(0, 3)) {
      case 0:
        return { description: 'IPv6 destination, IPv4 gateway', field: 'spec.destinations', spec: { destinations: [v6Host(random)], gateway: target.gatewayV4 } };
      case 1:
        return { description: 'IPv4 destination, IPv6 gateway', field: 'spec.destinations', spec: { destinations: [publicHost(random)], gateway: target.gatewayV6 } };
      case 2:
        return {
          description: 'IPv4 and IPv6 gateways together',
          field: 'spec.gateways',
          spec: { destinations: [publicHost(random)], gateways: random.shuffle([target.gatewayV4, target.gatewayV6]) },
        };
      default:
        return {
          description: 'IPv4 and IPv6 destinations together',
          field: 'spec.destinations',
          spec: { destinations: random.shuffle([publicHost(random), v6Host(random)]), gateway: target.gatewayV4 },
        };
    }
  },
  loopback: (random, target) => {
    const choice = random.int(0, 4);
    if (choice === 0) return { description: 'loopback gateway', field: 'spec.gateway', spec: { destinations: [publicHost(random)], gateway: '127.0.0.1' } };
    if (choice === 1) return { description: 'IPv6 loopback destination', field: 'spec.destinations', spec: { destinations: ['::1'], gateway: target.gatewayV6 } };
    const destination = random.pick(['127.0.0.1', '127.0.0.0/8', `127.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`]);
    return { description: `loopback destination ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 } };
  },
  multicast: (random, target) => {
    const choice = random.int(0, 4);
    if (choice === 0) return { description: 'multicast gateway', field: 'spec.gateway', spec: { destinations: [publicHost(random)], gateway: '224.0.0.5' } };
    if (choice === 1) {
      return { description: 'IPv6 multicast destination', field: 'spec.destinations', spec: { destinations: [random.pick(['ff02::1', 'ff00::/8'])], gateway: target.gatewayV6 } };
    }
    const destination = random.pick(['224.0.0.1', '239.255.255.250', '224.0.0.0/4', `${random.int(224, 239)}.1.2.0/24`]);
    return { description: `multicast destination ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 } };
  },
  'link-local': (random, target) => {
    const choice = random.int(0, 4);
    if (choice === 0) return { description: 'link-local gateway', field: 'spec.gateway', spec: { destinations: [publicHost(random)], gateway: random.pick(['169.254.1.1', 'fe80::1']) } };
    if (choice === 1) return { description: 'IPv6 link-local destination', field: 'spec.destinations', spec: { destinations: [random.pick(['fe80::/64', 'fe80::1'])], gateway: target.gatewayV6 } };
    const destination = random.pick(['169.254.169.254', '169.254.0.0/16', `169.254.${random.int(0, 255)}.0/24`]);
    return { description: `link-local destination ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 } };
  },
  'api-endpoint': (random, target) => {
    if (random.chance(0.3)) {
      return { description: 'the API endpoint (IPv6)', field: 'spec.destinations', spec: { destinations: [target.apiServerAddressV6], gateway: target.gatewayV6 } };
    }
    const destination = random.pick([target.apiServerAddress, `${target.apiServerAddress}/32`]);
    return { description: `the API endpoint ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 } };
  },
  'node-subnet': (random, target) => {
    const [base] = target.nodeSubnetV4.split('/') as [string];
    const octets = base.split('.').map(Number);
    const inside = `${octets[0]}.${octets[1]}.${random.int(0, 15)}.${random.int(1, 254)}`;
    const choice = random.int(0, 5);
    if (choice === 5) {
      const destination = random.pick([target.nodeSubnetV6, ...target.nodeAddresses.filter((address) => address.includes(':'))]);
      return { description: `the nodes' IPv6 subnet/address ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV6 } };
    }
    const destination = [
      target.nodeSubnetV4,
      `${octets[0]}.${octets[1]}.0.0/16`,
      `${octets[0]}.0.0.0/8`,
      inside,
      random.pick(target.nodeAddresses.filter((address) => !address.includes(':'))),
    ][choice] as string;
    return { description: `the nodes' subnet/address ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 } };
  },
  'too-many': (random, target) => {
    if (random.chance(0.25)) {
      const gateways = Array.from({ length: 17 }, (_, index) => `10.116.1.${index + 1}`);
      return { description: '17 gateways (limit 16)', field: 'spec.gateways', spec: { destinations: [publicHost(random)], gateways } };
    }
    const count = random.pick([2001, 10_000]);
    const destinations = uniqueHosts(random, count);
    return { description: `${count} destinations (limit 2000)`, field: 'spec.destinations', spec: { destinations, gateway: target.gatewayV4 } };
  },
  'huge-name': (random, target) => {
    const spec = { destinations: [publicHost(random)], gateway: target.gatewayV4 };
    switch (random.int(0, 4)) {
      case 0:
        return { description: 'name of 254+ characters', field: 'metadata.name', name: 'x'.repeat(random.int(254, 400)), spec };
      case 1:
        return { description: 'name with invalid characters', field: 'metadata.name', name: random.pick(['Bad_Name', 'a..b', '-lead', 'trail-', 'sp ace', 'ünïcode']), spec };
      case 2:
        return {
          description: 'annotation of 300 KiB',
          field: 'metadata.annotations',
          metadata: { annotations: { 'example.com/blob': 'y'.repeat(300 * 1024) } },
          spec,
        };
      case 3:
        return { description: 'label value of 64+ characters', field: 'metadata.labels', metadata: { labels: { big: 'z'.repeat(random.int(64, 200)) } }, spec };
      default:
        // A legal name at the 253-character limit, on an object the operator must refuse: stresses Events and
        // status (whose names and messages derive from the object's name).
        return {
          description: 'name of exactly 253 characters (legal) with a loopback destination',
          field: 'spec.destinations',
          name: maxLengthName(random),
          spec: { destinations: ['127.0.0.53'], gateway: target.gatewayV4 },
        };
    }
  },
  'unknown-field': (random, target) => {
    const spec: Record<string, unknown> = { destinations: [publicHost(random)], gateway: target.gatewayV4 };
    const choice = random.int(0, 4);
    if (choice === 0) return { description: 'unknown spec field', field: 'spec.via', spec: { ...spec, via: '10.116.0.12' } };
    if (choice === 1) {
      const { destinations, ...rest } = spec;
      return { description: 'misspelled destinations', field: 'spec.destination', spec: { ...rest, destination: destinations } };
    }
    if (choice === 2) return { description: 'unknown top-level field', field: 'extra', spec, extra: { extra: { evil: true } } };
    if (choice === 3) return { description: 'unknown selector field', field: 'spec.nodeSelector.matchFields', spec: { ...spec, nodeSelector: { matchFields: [{ key: 'x' }] } } };
    return { description: 'unknown metadata field', field: 'metadata.bogus', metadata: { bogus: 'x' }, spec };
  },
  'wrong-type': (random, target) => {
    const host = publicHost(random);
    const variants: Array<[string, string, unknown]> = [
      ['destinations is a string', 'spec.destinations', { destinations: host, gateway: target.gatewayV4 }],
      ['destinations are numbers', 'spec.destinations', { destinations: [34, 1, 2, 3], gateway: target.gatewayV4 }],
      ['destination is null', 'spec.destinations', { destinations: [null], gateway: target.gatewayV4 }],
      ['destination is an object', 'spec.destinations', { destinations: [{ ip: host }], gateway: target.gatewayV4 }],
      ['destination is a boolean', 'spec.destinations', { destinations: [true], gateway: target.gatewayV4 }],
      ['gateway is a number', 'spec.gateway', { destinations: [host], gateway: 168_165_381 }],
      ['gateway is a list', 'spec.gateway', { destinations: [host], gateway: [target.gatewayV4] }],
      ['gateways is a string', 'spec.gateways', { destinations: [host], gateways: target.gatewayV4 }],
      ['nodeSelector is a string', 'spec.nodeSelector', { destinations: [host], gateway: target.gatewayV4, nodeSelector: 'all' }],
      ['matchLabels value is a number', 'spec.nodeSelector.matchLabels', { destinations: [host], gateway: target.gatewayV4, nodeSelector: { matchLabels: { a: 1 } } }],
      ['spec is a string', 'spec', 'route everything'],
      ['spec is a list', 'spec', [host]],
      ['spec is missing', 'spec', undefined],
    ];
    const [description, field, spec] = random.pick(variants);
    return { description, field, spec };
  },
  duplicate: (random, target) => {
    const host = publicHost(random);
    if (random.chance(0.4)) {
      return { description: 'the same destination twice', field: 'spec.destinations', spec: { destinations: [host, host], gateway: target.gatewayV4 } };
    }
    if (random.chance(0.5)) {
      return { description: 'the same destination written two ways', field: 'spec.destinations', spec: { destinations: [host, `${host}/32`], gateway: target.gatewayV4 } };
    }
    const v6 = v6Host(random);
    return { description: 'the same IPv6 destination in two cases', field: 'spec.destinations', spec: { destinations: [v6, v6.toUpperCase()], gateway: target.gatewayV6 } };
  },
  'unreachable-gateway': (random) => {
    const v6 = random.chance(0.25);
    const gateway = v6 ? `2001:db8:ffff::${random.int(1, 0xfff).toString(16)}` : random.pick([`10.117.${random.int(0, 255)}.${random.int(1, 254)}`, `192.0.2.${random.int(1, 254)}`]);
    const destinations = v6 ? [v6Host(random)] : [publicHost(random)];
    return { description: `gateway ${gateway} not on any connected network`, field: 'spec.gateway', spec: { destinations, gateway } };
  },
  'bad-selector': (random, target) => {
    const base = { destinations: [publicHost(random)], gateway: target.gatewayV4 };
    switch (random.int(0, 4)) {
      case 0:
        return { description: 'unknown selector operator', field: 'spec.nodeSelector.matchExpressions[0].operator', spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Maybe', values: ['x'] }] } } };
      case 1:
        return { description: 'In without values', field: 'spec.nodeSelector.matchExpressions[0]', spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } } };
      case 2:
        return { description: 'selector key that is not a label key', field: 'spec.nodeSelector', spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'not a key!!', operator: 'Exists' }] } } };
      case 3:
        return { description: 'matchLabels key that is not a label key', field: 'spec.nodeSelector', spec: { ...base, nodeSelector: { matchLabels: { 'bad key/with/slashes': 'v' } } } };
      default:
        return { description: 'matchLabels value that is not a label value', field: 'spec.nodeSelector', spec: { ...base, nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux!!' } } } };
    }
  },
  'user-status': (random, target) => {
    const forged = Object.fromEntries(
      [...target.nodeNames, 'ghost-node'].map((node) => [node, { state: 'Applied', message: 'all good, trust me', observedGeneration: 1, routes: 1 }]),
    );
    const userStatus = {
      ready: `${target.nodeNames.length + 1}/${target.nodeNames.length + 1}`,
      nodes: forged,
      conditions: [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'forged', lastTransitionTime: '2020-01-01T00:00:00Z' }],
    };
    const destination = random.pick(['127.0.0.1', '169.254.169.254', '224.0.0.1', target.apiServerAddress]);
    return { description: `status forged by a user over a refused destination ${destination}`, field: 'spec.destinations', spec: { destinations: [destination], gateway: target.gatewayV4 }, userStatus };
  },
};

function uniqueHosts(random: Random, count: number): string[] {
  const seen = new Set<string>();
  while (seen.size < count) seen.add(publicHost(random));
  return [...seen];
}

/** A valid DNS subdomain of exactly 253 characters (labels of at most 63). */
function maxLengthName(random: Random): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const label = (length: number) => Array.from({ length }, () => random.pick([...alphabet])).join('');
  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253
  return `${label(63)}.${label(63)}.${label(63)}.${label(61)}`;
}

function build(draft: Draft, category: HostileCategory, name: string): HostileCase {
  const manifest: Record<string, unknown> = {
    apiVersion: 'networking.digitalocean.com/v1',
    kind: 'StaticRoute',
    metadata: { ...(draft.metadata ?? {}), name: draft.name ?? name },
    ...(draft.spec === undefined ? {} : { spec: draft.spec }),
    ...(draft.extra ?? {}),
  };
  // A user may also put status into the created object; the status subresource must drop it.
  if (draft.userStatus) manifest.status = draft.userStatus;
  return {
    name: draft.name ?? name,
    category,
    description: draft.description,
    field: draft.field,
    manifest,
    ...(draft.userStatus ? { userStatus: draft.userStatus } : {}),
  };
}

/**
 * Generates at least `count` hostile StaticRoutes (every category at least once, then categories at random),
 * deterministic for a given seed and target. Cases with identical content are generated again, so none repeats.
 */
export function generateHostileRoutes(target: HostileTarget, options: HostileOptions): HostileCase[] {
  const random = seededRandom(options.seed);
  const count = Math.max(options.count ?? 120, HOSTILE_CATEGORIES.length);
  const prefix = options.prefix ?? 'fuzz';
  const cases: HostileCase[] = [];
  const contents = new Set<string>();
  const order = [...HOSTILE_CATEGORIES];
  while (order.length < count) order.push(random.pick(HOSTILE_CATEGORIES));
  for (const [index, category] of order.entries()) {
    const name = `${prefix}-${String(index).padStart(3, '0')}-${category}`;
    let built: HostileCase | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = build(TEMPLATES[category](random, target), category, name);
      const { metadata, ...rest } = candidate.manifest as { metadata: Record<string, unknown> };
      const key = JSON.stringify([{ ...metadata, name: candidate.name === name ? '' : candidate.name }, rest]);
      if (contents.has(key)) continue;
      contents.add(key);
      built = candidate;
      break;
    }
    if (built) cases.push(built);
  }
  // Variants of a category can run out (few distinct forms); top up with categories that have many.
  let serial = order.length;
  while (cases.length < count) {
    const category = random.pick(['malformed-destination', 'host-bits', 'unreachable-gateway', 'node-subnet'] as const);
    const name = `${prefix}-${String(serial++).padStart(3, '0')}-${category}`;
    const candidate = build(TEMPLATES[category](random, target), category, name);
    const { metadata, ...rest } = candidate.manifest as { metadata: Record<string, unknown> };
    const key = JSON.stringify([{ ...metadata, name: '' }, rest]);
    if (contents.has(key)) continue;
    contents.add(key);
    cases.push(candidate);
  }
  return cases;
}
