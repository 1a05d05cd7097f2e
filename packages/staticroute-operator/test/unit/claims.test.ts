import { describe, expect, it } from 'vitest';
import { affectedScope, ClaimIndex } from '../../src/logic/claims.js';
import { computeDesiredState, type DesiredState } from '../../src/logic/desired.js';
import { formatPrefix } from '../../src/logic/ip.js';
import { parseRouteSpec, type StaticRouteObject } from '../../src/logic/spec.js';
import { objectOutcome } from '../../src/logic/status.js';
import { seededRandom } from '../reliability/support/random.js';
import { staticRouteAt, TEST_NODE, TEST_POLICY } from '../support/routes.js';

const policy = TEST_POLICY;
const node = TEST_NODE;

function keysOf(object: StaticRouteObject): string[] {
  const parsed = parseRouteSpec(object.spec);
  return parsed.ok ? parsed.spec.destinations.map(formatPrefix) : [];
}

function object(name: string, second: number, spec: Record<string, unknown>, deleting = false): StaticRouteObject {
  return staticRouteAt(name, second, spec, deleting ? { deletionTimestamp: '2025-02-01T00:00:00Z' } : {});
}

/** Objects over a small pool of destinations and gateways, so that conflicts and shared routes are common. */
function randomObject(next: () => number, name: string): StaticRouteObject {
  const pool = ['34.0.0.1', '34.0.0.2', '34.0.0.3', '34.0.0.4', '34.0.0.5', '34.0.0.0/24', '10.116.0.9', '34.0.0.6'];
  const destinations = [
    ...new Set(Array.from({ length: 1 + Math.floor(next() * 3) }, () => pool[Math.floor(next() * pool.length)])),
  ];
  const gateway = next() < 0.5 ? '10.116.0.5' : '10.116.0.6';
  const spec: Record<string, unknown> =
    next() < 0.1 ? { destinations, gateway: 'not-an-ip' } : { destinations, gateway };
  if (next() < 0.15) spec.nodeSelector = { matchLabels: { zone: 'ams3' } };
  return object(name, Math.floor(next() * 5), spec, next() < 0.1);
}

/** What an incremental pass computes: desired routes of the planned keys and outcomes of the assessed objects. */
function incremental(
  index: ClaimIndex,
  objects: ReadonlyMap<string, StaticRouteObject>,
  changedKeys: Iterable<string>,
  changedObjects: Iterable<string>,
) {
  const scope = affectedScope(index, changedKeys, changedObjects);
  const inScope = [...scope.objects].flatMap((name) => objects.get(name) ?? []);
  return { scope, state: computeDesiredState(inScope, node, policy) };
}

function outcomes(state: DesiredState, names: Iterable<string>) {
  const failures = new Map<string, string>();
  return [...names].flatMap((name) => {
    const assessment = state.assessments.get(name);
    return assessment ? [[name, objectOutcome(assessment, failures)] as const] : [];
  });
}

describe('ClaimIndex', () => {
  it('reports the old and the new destinations when an object changes, and nothing when it does not', () => {
    const index = new ClaimIndex();
    expect(index.set('a', 'v1', () => ['34.0.0.1/32', '34.0.0.2/32'])).toEqual(['34.0.0.1/32', '34.0.0.2/32']);
    expect(index.set('a', 'v1', () => ['never computed'])).toBeUndefined();
    expect(
      index
        .set('a', 'v2', () => ['34.0.0.2/32', '34.0.0.3/32'])
        ?.slice()
        .sort(),
    ).toEqual(['34.0.0.1/32', '34.0.0.2/32', '34.0.0.3/32']);
    expect(index.claimants('34.0.0.1/32')).toEqual([]);
    expect(index.claimants('34.0.0.3/32')).toEqual(['a']);
  });

  it('keeps every claimant of a destination and forgets a deleted one', () => {
    const index = new ClaimIndex();
    index.set('a', '1', () => ['34.0.0.1/32']);
    index.set('b', '1', () => ['34.0.0.1/32']);
    index.set('c', '1', () => ['34.0.0.1/32']);
    expect([...index.claimants('34.0.0.1/32')].sort()).toEqual(['a', 'b', 'c']);
    expect(index.delete('b')).toEqual(['34.0.0.1/32']);
    expect([...index.claimants('34.0.0.1/32')].sort()).toEqual(['a', 'c']);
    index.delete('a');
    index.delete('c');
    expect(index.claimants('34.0.0.1/32')).toEqual([]);
    expect(index.size).toBe(0);
  });
});

describe('affectedScope', () => {
  it('is the object and its destinations when nothing else claims them', () => {
    const index = new ClaimIndex();
    index.set('a', '1', () => ['34.0.0.1/32']);
    index.set('b', '1', () => ['34.0.0.2/32']);
    const scope = affectedScope(index, ['34.0.0.1/32'], ['a']);
    expect([...scope.assessed]).toEqual(['a']);
    expect([...scope.keys]).toEqual(['34.0.0.1/32']);
    expect([...scope.objects]).toEqual(['a']);
  });

  it('assesses the other claimants of a changed destination and plans all their destinations', () => {
    const index = new ClaimIndex();
    index.set('winner', '1', () => ['34.0.0.1/32']);
    index.set('loser', '1', () => ['34.0.0.1/32', '34.0.0.2/32']);
    index.set('third', '1', () => ['34.0.0.2/32', '34.0.0.3/32']);
    const scope = affectedScope(index, ['34.0.0.1/32'], ['winner']);
    expect([...scope.assessed].sort()).toEqual(['loser', 'winner']);
    expect([...scope.keys].sort()).toEqual(['34.0.0.1/32', '34.0.0.2/32']);
    // `third` contests a planned destination, so it takes part in the computation without being reported.
    expect([...scope.objects].sort()).toEqual(['loser', 'third', 'winner']);
  });

  it('hands a destination to the next claimant when the winner goes: conflict becomes applied', () => {
    const winner = object('winner', 1, { destinations: ['34.0.0.1'], gateway: '10.116.0.5' });
    const loser = object('loser', 2, { destinations: ['34.0.0.1'], gateway: '10.116.0.6' });
    const objects = new Map([
      ['winner', winner],
      ['loser', loser],
    ]);
    const index = new ClaimIndex();
    for (const [name, item] of objects) index.set(name, '1', () => keysOf(item));
    const before = incremental(index, objects, [], ['loser']);
    expect(outcomes(before.state, before.scope.assessed)).toContainEqual([
      'loser',
      expect.objectContaining({ state: 'Conflict' }),
    ]);
    objects.delete('winner');
    const gone = index.delete('winner');
    const after = incremental(index, objects, gone, ['winner']);
    expect(after.state.routes.get('34.0.0.1/32')).toMatchObject({ owner: 'loser', gateways: ['10.116.0.6'] });
    expect(outcomes(after.state, after.scope.assessed)).toEqual([
      ['loser', expect.objectContaining({ state: 'Applied' })],
    ]);
  });

  it('plans and assesses exactly what a full computation gives, over 300 random changes', () => {
    const next = seededRandom(34).next;
    const objects = new Map<string, StaticRouteObject>();
    const index = new ClaimIndex();
    for (let step = 0; step < 300; step++) {
      const name = `o${Math.floor(next() * 12)}`;
      let changedKeys: readonly string[];
      if (objects.has(name) && next() < 0.25) {
        objects.delete(name);
        changedKeys = index.delete(name);
      } else {
        const item = randomObject(next, name);
        objects.set(name, item);
        changedKeys = index.set(name, `${step}`, () => keysOf(item)) ?? [];
      }
      const { scope, state } = incremental(index, objects, changedKeys, [name]);
      const full = computeDesiredState([...objects.values()], node, policy);
      for (const key of scope.keys) expect(state.routes.get(key), `step ${step}, ${key}`).toEqual(full.routes.get(key));
      expect(outcomes(state, scope.assessed), `step ${step}`).toEqual(outcomes(full, scope.assessed));
      // Every destination whose claimants changed is planned, so a dropped destination loses its route.
      for (const key of changedKeys) expect(scope.keys.has(key)).toBe(true);
    }
  });
});
