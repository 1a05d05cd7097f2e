/**
 * Hostile-input templates about addresses: malformed text, host bits, families, ranges that must never be routed
 * through a gateway (default route, loopback, multicast, link-local, the API endpoint, the nodes' own subnet), limits.
 */
import { publicHost, type Random } from './random.js';
import type { HostileCategory, HostileTemplate } from './hostile-types.js';

/** A random host in 2001:db8::/32 (documentation range). */
export const v6Host = (random: Random): string =>
  `2001:db8:${random.int(1, 0xfffe).toString(16)}::${random.int(1, 0xfff).toString(16)}`;

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

/** Templates of the address categories. */
export const ADDRESS_TEMPLATES: Partial<Record<HostileCategory, HostileTemplate>> = {
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
      return {
        description: `gateway ${JSON.stringify(bad)}`,
        field: 'spec.gateway',
        spec: { destinations: [publicHost(random)], gateway: bad },
      };
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
        spec: {
          destinations: [`2001:db8::${random.int(1, 0xffff).toString(16)}/${length}`],
          gateway: target.gatewayV6,
        },
      };
    }
    const length = random.int(8, 30);
    // The last octet is odd, so at least one host bit is set for every length up to 31.
    const text = `34.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(0, 127) * 2 + 1}/${length}`;
    return {
      description: `CIDR with host bits ${text}`,
      field: 'spec.destinations',
      spec: { destinations: [text], gateway: target.gatewayV4 },
    };
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
        return {
          description: 'IPv6 destination, IPv4 gateway',
          field: 'spec.destinations',
          spec: { destinations: [v6Host(random)], gateway: target.gatewayV4 },
        };
      case 1:
        return {
          description: 'IPv4 destination, IPv6 gateway',
          field: 'spec.destinations',
          spec: { destinations: [publicHost(random)], gateway: target.gatewayV6 },
        };
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
    if (choice === 0)
      return {
        description: 'loopback gateway',
        field: 'spec.gateway',
        spec: { destinations: [publicHost(random)], gateway: '127.0.0.1' },
      };
    if (choice === 1)
      return {
        description: 'IPv6 loopback destination',
        field: 'spec.destinations',
        spec: { destinations: ['::1'], gateway: target.gatewayV6 },
      };
    const destination = random.pick([
      '127.0.0.1',
      '127.0.0.0/8',
      `127.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`,
    ]);
    return {
      description: `loopback destination ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
    };
  },
  multicast: (random, target) => {
    const choice = random.int(0, 4);
    if (choice === 0)
      return {
        description: 'multicast gateway',
        field: 'spec.gateway',
        spec: { destinations: [publicHost(random)], gateway: '224.0.0.5' },
      };
    if (choice === 1) {
      return {
        description: 'IPv6 multicast destination',
        field: 'spec.destinations',
        spec: { destinations: [random.pick(['ff02::1', 'ff00::/8'])], gateway: target.gatewayV6 },
      };
    }
    const destination = random.pick([
      '224.0.0.1',
      '239.255.255.250',
      '224.0.0.0/4',
      `${random.int(224, 239)}.1.2.0/24`,
    ]);
    return {
      description: `multicast destination ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
    };
  },
  'link-local': (random, target) => {
    const choice = random.int(0, 4);
    if (choice === 0)
      return {
        description: 'link-local gateway',
        field: 'spec.gateway',
        spec: { destinations: [publicHost(random)], gateway: random.pick(['169.254.1.1', 'fe80::1']) },
      };
    if (choice === 1)
      return {
        description: 'IPv6 link-local destination',
        field: 'spec.destinations',
        spec: { destinations: [random.pick(['fe80::/64', 'fe80::1'])], gateway: target.gatewayV6 },
      };
    const destination = random.pick(['169.254.169.254', '169.254.0.0/16', `169.254.${random.int(0, 255)}.0/24`]);
    return {
      description: `link-local destination ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
    };
  },
  'api-endpoint': (random, target) => {
    if (random.chance(0.3)) {
      return {
        description: 'the API endpoint (IPv6)',
        field: 'spec.destinations',
        spec: { destinations: [target.apiServerAddressV6], gateway: target.gatewayV6 },
      };
    }
    const destination = random.pick([target.apiServerAddress, `${target.apiServerAddress}/32`]);
    return {
      description: `the API endpoint ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
    };
  },
  'node-subnet': (random, target) => {
    const [base] = target.nodeSubnetV4.split('/') as [string];
    const octets = base.split('.').map(Number);
    const inside = `${octets[0]}.${octets[1]}.${random.int(0, 15)}.${random.int(1, 254)}`;
    const choice = random.int(0, 5);
    if (choice === 5) {
      const destination = random.pick([
        target.nodeSubnetV6,
        ...target.nodeAddresses.filter((address) => address.includes(':')),
      ]);
      return {
        description: `the nodes' IPv6 subnet/address ${destination}`,
        field: 'spec.destinations',
        spec: { destinations: [destination], gateway: target.gatewayV6 },
      };
    }
    // Inside the connected subnet (the subnet itself, a part of it, a host, a node's address): refused. Supernets of
    // the subnet (10.116.0.0/16, 10.0.0.0/8) are not hostile: the connected route is more specific, so they capture
    // none of the subnet's traffic and are installed (routing safety judges what a route would capture, issue 10).
    const destination = [
      target.nodeSubnetV4,
      `${octets[0]}.${octets[1]}.${random.int(0, 15)}.0/24`,
      `${octets[0]}.${octets[1]}.${random.int(0, 15)}.${16 * random.int(0, 15)}/28`,
      inside,
      random.pick(target.nodeAddresses.filter((address) => !address.includes(':'))),
    ][choice] as string;
    return {
      description: `the nodes' subnet/address ${destination}`,
      field: 'spec.destinations',
      spec: { destinations: [destination], gateway: target.gatewayV4 },
    };
  },
  'too-many': (random, target) => {
    if (random.chance(0.25)) {
      const gateways = Array.from({ length: 17 }, (_, index) => `10.116.1.${index + 1}`);
      return {
        description: '17 gateways (limit 16)',
        field: 'spec.gateways',
        spec: { destinations: [publicHost(random)], gateways },
      };
    }
    const count = random.pick([2001, 10_000]);
    const destinations = uniqueHosts(random, count);
    return {
      description: `${count} destinations (limit 2000)`,
      field: 'spec.destinations',
      spec: { destinations, gateway: target.gatewayV4 },
    };
  },
};

/** `count` distinct hosts in 34.0.0.0/8. */
function uniqueHosts(random: Random, count: number): string[] {
  const seen = new Set<string>();
  while (seen.size < count) seen.add(publicHost(random));
  return [...seen];
}
