import { describe, expect, it } from 'vitest';
import {
  abbreviateNode,
  aggregate,
  AGGREGATOR_FINALIZER,
  groupNotReady,
  type AggregateInput,
  type NodeReportView,
} from '../../src/logic/aggregate.js';
import { KOPF_FINALIZER } from '../../src/logic/migration.js';
import type { ReportEntry } from '../../src/logic/report.js';
import type { StaticRouteObject } from '../../src/logic/spec.js';

const NOW = Date.parse('2026-01-01T00:10:00Z');
const UID = 'uid-1';

function route(metadata: Partial<StaticRouteObject['metadata']> = {}, spec: Record<string, unknown> = {}) {
  return {
    metadata: { name: 'sr', uid: UID, generation: 2, finalizers: [AGGREGATOR_FINALIZER], ...metadata },
    spec: { destinations: ['203.0.113.0/24'], gateway: '10.116.0.5', ...spec },
  } as StaticRouteObject;
}

function applied(extra: Partial<ReportEntry> = {}): ReportEntry {
  return { uid: UID, generation: 2, state: 'Applied', routes: 1, ...extra };
}

function report(entry: ReportEntry | undefined, heartbeatAgoMs = 1_000): NodeReportView {
  return { entry, heartbeatAt: NOW - heartbeatAgoMs };
}

function input(
  object: StaticRouteObject,
  reports: Record<string, NodeReportView>,
  extra: Partial<AggregateInput> = {},
) {
  return {
    object,
    nodes: new Map([
      ['node-a', { zone: 'a' }],
      ['node-b', { zone: 'b' }],
      ['node-c', { zone: 'a' }],
    ]),
    reports: new Map(Object.entries(reports)),
    now: NOW,
    silentAfterMs: 180_000,
    deletionGraceMs: 120_000,
    ...extra,
  } satisfies AggregateInput;
}

describe('aggregate: a live object', () => {
  it('READY k/N counts the selected nodes that applied the current generation', () => {
    const decision = aggregate(
      input(route(), {
        'node-a': report(applied()),
        'node-b': report(applied({ generation: 1 })),
        'node-c': report(applied()),
      }),
    );
    expect(decision.status.ready).toBe('2/3');
    expect(decision.status.observedGeneration).toBe(2);
    expect(decision.status.notReady).toEqual([
      { state: 'Pending', message: 'reported an older generation', count: 1, nodes: ['node-b'] },
    ]);
    expect(decision.status.conditions[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'Pending' });
  });

  it('Ready True when every selected node applied it; nodeSelector narrows the selection', () => {
    const object = route({}, { nodeSelector: { matchLabels: { zone: 'a' } } });
    const decision = aggregate(input(object, { 'node-a': report(applied()), 'node-c': report(applied()) }));
    expect(decision.status.ready).toBe('2/2');
    expect(decision.status.conditions[0]).toMatchObject({ status: 'True', reason: 'Applied' });
    expect(decision.status.notReady).toEqual([]);
  });

  it('an entry about an older namesake (another uid) counts as not reported', () => {
    const decision = aggregate(input(route(), { 'node-a': report(applied({ uid: 'old' })) }));
    expect(decision.status.ready).toBe('0/3');
    expect(decision.status.notReady).toContainEqual({
      state: 'Pending',
      message: 'not reported yet',
      count: 1,
      nodes: ['node-a'],
    });
  });

  it('Failed wins the reason over Refused, Conflict and Pending, and the Conflict condition lists conflicted nodes', () => {
    const decision = aggregate(
      input(route(), {
        'node-a': report(applied({ state: 'Conflict', message: 'held by other' })),
        'node-b': report(applied({ state: 'Failed', message: 'network unreachable' })),
      }),
    );
    expect(decision.status.conditions[0]).toMatchObject({ reason: 'Failed' });
    expect(decision.status.conditions[0]?.message).toContain('Failed on 1 node (node-b): network unreachable');
    expect(decision.status.conditions[1]).toMatchObject({ type: 'Conflict', status: 'True' });
  });

  it('no selected node: Ready False NoNodeSelected, 0/0', () => {
    const object = route({}, { nodeSelector: { matchLabels: { zone: 'nowhere' } } });
    const decision = aggregate(input(object, {}));
    expect(decision.status.ready).toBe('0/0');
    expect(decision.status.conditions[0]).toMatchObject({ reason: 'NoNodeSelected' });
  });

  it('adds the finalizer once, and drops per-node and Kopf finalizers of earlier versions with it', () => {
    const object = route({ finalizers: ['staticroute.opkit.dev/node-a', KOPF_FINALIZER, 'example.com/other'] });
    const decision = aggregate(input(object, {}));
    expect(decision.finalizer).toBe('add');
    expect(decision.legacyFinalizers).toEqual(['staticroute.opkit.dev/node-a', KOPF_FINALIZER]);
    expect(aggregate(input(route(), {})).finalizer).toBe('keep');
  });

  it('keeps lastTransitionTime while the condition status is unchanged', () => {
    const first = aggregate(input(route(), { 'node-a': report(applied()) }));
    const stored = route({}, {});
    stored.status = { conditions: first.status.conditions };
    const later = aggregate({ ...input(stored, { 'node-a': report(applied()) }), now: NOW + 60_000 });
    expect(later.status.conditions[0]?.lastTransitionTime).toBe(first.status.conditions[0]?.lastTransitionTime);
  });

  it('summaries stay one screen at 500 nodes: a count and three names per group, five groups at most', () => {
    const nodes = new Map(Array.from({ length: 500 }, (_, i) => [`node-${String(i).padStart(3, '0')}`, {}]));
    const reports: Record<string, NodeReportView> = {};
    for (const [name] of nodes) {
      const index = Number(name.slice(5));
      reports[name] = report(applied({ state: 'Failed', message: `error ${index % 7}` }));
    }
    const decision = aggregate({ ...input(route(), reports), nodes });
    expect(decision.status.notReady).toHaveLength(5);
    expect(decision.status.notReady.every((group) => group.nodes.length === 3)).toBe(true);
    expect(decision.status.conditions[0]?.message.length).toBeLessThan(600);
    expect(decision.status.conditions[0]?.message).toMatch(/and \d+ more nodes$/);
  });
});

describe('aggregate: deletion', () => {
  const deleting = () => route({ deletionTimestamp: new Date(NOW - 5_000).toISOString() });

  it('waits for every selected node with an agent until each reported Removed, then releases', () => {
    const waiting = aggregate(
      input(deleting(), {
        'node-a': report(applied({ state: 'Removed', routes: 0 })),
        'node-b': report(applied()),
      }),
    );
    expect(waiting.finalizer).toBe('keep');
    expect(waiting.waitingFor).toEqual(['node-b']);
    expect(waiting.status.ready).toBe('Terminating 1/2');
    expect(waiting.status.conditions[0]).toMatchObject({ reason: 'Deleting' });
    const done = aggregate(
      input(deleting(), {
        'node-a': report(applied({ state: 'Removed', routes: 0 })),
        'node-b': report(applied({ state: 'Removed', routes: 0 })),
      }),
    );
    expect(done.finalizer).toBe('release');
    expect(done.givenUp).toEqual([]);
  });

  it('does not wait for nodes whose Node is gone or that run no agent', () => {
    const decision = aggregate({
      ...input(deleting(), {
        'node-a': report(applied({ state: 'Removed', routes: 0 })),
        'gone-node': report(applied()),
      }),
    });
    expect(decision.finalizer).toBe('release');
  });

  it('waits for a silent agent for the grace period only, then gives up on it', () => {
    const silent = report(applied(), 10 * 60_000);
    const within = aggregate(input(deleting(), { 'node-a': silent }));
    expect(within.finalizer).toBe('keep');
    expect(within.requeueAfterMs).toBe(115_000);
    const after = aggregate({ ...input(deleting(), { 'node-a': silent }), now: NOW + 120_000 });
    expect(after.finalizer).toBe('release');
    expect(after.givenUp).toEqual(['node-a']);
  });

  it('a live agent that stops reporting is looked at again when it turns silent (no report change needed)', () => {
    // Last report 10 s before now: silent 180 s after it, past the grace (115 s from now): look again then.
    const decision = aggregate(input(deleting(), { 'node-a': report(applied(), 10_000) }));
    expect(decision.finalizer).toBe('keep');
    expect(decision.requeueAfterMs).toBe(170_000);
    const later = aggregate({ ...input(deleting(), { 'node-a': report(applied(), 10_000) }), now: NOW + 170_000 });
    expect(later.finalizer).toBe('release');
    expect(later.givenUp).toEqual(['node-a']);
  });

  it('a live agent that cannot remove a route is waited for, and its failure is shown', () => {
    const decision = aggregate(
      input(deleting(), { 'node-a': report(applied({ state: 'Failed', message: 'cannot remove routes: x' })) }),
    );
    expect(decision.finalizer).toBe('keep');
    expect(decision.status.notReady[0]).toMatchObject({ state: 'Failed', message: 'cannot remove routes: x' });
  });

  it('an object held only by finalizers of earlier versions is released the same way', () => {
    const object = route({ deletionTimestamp: new Date(NOW).toISOString(), finalizers: ['staticroute.opkit.dev/n1'] });
    const decision = aggregate(input(object, { 'node-a': report(applied({ state: 'Removed', routes: 0 })) }));
    expect(decision.finalizer).toBe('release');
    expect(decision.legacyFinalizers).toEqual(['staticroute.opkit.dev/n1']);
  });

  it('an unselected node that still reports routes of the object is waited for', () => {
    const object = route(
      { deletionTimestamp: new Date(NOW).toISOString() },
      { nodeSelector: { matchLabels: { zone: 'b' } } },
    );
    const decision = aggregate(
      input(object, {
        'node-a': report(applied({ state: 'NotSelected', routes: 2 })),
        'node-b': report(applied({ state: 'Removed', routes: 0 })),
      }),
    );
    expect(decision.waitingFor).toEqual(['node-a']);
  });
});

describe('summaries', () => {
  it('abbreviates long node names, keeping their start and end', () => {
    const long = `${'a'.repeat(100)}-pool-7f3k`;
    const short = abbreviateNode(long);
    expect(short.length).toBeLessThanOrEqual(40);
    expect(short.startsWith('aaaa')).toBe(true);
    expect(short.endsWith('pool-7f3k')).toBe(true);
    expect(abbreviateNode('node-a')).toBe('node-a');
  });

  it('groups by state and message, largest group first', () => {
    const groups = groupNotReady([
      { node: 'n3', state: 'Failed', message: 'x' },
      { node: 'n1', state: 'Pending', message: 'not reported yet' },
      { node: 'n2', state: 'Failed', message: 'x' },
    ]);
    expect(groups).toEqual([
      { state: 'Failed', message: 'x', count: 2, nodes: ['n2', 'n3'] },
      { state: 'Pending', message: 'not reported yet', count: 1, nodes: ['n1'] },
    ]);
  });
});
