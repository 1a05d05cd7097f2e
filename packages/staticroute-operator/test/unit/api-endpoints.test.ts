import { describe, expect, it } from 'vitest';
import { endpointAddresses } from '../../src/logic/api-endpoints.js';
import { formatPrefix } from '../../src/logic/ip.js';

describe('endpointAddresses', () => {
  it('collects every address of IPv4 and IPv6 slices as host prefixes, once, ready or not', () => {
    const prefixes = endpointAddresses([
      {
        addressType: 'IPv4',
        endpoints: [{ addresses: ['203.0.113.10'] }, { addresses: ['10.116.0.2', '203.0.113.10'] }],
      },
      { addressType: 'IPv6', endpoints: [{ addresses: ['2001:db8::1'] }, null] },
    ]);
    expect(prefixes.map(formatPrefix).sort()).toEqual(['10.116.0.2/32', '2001:db8::1/128', '203.0.113.10/32']);
  });

  it('skips FQDN slices, malformed addresses and empty slices', () => {
    expect(
      endpointAddresses([
        { addressType: 'FQDN', endpoints: [{ addresses: ['api.example.com'] }] },
        { addressType: 'IPv4', endpoints: [{ addresses: ['300.1.1.1', ''] }] },
        { addressType: 'IPv4' },
        { addressType: 'IPv4', endpoints: null },
      ]),
    ).toEqual([]);
  });
});
