import { describe, expect, it } from 'vitest';
import type { ObjectAssessment } from '../../src/logic/desired.js';
import { objectOutcome } from '../../src/logic/status.js';

function assessment(extra: Partial<ObjectAssessment> = {}): ObjectAssessment {
  return {
    name: 'sr',
    generation: 2,
    deleting: false,
    selected: true,
    invalid: [],
    refused: [],
    conflicts: [],
    claimed: [],
    ...extra,
  };
}

describe('objectOutcome', () => {
  it('Applied when every claimed route is in place', () => {
    expect(objectOutcome(assessment({ claimed: ['a', 'b'] }), new Map())).toEqual({
      state: 'Applied',
      message: '2/2 routes applied',
      routes: 2,
    });
  });

  it('NotSelected when the node is not selected', () => {
    expect(objectOutcome(assessment({ selected: false }), new Map()).state).toBe('NotSelected');
  });

  it('Refused for an invalid spec, with the problems', () => {
    const outcome = objectOutcome(assessment({ invalid: ['spec.gateway: bad'] }), new Map());
    expect(outcome).toEqual({ state: 'Refused', message: 'invalid spec: spec.gateway: bad', routes: 0 });
  });

  it('Failed wins over refusals and conflicts and names the failing destination', () => {
    const outcome = objectOutcome(
      assessment({
        claimed: ['a', 'b'],
        refused: [{ destination: 'c', reason: 'c is unsafe' }],
        conflicts: [{ destination: 'd', winner: 'other' }],
      }),
      new Map([['b', 'ENETUNREACH: gateway 10.0.0.9 is not reachable']]),
    );
    expect(outcome.state).toBe('Failed');
    expect(outcome.routes).toBe(1);
    expect(outcome.message).toBe('1/4 routes applied; failed: b: ENETUNREACH: gateway 10.0.0.9 is not reachable');
  });

  it('Refused over Conflict', () => {
    const outcome = objectOutcome(
      assessment({
        claimed: ['a'],
        refused: [{ destination: 'c', reason: 'c overlaps x' }],
        conflicts: [{ destination: 'd', winner: 'w' }],
      }),
      new Map(),
    );
    expect(outcome).toEqual({ state: 'Refused', message: '1/3 routes applied; refused: c overlaps x', routes: 1 });
  });

  it('Conflict names the winner', () => {
    const outcome = objectOutcome(assessment({ conflicts: [{ destination: 'd', winner: 'primary' }] }), new Map());
    expect(outcome).toEqual({
      state: 'Conflict',
      message: '0/1 routes applied; conflict: d is routed by StaticRoute primary',
      routes: 0,
    });
  });

  it('keeps messages short for many problems', () => {
    const refused = Array.from({ length: 20 }, (_, i) => ({ destination: `d${i}`, reason: `r${i}` }));
    expect(objectOutcome(assessment({ refused }), new Map()).message).toMatch(/r4; and 15 more$/);
  });
});
