import { describe, expect, it } from 'vitest';
import { mustParsePrefix, parseAddress } from '../../src/logic/ip.js';
import { destinationRefusal, type NodeAddress, type SafetyPolicy } from '../../src/logic/safety.js';

function nodeAddress(text: string, interfaceName?: string): NodeAddress {
  const [address, length] = text.split('/') as [string, string];
  const parsed = parseAddress(address) as { family: 4 | 6; address: bigint };
  return { ...parsed, prefixLength: Number(length), interfaceName };
}

const policy: SafetyPolicy = {
  nodeAddresses: [
    nodeAddress('10.116.0.2/20', 'eth1'),
    nodeAddress('206.81.0.10/20', 'eth0'),
    nodeAddress('fd00:10::2/64', 'eth1'),
  ],
  apiServerAddresses: [mustParsePrefix('203.0.113.10')],
  protectedCidrs: [mustParsePrefix('100.64.0.0/10')],
  allowDefaultRoute: false,
};

const refusal = (destination: string, overrides: Partial<SafetyPolicy> = {}) =>
  destinationRefusal(mustParsePrefix(destination), { ...policy, ...overrides });

describe('destinationRefusal', () => {
  it.each(['34.160.111.145/32', '34.117.59.81/32', '198.51.100.0/24', '2001:db8::/32', '10.200.0.0/16'])(
    'allows %s',
    (destination) => expect(refusal(destination)).toBeUndefined(),
  );

  it.each<[string, string]>([
    ['169.254.169.254/32', 'overlaps 169.254.169.254/32 (the cloud metadata service address)'],
    ['169.254.0.0/16', 'overlaps 169.254.169.254/32'],
    ['169.254.3.0/24', 'overlaps 169.254.0.0/16 (IPv4 link-local)'],
    ['fe80::/64', 'overlaps fe80::/10 (IPv6 link-local)'],
    ['127.0.0.1/32', 'overlaps 127.0.0.0/8 (loopback)'],
    ['::1/128', 'overlaps ::1/128 (loopback)'],
    ['224.0.0.0/8', 'overlaps 224.0.0.0/4 (multicast)'],
    ['ff02::/16', 'overlaps ff00::/8 (multicast)'],
    ['255.255.255.255/32', 'limited broadcast'],
    ['0.0.0.0/8', '"this network"'],
    ['10.116.0.2/32', "overlaps the node's own address 10.116.0.2/32 on eth1"],
    ['10.116.0.7/32', "overlaps the node's connected subnet 10.116.0.0/20 on eth1"],
    ['10.0.0.0/8', "overlaps the node's own address 10.116.0.2/32 on eth1"],
    ['10.116.8.0/21', "overlaps the node's connected subnet 10.116.0.0/20 on eth1"],
    ['fd00:10::ffff/128', "overlaps the node's connected subnet fd00:10::/64 on eth1"],
    ['fd00::/8', "overlaps the node's own address fd00:10::2/128 on eth1"],
    ['203.0.113.10/32', 'overlaps the API server endpoint 203.0.113.10/32'],
    ['203.0.113.0/24', 'overlaps the API server endpoint 203.0.113.10/32'],
    ['100.100.0.0/16', 'overlaps the protected CIDR 100.64.0.0/10 (PROTECTED_CIDRS)'],
    ['0.0.0.0/0', 'is the default route; it is refused unless the operator runs with ALLOW_DEFAULT_ROUTE=true'],
    ['::/0', '::/0 is the default route'],
    ['0.0.0.0/1', 'overlaps'],
  ])('refuses %s', (destination, expected) => expect(refusal(destination)).toContain(expected));

  it('allows the default route only when configured', () => {
    expect(refusal('0.0.0.0/0', { allowDefaultRoute: true })).toBeUndefined();
    expect(refusal('::/0', { allowDefaultRoute: true })).toBeUndefined();
  });

  it('never compares across families', () => {
    expect(refusal('2001:db8::/32', { protectedCidrs: [mustParsePrefix('0.0.0.0/1')] })).toBeUndefined();
  });
});
