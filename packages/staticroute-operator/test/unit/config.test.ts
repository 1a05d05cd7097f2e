import { describe, expect, it } from 'vitest';
import { DEFAULT_PROBE_PORT, DEFAULT_ROUTE_PROTOCOL, readConfig } from '../../src/logic/config.js';
import { formatPrefix } from '../../src/logic/ip.js';

describe('readConfig', () => {
  it('has documented defaults', () => {
    const config = readConfig({ NODE_NAME: 'node-a' });
    expect(config).toMatchObject({
      nodeName: 'node-a',
      routeProtocol: DEFAULT_ROUTE_PROTOCOL,
      allowDefaultRoute: false,
      protectedCidrs: [],
      apiServerAddresses: [],
      allowCoveringCidrs: [],
      reconcileIntervalMs: 60_000,
      reportHeartbeatMs: 60_000,
      probePort: DEFAULT_PROBE_PORT,
      logLevel: 'info',
    });
    expect(DEFAULT_ROUTE_PROTOCOL).toBe(201);
  });

  it('reads every variable', () => {
    const config = readConfig({
      NODE_NAME: 'node-a',
      ROUTE_PROTOCOL: '240',
      ALLOW_DEFAULT_ROUTE: 'true',
      PROTECTED_CIDRS: '10.0.0.0/8, 2001:db8::/32 192.0.2.1',
      API_SERVER_ADDRESSES: '203.0.113.10',
      KUBERNETES_SERVICE_HOST: '10.245.0.1',
      ALLOW_COVERING_CIDRS: '10.245.0.0/16, 169.254.169.254 fd00:10::/64',
      RECONCILE_INTERVAL_SECONDS: '5',
      REPORT_HEARTBEAT_SECONDS: '7',
      PROBE_PORT: '9999',
      LOG_LEVEL: 'debug',
    });
    expect(config.routeProtocol).toBe(240);
    expect(config.allowDefaultRoute).toBe(true);
    expect(config.protectedCidrs.map(formatPrefix)).toEqual(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1/32']);
    expect(config.apiServerAddresses.map(formatPrefix)).toEqual(['203.0.113.10/32', '10.245.0.1/32']);
    expect(config.allowCoveringCidrs.map(formatPrefix)).toEqual([
      '10.245.0.0/16',
      '169.254.169.254/32',
      'fd00:10::/64',
    ]);
    expect(config.reconcileIntervalMs).toBe(5000);
    expect(config.reportHeartbeatMs).toBe(7000);
    expect(config.probePort).toBe(9999);
    expect(config.logLevel).toBe('debug');
  });

  it.each<[Record<string, string>, RegExp]>([
    [{}, /NODE_NAME must be set/],
    [{ NODE_NAME: 'n', ROUTE_PROTOCOL: '4' }, /ROUTE_PROTOCOL must be between 5 and 255/],
    [{ NODE_NAME: 'n', ROUTE_PROTOCOL: '256' }, /ROUTE_PROTOCOL must be between 5 and 255/],
    [{ NODE_NAME: 'n', ROUTE_PROTOCOL: 'x' }, /ROUTE_PROTOCOL must be an integer/],
    [{ NODE_NAME: 'n', ALLOW_DEFAULT_ROUTE: 'maybe' }, /ALLOW_DEFAULT_ROUTE must be true or false/],
    [{ NODE_NAME: 'n', PROTECTED_CIDRS: '10.0.0.0/33' }, /PROTECTED_CIDRS: "10.0.0.0\/33"/],
    [{ NODE_NAME: 'n', API_SERVER_ADDRESSES: 'api.example' }, /API_SERVER_ADDRESSES/],
    [{ NODE_NAME: 'n', RECONCILE_INTERVAL_SECONDS: '0' }, /RECONCILE_INTERVAL_SECONDS/],
    [{ NODE_NAME: 'n', ALLOW_COVERING_CIDRS: '10.0.0.0/8,10.0.0.0/33' }, /ALLOW_COVERING_CIDRS: "10.0.0.0\/33" is not/],
    // An allowance lifts a protection: a written range that is not a network is refused, not widened.
    [
      { NODE_NAME: 'n', ALLOW_COVERING_CIDRS: '10.245.0.1/16' },
      /ALLOW_COVERING_CIDRS: "10.245.0.1\/16" has host bits set \(the network is 10.245.0.0\/16\)/,
    ],
  ])('refuses %j', (env, message) => expect(() => readConfig(env)).toThrow(message));
});
