import { describe, expect, it } from 'vitest';
import { computeDesiredState, compareClaimants } from '../../src/logic/desired.js';
import { mustParsePrefix } from '../../src/logic/ip.js';
import { KOPF_LAST_HANDLED_ANNOTATION } from '../../src/logic/migration.js';
import { ALLOW_COVERING_ANNOTATION } from '../../src/logic/safety.js';
import { MAX_DESTINATIONS } from '../../src/logic/spec.js';
import type { StaticRouteObject } from '../../src/logic/spec.js';
import { staticRouteAt, TEST_NODE, TEST_POLICY } from '../support/routes.js';

const policy = TEST_POLICY;
const node = TEST_NODE;

let clock = 0;
function route(
  name: string,
  spec: Record<string, unknown>,
  meta: Partial<StaticRouteObject['metadata']> = {},
): StaticRouteObject {
  clock++;
  return staticRouteAt(name, clock, spec, meta);
}

describe('computeDesiredState', () => {
  it('turns one object into routes owned by it', () => {
    const state = computeDesiredState(
      [route('ifconfig', { destinations: ['34.160.111.145', '198.51.100.0/24'], gateway: '10.116.0.5' })],
      node,
      policy,
    );
    expect([...state.routes.keys()]).toEqual(['198.51.100.0/24', '34.160.111.145/32']);
    expect(state.routes.get('34.160.111.145/32')).toMatchObject({
      owner: 'ifconfig',
      gateways: ['10.116.0.5'],
      sharedWith: [],
    });
    expect(state.assessments.get('ifconfig')).toMatchObject({
      selected: true,
      invalid: [],
      refused: [],
      conflicts: [],
      claimed: ['198.51.100.0/24', '34.160.111.145/32'],
    });
  });

  it('skips objects whose nodeSelector does not select the node', () => {
    const state = computeDesiredState(
      [
        route('elsewhere', {
          destinations: ['192.0.2.1'],
          gateway: '10.116.0.5',
          nodeSelector: { matchLabels: { zone: 'ams3' } },
        }),
      ],
      node,
      policy,
    );
    expect(state.routes.size).toBe(0);
    expect(state.assessments.get('elsewhere')?.selected).toBe(false);
  });

  it('reports invalid specs and installs nothing for them', () => {
    const state = computeDesiredState(
      [route('bad', { destinations: ['192.0.2.1/24'], gateway: '10.116.0.5' })],
      node,
      policy,
    );
    expect(state.routes.size).toBe(0);
    expect(state.assessments.get('bad')).toMatchObject({
      selected: true,
      invalid: [expect.stringContaining('host bits')],
    });
  });

  it('refuses unsafe destinations but keeps the safe ones of the same object', () => {
    const state = computeDesiredState(
      [route('mixed', { destinations: ['169.254.169.254', '192.0.2.1'], gateway: '10.116.0.5' })],
      node,
      policy,
    );
    expect([...state.routes.keys()]).toEqual(['192.0.2.1/32']);
    expect(state.assessments.get('mixed')?.refused).toEqual([
      { destination: '169.254.169.254/32', reason: expect.stringContaining('metadata') },
    ]);
  });

  describe('safety per object (issue 10)', () => {
    // The API server's ClusterIP lies outside the node's subnet: a covering route would capture it.
    const withClusterIp = { ...policy, apiServerAddresses: [mustParsePrefix('10.245.0.1')] };
    const vpn = (annotations?: Record<string, string>) =>
      route('vpn', { destinations: ['10.0.0.0/8'], gateway: '10.116.0.5' }, annotations ? { annotations } : {});

    it("installs a destination around the node's subnet (the connected route keeps the subnet direct)", () => {
      const state = computeDesiredState([vpn()], node, policy);
      expect(state.routes.get('10.0.0.0/8')).toMatchObject({ owner: 'vpn', gateways: ['10.116.0.5'] });
    });

    it('refuses it when it would capture an API server endpoint, and installs it when the object allows that', () => {
      const refused = computeDesiredState([vpn()], node, withClusterIp);
      expect(refused.routes.size).toBe(0);
      expect(refused.assessments.get('vpn')?.refused).toEqual([
        { destination: '10.0.0.0/8', reason: expect.stringContaining('would capture API server endpoint 10.245.0.1') },
      ]);
      const allowed = computeDesiredState([vpn({ [ALLOW_COVERING_ANNOTATION]: '10.245.0.0/16' })], node, withClusterIp);
      expect([...allowed.routes.keys()]).toEqual(['10.0.0.0/8']);
      expect(allowed.assessments.get('vpn')).toMatchObject({ refused: [], claimed: ['10.0.0.0/8'] });
      expect(allowed.assessments.get('vpn')?.warnings).toBeUndefined();
    });

    it('installs it when the cluster allows that (ALLOW_COVERING_CIDRS)', () => {
      const state = computeDesiredState([vpn()], node, {
        ...withClusterIp,
        allowCoveringCidrs: [mustParsePrefix('10.245.0.1')],
      });
      expect([...state.routes.keys()]).toEqual(['10.0.0.0/8']);
    });

    it("lets one object's allowance lift nothing for another object", () => {
      const other = route('other', { destinations: ['10.0.0.0/8'], gateway: '10.116.0.5' });
      const state = computeDesiredState(
        [vpn({ [ALLOW_COVERING_ANNOTATION]: '10.245.0.0/16' }), other],
        node,
        withClusterIp,
      );
      expect(state.routes.get('10.0.0.0/8')?.owner).toBe('vpn');
      expect(state.assessments.get('other')?.refused).toHaveLength(1);
    });

    it('ignores unusable entries of the annotation and says so', () => {
      const state = computeDesiredState([vpn({ [ALLOW_COVERING_ANNOTATION]: '10.245.0.1/16' })], node, withClusterIp);
      expect(state.routes.size).toBe(0);
      expect(state.assessments.get('vpn')?.warnings).toEqual([
        `metadata.annotations[${ALLOW_COVERING_ANNOTATION}]: "10.245.0.1/16" has host bits set (the network is ` +
          '10.245.0.0/16); ignored',
      ]);
    });

    it("refuses a destination that would capture the object's own gateway", () => {
      const state = computeDesiredState(
        [
          route('around-gateway', {
            destinations: ['10.116.0.4/30', '192.0.2.1'],
            gateways: ['10.116.0.5', '10.116.0.9'],
          }),
        ],
        node,
        policy,
      );
      expect([...state.routes.keys()]).toEqual(['192.0.2.1/32']);
      expect(state.assessments.get('around-gateway')?.refused).toEqual([
        { destination: '10.116.0.4/30', reason: expect.stringContaining('would capture its own gateway 10.116.0.5') },
      ]);
    });

    it('refuses destinations that add up to a default route, by name, unless the default route is allowed', () => {
      const halves = route('halves', {
        destinations: ['0.0.0.0/1', '128.0.0.0/1', '192.0.2.1'],
        gateway: '10.116.0.5',
      });
      const refused = computeDesiredState([halves], node, policy);
      expect([...refused.routes.keys()]).toEqual(['192.0.2.1/32']);
      expect(refused.assessments.get('halves')?.refused.map((item) => item.reason)).toEqual([
        '0.0.0.0/1: destinations add up to a default route (0.0.0.0/1 + 128.0.0.0/1); refused unless the operator ' +
          'runs with ALLOW_DEFAULT_ROUTE=true',
        '128.0.0.0/1: destinations add up to a default route (0.0.0.0/1 + 128.0.0.0/1); refused unless the operator ' +
          'runs with ALLOW_DEFAULT_ROUTE=true',
      ]);
      const allowed = computeDesiredState([halves], node, { ...policy, allowDefaultRoute: true });
      expect([...allowed.routes.keys()]).toEqual(['0.0.0.0/1', '128.0.0.0/1', '192.0.2.1/32']);
    });

    it(`applies every destination of an object stored with more than ${MAX_DESTINATIONS} (before the CRD limit)`, () => {
      const count = MAX_DESTINATIONS + 500;
      const destinations = Array.from({ length: count }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
      const state = computeDesiredState([route('huge', { destinations, gateway: '10.116.0.5' })], node, policy);
      expect(state.routes.size).toBe(count);
      expect(state.assessments.get('huge')).toMatchObject({
        invalid: [],
        refused: [],
        warnings: [expect.stringContaining(`${count} destinations, more than the ${MAX_DESTINATIONS} the CRD admits`)],
      });
      expect(state.assessments.get('huge')?.claimed).toHaveLength(count);
    });
  });

  describe('conflicts', () => {
    const older = route('primary', { destinations: ['34.160.111.145'], gateway: '10.116.0.5' });
    const newer = route('secondary', { destinations: ['34.160.111.145', '192.0.2.9'], gateway: '10.116.0.12' });

    it('gives the destination to the oldest object; the other reports a conflict', () => {
      for (const objects of [
        [older, newer],
        [newer, older],
      ]) {
        const state = computeDesiredState(objects, node, policy);
        expect(state.routes.get('34.160.111.145/32')).toMatchObject({ owner: 'primary', gateways: ['10.116.0.5'] });
        expect(state.assessments.get('secondary')?.conflicts).toEqual([
          { destination: '34.160.111.145/32', winner: 'primary' },
        ]);
        expect(state.assessments.get('secondary')?.claimed).toEqual(['192.0.2.9/32']);
      }
    });

    it('breaks creationTimestamp ties by name', () => {
      const at = '2025-01-01T00:00:00Z';
      const b = route('b', { destinations: ['192.0.2.1'], gateway: '10.116.0.5' }, { creationTimestamp: at });
      const a = route('a', { destinations: ['192.0.2.1'], gateway: '10.116.0.6' }, { creationTimestamp: at });
      expect(computeDesiredState([b, a], node, policy).routes.get('192.0.2.1/32')?.owner).toBe('a');
      expect(compareClaimants(a, b)).toBeLessThan(0);
      expect(compareClaimants(b, a)).toBeGreaterThan(0);
    });

    it('hands the destination to the other object when the winner is being deleted', () => {
      const deleting = { ...older, metadata: { ...older.metadata, deletionTimestamp: '2025-02-01T00:00:00Z' } };
      const state = computeDesiredState([deleting, newer], node, policy);
      expect(state.routes.get('34.160.111.145/32')).toMatchObject({ owner: 'secondary', gateways: ['10.116.0.12'] });
      expect(state.assessments.get('primary')).toMatchObject({ deleting: true, claimed: [] });
      expect(state.assessments.get('secondary')?.conflicts).toEqual([]);
    });

    it('keeps the winner route when the loser is deleted', () => {
      const state = computeDesiredState([older], node, policy);
      expect(state.routes.get('34.160.111.145/32')).toMatchObject({ owner: 'primary', gateways: ['10.116.0.5'] });
    });

    it('shares identical routes without conflict; the route survives deleting either', () => {
      const twin = route('twin', { destinations: ['34.160.111.145'], gateway: '10.116.0.5' });
      const both = computeDesiredState([older, twin], node, policy);
      expect(both.routes.get('34.160.111.145/32')).toMatchObject({ owner: 'primary', sharedWith: ['twin'] });
      expect(both.assessments.get('twin')).toMatchObject({ conflicts: [], claimed: ['34.160.111.145/32'] });
      expect(computeDesiredState([twin], node, policy).routes.get('34.160.111.145/32')?.owner).toBe('twin');
    });

    it('treats ECMP sets as equal regardless of order', () => {
      const a = route('a', { destinations: ['192.0.2.0/24'], gateways: ['10.116.0.5', '10.116.0.6'] });
      const b = route('b', { destinations: ['192.0.2.0/24'], gateways: ['10.116.0.6', '10.116.0.5'] });
      expect(computeDesiredState([a, b], node, policy).assessments.get('b')?.conflicts).toEqual([]);
    });

    it('does not let refused or unselected objects win', () => {
      const unselected = route('aaa-unselected', {
        destinations: ['192.0.2.1'],
        gateway: '10.116.0.7',
        nodeSelector: { matchLabels: { zone: 'none' } },
      });
      const invalid = route('aaa-invalid', { destinations: ['192.0.2.1', 'x'], gateway: '10.116.0.8' });
      const valid = route('valid', { destinations: ['192.0.2.1'], gateway: '10.116.0.9' });
      const state = computeDesiredState([unselected, invalid, valid], node, policy);
      expect(state.routes.get('192.0.2.1/32')?.owner).toBe('valid');
    });
  });

  it("collects the seed operator's last handled gateways for adoption", () => {
    const annotations = { [KOPF_LAST_HANDLED_ANNOTATION]: JSON.stringify({ spec: { gateway: '10.116.0.4' } }) };
    const state = computeDesiredState(
      [route('seeded', { destinations: ['34.160.111.145'], gateway: '10.116.0.5' }, { annotations })],
      node,
      policy,
    );
    expect(state.routes.get('34.160.111.145/32')?.seedGateways).toEqual([['10.116.0.4']]);
  });

  it('is independent of input order', () => {
    const objects = [
      route('x', { destinations: ['192.0.2.1', '192.0.2.2'], gateway: '10.116.0.5' }),
      route('y', { destinations: ['192.0.2.2', '192.0.2.3'], gateway: '10.116.0.6' }),
      route('z', { destinations: ['192.0.2.3', '192.0.2.1'], gateway: '10.116.0.7' }),
    ];
    const forward = computeDesiredState(objects, node, policy);
    const backward = computeDesiredState([...objects].reverse(), node, policy);
    expect([...backward.routes.entries()]).toEqual([...forward.routes.entries()]);
    expect(forward.routes.get('192.0.2.3/32')?.owner).toBe('y');
  });
});
