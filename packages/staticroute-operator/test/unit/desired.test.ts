import { describe, expect, it } from 'vitest';
import { computeDesiredState, compareClaimants } from '../../src/logic/desired.js';
import { KOPF_LAST_HANDLED_ANNOTATION } from '../../src/logic/migration.js';
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
