/**
 * Hostile-input templates about the object's shape: names and metadata at or past the limits, unknown fields, wrong
 * types, duplicates, unusable gateways, invalid node selectors, status forged by a user.
 */
import { publicHost, type Random } from './random.js';
import { v6Host } from './hostile-address-templates.js';
import type { HostileCategory, HostileTemplate } from './hostile-types.js';

/** Templates of the object-shape categories. */
export const OBJECT_TEMPLATES: Partial<Record<HostileCategory, HostileTemplate>> = {
  'huge-name': (random, target) => {
    const spec = { destinations: [publicHost(random)], gateway: target.gatewayV4 };
    switch (random.int(0, 4)) {
      case 0:
        return {
          description: 'name of 254+ characters',
          field: 'metadata.name',
          name: 'x'.repeat(random.int(254, 400)),
          spec,
        };
      case 1:
        return {
          description: 'name with invalid characters',
          field: 'metadata.name',
          name: random.pick(['Bad_Name', 'a..b', '-lead', 'trail-', 'sp ace', 'ünïcode']),
          spec,
        };
      case 2:
        return {
          description: 'annotation of 300 KiB',
          field: 'metadata.annotations',
          metadata: { annotations: { 'example.com/blob': 'y'.repeat(300 * 1024) } },
          spec,
        };
      case 3:
        return {
          description: 'label value of 64+ characters',
          field: 'metadata.labels',
          metadata: { labels: { big: 'z'.repeat(random.int(64, 200)) } },
          spec,
        };
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
    if (choice === 0)
      return { description: 'unknown spec field', field: 'spec.via', spec: { ...spec, via: '10.116.0.12' } };
    if (choice === 1) {
      const { destinations, ...rest } = spec;
      return {
        description: 'misspelled destinations',
        field: 'spec.destination',
        spec: { ...rest, destination: destinations },
      };
    }
    if (choice === 2)
      return { description: 'unknown top-level field', field: 'extra', spec, extra: { extra: { evil: true } } };
    if (choice === 3)
      return {
        description: 'unknown selector field',
        field: 'spec.nodeSelector.matchFields',
        spec: { ...spec, nodeSelector: { matchFields: [{ key: 'x' }] } },
      };
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
      [
        'nodeSelector is a string',
        'spec.nodeSelector',
        { destinations: [host], gateway: target.gatewayV4, nodeSelector: 'all' },
      ],
      [
        'matchLabels value is a number',
        'spec.nodeSelector.matchLabels',
        { destinations: [host], gateway: target.gatewayV4, nodeSelector: { matchLabels: { a: 1 } } },
      ],
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
      return {
        description: 'the same destination twice',
        field: 'spec.destinations',
        spec: { destinations: [host, host], gateway: target.gatewayV4 },
      };
    }
    if (random.chance(0.5)) {
      return {
        description: 'the same destination written two ways',
        field: 'spec.destinations',
        spec: { destinations: [host, `${host}/32`], gateway: target.gatewayV4 },
      };
    }
    const v6 = v6Host(random);
    return {
      description: 'the same IPv6 destination in two cases',
      field: 'spec.destinations',
      spec: { destinations: [v6, v6.toUpperCase()], gateway: target.gatewayV6 },
    };
  },
  'unreachable-gateway': (random) => {
    const v6 = random.chance(0.25);
    const gateway = v6
      ? `2001:db8:ffff::${random.int(1, 0xfff).toString(16)}`
      : random.pick([`10.117.${random.int(0, 255)}.${random.int(1, 254)}`, `192.0.2.${random.int(1, 254)}`]);
    const destinations = v6 ? [v6Host(random)] : [publicHost(random)];
    return {
      description: `gateway ${gateway} not on any connected network`,
      field: 'spec.gateway',
      spec: { destinations, gateway },
    };
  },
  'bad-selector': (random, target) => {
    const base = { destinations: [publicHost(random)], gateway: target.gatewayV4 };
    switch (random.int(0, 4)) {
      case 0:
        return {
          description: 'unknown selector operator',
          field: 'spec.nodeSelector.matchExpressions[0].operator',
          spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'a', operator: 'Maybe', values: ['x'] }] } },
        };
      case 1:
        return {
          description: 'In without values',
          field: 'spec.nodeSelector.matchExpressions[0]',
          spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } },
        };
      case 2:
        return {
          description: 'selector key that is not a label key',
          field: 'spec.nodeSelector',
          spec: { ...base, nodeSelector: { matchExpressions: [{ key: 'not a key!!', operator: 'Exists' }] } },
        };
      case 3:
        return {
          description: 'matchLabels key that is not a label key',
          field: 'spec.nodeSelector',
          spec: { ...base, nodeSelector: { matchLabels: { 'bad key/with/slashes': 'v' } } },
        };
      default:
        return {
          description: 'matchLabels value that is not a label value',
          field: 'spec.nodeSelector',
          spec: { ...base, nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux!!' } } },
        };
    }
  },
  'user-status': (random, target) => {
    const forged = Object.fromEntries(
      [...target.nodeNames, 'ghost-node'].map((node) => [
        node,
        { state: 'Applied', message: 'all good, trust me', observedGeneration: 1, routes: 1 },
      ]),
    );
    // Every field the aggregator owns, plus the per-node entries of the layout before it (`nodes`).
    const userStatus = {
      ready: `${target.nodeNames.length + 1}/${target.nodeNames.length + 1}`,
      observedGeneration: 99,
      notReady: [],
      nodes: forged,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Applied',
          message: 'forged',
          lastTransitionTime: '2020-01-01T00:00:00Z',
        },
      ],
    };
    const destination = random.pick(['127.0.0.1', '169.254.169.254', '224.0.0.1', target.apiServerAddress]);
    return {
      description: `status forged by a user over a refused destination ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
      userStatus,
    };
  },
};

/** A valid DNS subdomain of exactly 253 characters (labels of at most 63). */
function maxLengthName(random: Random): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const label = (length: number) => Array.from({ length }, () => random.pick([...alphabet])).join('');
  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253
  return `${label(63)}.${label(63)}.${label(63)}.${label(61)}`;
}
