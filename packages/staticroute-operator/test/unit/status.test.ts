import { describe, expect, it } from 'vitest';
import type { ObjectAssessment } from '../../src/logic/desired.js';
import {
  objectOutcome,
  sameSummary,
  summarizeStatus,
  type NodeStatusEntry,
  type StatusCondition,
} from '../../src/logic/status.js';

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

const now = '2025-03-01T00:00:00Z';
function entry(state: NodeStatusEntry['state'], observedGeneration = 2): NodeStatusEntry {
  return { state, message: '', observedGeneration, lastUpdateTime: now };
}

describe('summarizeStatus', () => {
  it('counts applied nodes of the current generation against the selected nodes', () => {
    const summary = summarizeStatus({
      generation: 2,
      entries: { a: entry('Applied'), b: entry('Applied', 1), c: entry('Failed') },
      selectedNodes: ['a', 'b', 'c'],
      now,
    });
    expect(summary.ready).toBe('1/3');
    expect(summary.conditions[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'Failed',
      message: 'b: reported an older generation; c: Failed',
      observedGeneration: 2,
    });
  });

  it('is Ready when every selected node applied', () => {
    const summary = summarizeStatus({
      generation: 2,
      entries: { a: entry('Applied'), b: entry('Applied'), c: entry('NotSelected') },
      selectedNodes: ['a', 'b'],
      now,
    });
    expect(summary.ready).toBe('2/2');
    expect(summary.conditions).toEqual([
      expect.objectContaining({ type: 'Ready', status: 'True', reason: 'Applied' }),
      expect.objectContaining({ type: 'Conflict', status: 'False' }),
    ]);
  });

  it('counts nodes that have not reported yet as pending', () => {
    const summary = summarizeStatus({
      generation: 2,
      entries: { a: entry('Applied') },
      selectedNodes: ['a', 'b'],
      now,
    });
    expect(summary.ready).toBe('1/2');
    expect(summary.conditions[0]).toMatchObject({ reason: 'Pending', message: 'b: not reported yet' });
  });

  it("ignores entries without a state (the framework's handler outcomes): they are not reports", () => {
    const frameworkOnly = { handlers: { routes: { outcome: 'success' } } } as unknown as NodeStatusEntry;
    const input = { generation: 2, selectedNodes: ['a', 'b'], now };
    const withFrameworkEntry = summarizeStatus({ ...input, entries: { a: entry('Applied'), b: frameworkOnly } });
    expect(withFrameworkEntry).toEqual(summarizeStatus({ ...input, entries: { a: entry('Applied') } }));
    expect(withFrameworkEntry.conditions[0]).toMatchObject({ reason: 'Pending', message: 'b: not reported yet' });
    expect(summarizeStatus({ generation: 2, entries: { a: entry('Applied'), b: frameworkOnly }, now }).ready).toBe(
      '1/1',
    );
  });

  it('falls back to the reporting nodes when the selected set is unknown', () => {
    const summary = summarizeStatus({
      generation: 2,
      entries: { a: entry('Applied'), b: entry('NotSelected'), c: entry('Conflict'), gone: null },
      now,
    });
    expect(summary.ready).toBe('1/2');
    expect(summary.conditions[1]).toMatchObject({
      type: 'Conflict',
      status: 'True',
      message: 'conflict reported by c',
    });
    expect(summary.conditions[0]).toMatchObject({ reason: 'Conflict' });
  });

  it('reports NoNodeSelected', () => {
    const summary = summarizeStatus({ generation: 1, entries: {}, selectedNodes: [], now });
    expect(summary.ready).toBe('0/0');
    expect(summary.conditions[0]).toMatchObject({ status: 'False', reason: 'NoNodeSelected' });
  });

  it('keeps lastTransitionTime while the status stays the same', () => {
    const earlier = '2025-01-01T00:00:00Z';
    const previous: StatusCondition[] = [
      { type: 'Ready', status: 'True', reason: 'Applied', message: '', lastTransitionTime: earlier },
      { type: 'Conflict', status: 'True', reason: 'DestinationConflict', message: '', lastTransitionTime: earlier },
    ];
    const summary = summarizeStatus({
      generation: 2,
      entries: { a: entry('Applied') },
      selectedNodes: ['a'],
      previousConditions: previous,
      now,
    });
    expect(summary.conditions[0]?.lastTransitionTime).toBe(earlier);
    expect(summary.conditions[1]?.lastTransitionTime).toBe(now);
  });

  it('is the same whatever order the nodes reported in (convergence of concurrent writers)', () => {
    const entries = { a: entry('Applied'), b: entry('Failed'), c: entry('Applied') };
    const reversed = Object.fromEntries(Object.entries(entries).reverse());
    const input = { generation: 2, selectedNodes: ['a', 'b', 'c'], now };
    expect(summarizeStatus({ ...input, entries: reversed })).toEqual(summarizeStatus({ ...input, entries }));
  });
});

describe('sameSummary', () => {
  const input = { generation: 2, entries: { a: entry('Applied'), b: entry('Failed') }, selectedNodes: ['a', 'b'], now };

  it('is true for a summary read back from the API server, whose object keys come sorted', () => {
    const computed = summarizeStatus(input);
    const sortKeys = (condition: StatusCondition) =>
      Object.fromEntries(
        Object.entries(condition).sort(([x], [y]) => x.localeCompare(y)),
      ) as unknown as StatusCondition;
    const readBack = { ready: computed.ready, conditions: computed.conditions.map(sortKeys) };
    expect(JSON.stringify(readBack)).not.toBe(JSON.stringify(computed));
    expect(sameSummary(computed, readBack)).toBe(true);
  });

  it('is false when anything differs, the order of conditions included', () => {
    const computed = summarizeStatus(input);
    expect(sameSummary(computed, { ...computed, ready: '2/2' })).toBe(false);
    expect(sameSummary(computed, { ...computed, conditions: [...computed.conditions].reverse() })).toBe(false);
    const [ready, conflict] = computed.conditions as [StatusCondition, StatusCondition];
    expect(sameSummary(computed, { ...computed, conditions: [{ ...ready, message: 'other' }, conflict] })).toBe(false);
  });
});
