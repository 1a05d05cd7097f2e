/** Address arithmetic and option parsing of the test bed (pure functions). */
import { describe, expect, test } from 'vitest';
import { watchCacheEnabled } from '../../src/control-plane/control-plane.js';
import { assertAllowedDestination, cidrWithin, hostedAddress, ipv6TwinOf } from '../../src/network/addresses.js';

describe('addresses', () => {
  test('cidrWithin compares prefixes of both families', () => {
    expect(cidrWithin('198.51.100.128/25', '198.51.100.0/24')).toBe(true);
    expect(cidrWithin('198.51.0.0/16', '198.51.100.0/24')).toBe(false);
    expect(cidrWithin('198.51.101.0/24', '198.51.100.0/24')).toBe(false);
    expect(cidrWithin('10.116.0.5/32', '10.116.0.0/20')).toBe(true);
    expect(cidrWithin('10.116.16.1/32', '10.116.0.0/20')).toBe(false);
    expect(cidrWithin('2001:db8:5::/64', '2001:db8::/32')).toBe(true);
    expect(cidrWithin('2001:db9::/64', '2001:db8::/32')).toBe(false);
    expect(cidrWithin('2001:db8::/64', '198.51.100.0/24')).toBe(false);
  });

  test('only documentation ranges may be hosted on gateways', () => {
    expect(() => assertAllowedDestination('203.0.113.0/24')).not.toThrow();
    expect(() => assertAllowedDestination('2001:db8:1::/64')).not.toThrow();
    expect(() => assertAllowedDestination('192.0.2.0/24')).toThrow(/not allowed/);
    expect(() => assertAllowedDestination('34.1.2.0/24')).toThrow(/not allowed/);
    expect(() => assertAllowedDestination('198.51.100.1')).toThrow(/not allowed/);
  });

  test('hostedAddress and ipv6TwinOf', () => {
    expect(hostedAddress('198.51.100.0/24')).toBe('198.51.100.1/24');
    expect(hostedAddress('203.0.113.7/32')).toBe('203.0.113.7/32');
    expect(hostedAddress('2001:db8:5::/64')).toBe('2001:db8:5:0:0:0:0:1/64');
    expect(ipv6TwinOf('10.116.0.10')).toBe('fd00:116::a');
    expect(ipv6TwinOf('10.116.1.2')).toBe('fd00:116::102');
  });
});

describe('watchCacheEnabled', () => {
  test('the option wins, else the last --watch-cache flag, else on', () => {
    expect(watchCacheEnabled({})).toBe(true);
    expect(watchCacheEnabled({ extraApiServerFlags: ['--watch-cache=false'] })).toBe(false);
    expect(watchCacheEnabled({ extraApiServerFlags: ['--watch-cache=false', '--watch-cache=true'] })).toBe(true);
    expect(watchCacheEnabled({ watchCache: true, extraApiServerFlags: ['--watch-cache=false'] })).toBe(true);
  });
});
