import { describe, expect, it } from 'vitest';
import {
  canonicalAddress,
  formatPrefix,
  formatPrefixShort,
  ipv4MappedForm,
  mustParsePrefix,
  parseCidrList,
  parseAddress,
  parsePrefix,
  prefixContains,
  prefixesOverlap,
  sameAddresses,
  sortAddresses,
} from '../../src/logic/ip.js';

describe('parseAddress', () => {
  it.each(['0.0.0.0', '10.116.0.5', '255.255.255.255', '::', '::1', '2001:db8::1', 'fe80::1', '64:ff9b::1.2.3.4'])(
    'accepts %s',
    (text) => expect(parseAddress(text)).toBeDefined(),
  );

  it.each([
    '',
    '10.0.0',
    '10.0.0.0.1',
    '256.1.1.1',
    '010.1.1.1',
    '1.2.3.-1',
    '0x0a.0.0.1',
    ' 10.0.0.1',
    '10.0.0.1/32',
    '1::2::3',
    '2001:db8::1%eth0',
    '::ffff:1.2.3.4',
    'gggg::1',
    'localhost',
  ])('refuses %j', (text) => expect(parseAddress(text)).toBeUndefined());

  it('gives the family', () => {
    expect(parseAddress('10.0.0.1')?.family).toBe(4);
    expect(parseAddress('2001:db8::1')?.family).toBe(6);
  });
});

describe('parsePrefix', () => {
  it('treats a bare address as a host route', () => {
    expect(formatPrefix(mustParsePrefix('34.160.111.145'))).toBe('34.160.111.145/32');
    expect(formatPrefix(mustParsePrefix('2001:db8::5'))).toBe('2001:db8::5/128');
  });

  it('normalizes IPv6 text (RFC 5952)', () => {
    expect(formatPrefix(mustParsePrefix('2001:0DB8:0000:0000:0000:0000:0000:0000/32'))).toBe('2001:db8::/32');
    expect(formatPrefix(mustParsePrefix('2001:db8:0:1:0:0:0:1'))).toBe('2001:db8:0:1::1/128');
    expect(formatPrefix(mustParsePrefix('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1/128');
    expect(formatPrefix(mustParsePrefix('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7/128');
    expect(formatPrefix(mustParsePrefix('::/0'))).toBe('::/0');
  });

  it('reports host bits', () => {
    expect(parsePrefix('10.0.0.1/8')).toMatchObject({ hostBitsSet: true });
    expect(formatPrefix(parsePrefix('10.0.0.1/8')!.prefix)).toBe('10.0.0.0/8');
    expect(parsePrefix('10.0.0.0/8')).toMatchObject({ hostBitsSet: false });
    expect(parsePrefix('2001:db8::1/64')).toMatchObject({ hostBitsSet: true });
    expect(parsePrefix('0.0.0.0/0')).toMatchObject({ hostBitsSet: false });
  });

  it.each(['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '2001:db8::/129', '10.0.0.0/8/8', '/8', 'x/8'])(
    'refuses %j',
    (text) => expect(parsePrefix(text)).toBeUndefined(),
  );

  it('throws from mustParsePrefix on bad input', () => {
    expect(() => mustParsePrefix('nope')).toThrow(/not an IP address or CIDR/);
  });
});

describe('prefix relations', () => {
  const p = mustParsePrefix;
  it('contains itself and more specific prefixes', () => {
    expect(prefixContains(p('10.0.0.0/8'), p('10.0.0.0/8'))).toBe(true);
    expect(prefixContains(p('10.0.0.0/8'), p('10.1.2.3'))).toBe(true);
    expect(prefixContains(p('10.1.2.3'), p('10.0.0.0/8'))).toBe(false);
    expect(prefixContains(p('0.0.0.0/0'), p('192.0.2.1'))).toBe(true);
    expect(prefixContains(p('::/0'), p('192.0.2.1'))).toBe(false);
  });

  it('overlaps in both directions, never across families', () => {
    expect(prefixesOverlap(p('10.1.2.3'), p('10.0.0.0/8'))).toBe(true);
    expect(prefixesOverlap(p('10.0.0.0/8'), p('11.0.0.0/8'))).toBe(false);
    expect(prefixesOverlap(p('2001:db8::/32'), p('2001:db8:1::/48'))).toBe(true);
    expect(prefixesOverlap(p('::/0'), p('0.0.0.0/0'))).toBe(false);
  });
});

describe('address lists', () => {
  it('canonicalizes and sorts numerically, IPv4 first', () => {
    expect(sortAddresses(['10.0.0.10', '10.0.0.9', '2001:DB8::1', '9.0.0.1'])).toEqual([
      '9.0.0.1',
      '10.0.0.9',
      '10.0.0.10',
      '2001:db8::1',
    ]);
    expect(sortAddresses(['bad', '10.0.0.1'])).toEqual(['10.0.0.1']);
  });

  it('compares lists', () => {
    expect(sameAddresses(['a', 'b'], ['a', 'b'])).toBe(true);
    expect(sameAddresses(['a'], ['a', 'b'])).toBe(false);
    expect(sameAddresses(['a', 'c'], ['a', 'b'])).toBe(false);
  });

  it('canonicalAddress', () => {
    expect(canonicalAddress('2001:0db8::0001')).toBe('2001:db8::1');
    expect(canonicalAddress('10.0.0.1/32')).toBeUndefined();
  });
});

describe('ipv4MappedForm', () => {
  it.each<[string, string | undefined]>([
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['::ffff:102:304', '1.2.3.4'],
    ['0:0:0:0:0:ffff:a74:5', '10.116.0.5'],
    ['0000::ffff:0.0.0.0', '0.0.0.0'],
    ['::ffff:1.2.3.0/120', '1.2.3.0/24'],
    ['::ffff:0.0.0.0/96', '0.0.0.0/0'],
    ['::ffff:1.2.3.4/128', '1.2.3.4/32'],
    ['::ffff:0:0/80', undefined],
  ])('%s is IPv4-mapped; its IPv4 form is %s', (text, ipv4) => {
    const form = ipv4MappedForm(text);
    expect(form).toBeDefined();
    expect(form?.ipv4).toBe(ipv4);
  });

  it.each([
    '1.2.3.4',
    '::1',
    '::fffe:1.2.3.4',
    '64:ff9b::1.2.3.4',
    '1::ffff:1.2.3.4',
    '::ffff:1.2.3',
    '::ffff:1.2.3.4%eth0',
    '::ffff:1.2.3.4/129',
    '::ffff:1.2.3.4/0120',
    'ffff::',
    '',
  ])('%j is not IPv4-mapped', (text) => expect(ipv4MappedForm(text)).toBeUndefined());

  it('is exactly what parseAddress refuses for being IPv4-mapped', () => {
    // Every address with the mapped prefix, whatever the spelling, is refused by parseAddress and recognized here.
    for (const text of ['::ffff:1.2.3.4', '::ffff:102:304', '0:0:0:0:0:ffff:102:304']) {
      expect(parseAddress(text)).toBeUndefined();
      expect(parseAddress(text.replace(/ffff/i, 'fffe'))).toBeDefined();
    }
  });
});

describe('parseCidrList', () => {
  it('reads addresses and CIDRs separated by commas and white space', () => {
    const { prefixes, problems } = parseCidrList(' 10.0.0.0/8,192.0.2.1  2001:db8::/32,\n');
    expect(prefixes.map(formatPrefix)).toEqual(['10.0.0.0/8', '192.0.2.1/32', '2001:db8::/32']);
    expect(problems).toEqual([]);
  });

  it('is empty for an empty value', () => expect(parseCidrList('')).toEqual({ prefixes: [], problems: [] }));

  it('refuses malformed entries and host bits, keeping the good ones', () => {
    const { prefixes, problems } = parseCidrList('10.0.0.1/8, x, 192.0.2.0/24');
    expect(prefixes.map(formatPrefix)).toEqual(['192.0.2.0/24']);
    expect(problems).toEqual([
      '"10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)',
      '"x" is not an IP address or CIDR',
    ]);
  });
});

describe('formatPrefixShort', () => {
  it('writes host prefixes as bare addresses', () => {
    expect(formatPrefixShort(mustParsePrefix('203.0.113.10/32'))).toBe('203.0.113.10');
    expect(formatPrefixShort(mustParsePrefix('2001:db8::1'))).toBe('2001:db8::1');
    expect(formatPrefixShort(mustParsePrefix('203.0.113.0/24'))).toBe('203.0.113.0/24');
  });
});
