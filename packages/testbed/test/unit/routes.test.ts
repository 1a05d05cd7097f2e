/** Parsing of iproute2 output into structured routes (pure functions, no network). */
import { describe, expect, test } from 'vitest';
import { normalizeDestination, parseIpRouteJson, parseMonitorLine } from '../../src/network/routes.js';

describe('parseIpRouteJson', () => {
  test('maps numeric fields, default routes, host routes and multipath', () => {
    const json = JSON.stringify([
      { type: '1', dst: 'default', gateway: '10.116.0.5', dev: 'eth0', table: '254', protocol: '188', scope: '0', flags: [] },
      { type: '1', dst: '10.7.0.5', gateway: '10.1.0.2', dev: 'va', protocol: '3', scope: '0', metric: 50, flags: [] },
      {
        type: '1', dst: '10.8.0.0/24', table: '100', protocol: '3', scope: '0', flags: [],
        nexthops: [{ gateway: '10.1.0.2', dev: 'va', weight: 1, flags: [] }, { gateway: '10.1.0.3', dev: 'va', weight: 2, flags: [] }],
      },
      { type: '2', dst: '127.0.0.1', dev: 'lo', table: '255', protocol: '2', scope: '254', prefsrc: '127.0.0.1', flags: [] },
    ]); // prettier-ignore
    expect(parseIpRouteJson(json, 4)).toEqual([
      { dst: '0.0.0.0/0', family: 4, type: 'unicast', protocol: 188, table: 254, gateway: '10.116.0.5', dev: 'eth0', scope: 'global' },
      { dst: '10.7.0.5/32', family: 4, type: 'unicast', protocol: 3, table: 254, gateway: '10.1.0.2', dev: 'va', scope: 'global', metric: 50 },
      {
        dst: '10.8.0.0/24', family: 4, type: 'unicast', protocol: 3, table: 100, scope: 'global',
        nexthops: [{ gateway: '10.1.0.2', dev: 'va', weight: 1 }, { gateway: '10.1.0.3', dev: 'va', weight: 2 }],
      },
      { dst: '127.0.0.1/32', family: 4, type: 'local', protocol: 2, table: 255, dev: 'lo', scope: 'host', prefsrc: '127.0.0.1' },
    ]); // prettier-ignore
  });

  test('fills in the requested table, which iproute2 leaves out', () => {
    const json = JSON.stringify([
      { dst: '2001:db8::/64', gateway: 'fd00:116::5', dev: 'eth0', protocol: '188', metric: 1024 },
    ]);
    expect(parseIpRouteJson(json, 6, 100)[0]).toMatchObject({ dst: '2001:db8::/64', family: 6, table: 100 });
    expect(parseIpRouteJson('', 6)).toEqual([]);
  });

  test('normalizeDestination', () => {
    expect(normalizeDestination('default', 6)).toBe('::/0');
    expect(normalizeDestination('fd00::1', 6)).toBe('fd00::1/128');
    expect(normalizeDestination('10.0.0.0/8', 4)).toBe('10.0.0.0/8');
  });
});

describe('parseMonitorLine', () => {
  test('reads adds and deletes with numeric protocol and table', () => {
    expect(parseMonitorLine('1 10.6.0.0/24 via 10.1.0.2 dev va table 7 proto 77 scope 0 ', 5)).toEqual({
      kind: 'add',
      at: 5,
      route: { dst: '10.6.0.0/24', family: 4, type: 'unicast', protocol: 77, table: 7, gateway: '10.1.0.2', dev: 'va', scope: 'global' },
    }); // prettier-ignore
    expect(parseMonitorLine('Deleted 1 10.6.0.0/24 via 10.1.0.2 dev va table 7 proto 77 scope 0 ', 6)?.kind).toBe(
      'delete',
    );
  });

  test('reads one-line multipath routes and IPv6 routes', () => {
    const multipath = parseMonitorLine(
      '1 10.5.0.0/24 table 254 proto 3 scope 0 \\\tnexthop via 10.1.0.2 dev va weight 1 \\\tnexthop via 10.1.0.3 dev va weight 1 ',
      1,
    );
    expect(multipath?.route.nexthops).toEqual([
      { gateway: '10.1.0.2', dev: 'va', weight: 1 },
      { gateway: '10.1.0.3', dev: 'va', weight: 1 },
    ]);
    const v6 = parseMonitorLine('1 default via fd00:1::9 dev va table 254 proto 3 scope 0 metric 1024 pref medium', 1);
    expect(v6?.route).toMatchObject({ dst: '::/0', family: 6, metric: 1024, gateway: 'fd00:1::9' });
    const unreachable = parseMonitorLine('7 default dev lo table 9 proto 4 scope 0 metric 1024 pref medium', 1);
    expect(unreachable?.route).toMatchObject({ dst: '::/0', family: 6, type: 'unreachable' });
  });

  test('ignores lines that are not routes', () => {
    expect(parseMonitorLine('', 1)).toBeUndefined();
    expect(parseMonitorLine('[NETCONF] ipv4 all forwarding off', 1)).toBeUndefined();
  });
});
