import { describe, expect, it } from 'vitest';
import { AGGREGATOR_LEASE, readAggregatorConfig } from '../../src/logic/aggregator-config.js';

describe('readAggregatorConfig', () => {
  it('has the documented defaults', () => {
    expect(readAggregatorConfig({})).toEqual({
      identity: undefined,
      leaseNamespace: AGGREGATOR_LEASE.namespace,
      leaseName: AGGREGATOR_LEASE.name,
      leaseDurationSeconds: 15,
      silentAfterMs: 180_000,
      deletionGraceMs: 120_000,
      settleMs: 2_000,
      probePort: 9860,
      probeAddress: '0.0.0.0',
      logLevel: 'info',
    });
  });

  it('reads every variable', () => {
    const config = readAggregatorConfig({
      POD_NAME: 'aggregator-7f9c',
      LEASE_NAMESPACE: 'ops',
      LEASE_NAME: 'sr',
      LEASE_DURATION_SECONDS: '30',
      SILENT_AGENT_SECONDS: '90',
      DELETION_GRACE_SECONDS: '0',
      STATUS_SETTLE_SECONDS: '0.5',
      PROBE_PORT: '9000',
      PROBE_ADDRESS: '10.0.0.4',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      identity: 'aggregator-7f9c',
      leaseNamespace: 'ops',
      leaseName: 'sr',
      leaseDurationSeconds: 30,
      silentAfterMs: 90_000,
      deletionGraceMs: 0,
      settleMs: 500,
      probePort: 9000,
      probeAddress: '10.0.0.4',
      logLevel: 'debug',
    });
  });

  it.each([
    ['LEASE_DURATION_SECONDS', '10', /between 15 and 300/],
    ['LEASE_DURATION_SECONDS', '20.5', /whole number/],
    ['SILENT_AGENT_SECONDS', 'soon', /SILENT_AGENT_SECONDS must be/],
    ['PROBE_PORT', '70000', /PROBE_PORT/],
  ])('refuses %s=%s with a message naming it', (name, value, message) => {
    expect(() => readAggregatorConfig({ [name]: value })).toThrow(message);
  });
});
