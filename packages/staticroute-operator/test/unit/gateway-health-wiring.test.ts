/**
 * Gateway health (ECMP) as the operator wires it, without I/O: the spec and the cluster default, the next hops each
 * route gets from the gateways' states, what a node reports, what the aggregator makes of 500 nodes' reports, the
 * Events of a transition, and the node metrics.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { nodeRouteMetrics } from '../../src/adapters/metrics.js';
import {
  aggregate,
  AGGREGATOR_FINALIZER,
  gatewayTransition,
  type AggregateInput,
  type NodeReportView,
} from '../../src/logic/aggregate.js';
import { readConfig } from '../../src/logic/config.js';
import { computeDesiredState, type GatewayHealthView } from '../../src/logic/desired.js';
import type { GatewayState } from '../../src/logic/gateway-health.js';
import { entryFromOutcome, gatewaysField, type ReportEntry } from '../../src/logic/report.js';
import { gatewayHealthChecked, parseRouteSpec, type StaticRouteObject } from '../../src/logic/spec.js';
import { objectOutcome, type StatusCondition } from '../../src/logic/status.js';
import { staticRouteAt, TEST_NODE, TEST_POLICY } from '../support/routes.js';

const GW1 = '10.116.0.5';
const GW2 = '10.116.0.12';

describe('spec.gatewayHealth', () => {
  it('is optional: check left to the cluster default, whenAllDown Keep', () => {
    const result = parseRouteSpec({ destinations: ['198.51.100.0/24'], gateways: [GW1, GW2] });
    expect(result.ok && result.spec.gatewayHealth).toEqual({ whenAllDown: 'Keep' });
    if (!result.ok) return;
    expect(gatewayHealthChecked(result.spec, true)).toBe(true);
    expect(gatewayHealthChecked(result.spec, false)).toBe(false);
  });

  it('check overrides the cluster default either way', () => {
    for (const [check, byDefault, checked] of [
      ['Enabled', false, true],
      ['Disabled', true, false],
    ] as const) {
      const result = parseRouteSpec({ destinations: ['198.51.100.0/24'], gateway: GW1, gatewayHealth: { check } });
      expect(result.ok && gatewayHealthChecked(result.spec, byDefault)).toBe(checked);
    }
    const withdraw = parseRouteSpec({
      destinations: ['198.51.100.0/24'],
      gateway: GW1,
      gatewayHealth: { whenAllDown: 'Withdraw' },
    });
    expect(withdraw.ok && withdraw.spec.gatewayHealth).toEqual({ whenAllDown: 'Withdraw' });
  });

  it('refuses other values with the CRD message, naming the field', () => {
    const result = parseRouteSpec({
      destinations: ['198.51.100.0/24'],
      gateway: GW1,
      gatewayHealth: { check: 'enabled', whenAllDown: 'Drop' },
    });
    expect(result.ok ? [] : result.problems).toEqual([
      'spec.gatewayHealth.check: "enabled" is not one of Enabled, Disabled',
      'spec.gatewayHealth.whenAllDown: "Drop" is not one of Keep, Withdraw',
    ]);
    const notObject = parseRouteSpec({ destinations: ['198.51.100.0/24'], gateway: GW1, gatewayHealth: 'on' });
    expect(notObject.ok ? [] : notObject.problems).toEqual([
      'spec.gatewayHealth: must be an object (check, whenAllDown)',
    ]);
  });
});

describe('GATEWAY_HEALTH_CHECK', () => {
  it('defaults to Enabled; Disabled turns the cluster default off; anything else is refused', () => {
    expect(readConfig({ NODE_NAME: 'n' }).gatewayHealthCheck).toBe(true);
    expect(readConfig({ NODE_NAME: 'n', GATEWAY_HEALTH_CHECK: 'Enabled' }).gatewayHealthCheck).toBe(true);
    expect(readConfig({ NODE_NAME: 'n', GATEWAY_HEALTH_CHECK: 'Disabled' }).gatewayHealthCheck).toBe(false);
    expect(readConfig({ NODE_NAME: 'n', GATEWAY_HEALTH_CHECK: 'disabled' }).gatewayHealthCheck).toBe(false);
    expect(() => readConfig({ NODE_NAME: 'n', GATEWAY_HEALTH_CHECK: 'off' })).toThrow(
      /GATEWAY_HEALTH_CHECK must be Enabled or Disabled, got "off"/,
    );
  });
});

function health(
  states: Record<string, GatewayState>,
  options: { checkByDefault?: boolean; installed?: Record<string, string[]> } = {},
): GatewayHealthView {
  return {
    checkByDefault: options.checkByDefault ?? true,
    stateOf: (gateway) => states[gateway] ?? 'Unknown',
    installed: (key) => options.installed?.[key],
  };
}

let clock = 0;
function route(name: string, spec: Record<string, unknown>): StaticRouteObject {
  clock++;
  return staticRouteAt(name, clock, spec, { uid: `uid-${name}` });
}

const ecmp = () => route('ecmp', { destinations: ['198.51.100.0/24', '203.0.113.0/24'], gateways: [GW1, GW2] });

describe('desired routes with gateway health', () => {
  it('an Unreachable gateway leaves every ECMP route; the outcome stays Applied and says so', () => {
    const state = computeDesiredState([ecmp()], TEST_NODE, TEST_POLICY, health({ [GW2]: 'Unreachable' }));
    expect([...state.routes.values()].map((item) => item.gateways)).toEqual([[GW1], [GW1]]);
    const assessment = state.assessments.get('ecmp');
    expect(assessment?.checkedGateways).toEqual([GW1, GW2]);
    const outcome = objectOutcome(assessment!, new Map());
    expect(outcome).toEqual({
      state: 'Applied',
      routes: 2,
      message: `2/2 routes applied; gateway ${GW2} unreachable, withdrawn from 2 routes`,
      unreachableGateways: [GW2],
    });
    expect(entryFromOutcome('uid-ecmp', 1, outcome)).toEqual({
      uid: 'uid-ecmp',
      generation: 1,
      state: 'Applied',
      routes: 2,
      message: `2/2 routes applied; gateway ${GW2} unreachable, withdrawn from 2 routes`,
      unreachableGateways: [GW2],
    });
  });

  it('Unknown and Reachable gateways are used; nothing is said', () => {
    const state = computeDesiredState([ecmp()], TEST_NODE, TEST_POLICY, health({ [GW1]: 'Reachable' }));
    expect(state.routes.get('198.51.100.0/24')?.gateways).toEqual([GW1, GW2]);
    const outcome = objectOutcome(state.assessments.get('ecmp')!, new Map());
    expect(outcome).toEqual({ state: 'Applied', routes: 2, message: '2/2 routes applied' });
    expect(entryFromOutcome('uid-ecmp', 1, outcome)).toEqual({
      uid: 'uid-ecmp',
      generation: 1,
      state: 'Applied',
      routes: 2,
    });
  });

  it('all gateways Unreachable: the installed next hops are kept (no flap), reported as kept', () => {
    const state = computeDesiredState(
      [ecmp()],
      TEST_NODE,
      TEST_POLICY,
      health({ [GW1]: 'Unreachable', [GW2]: 'Unreachable' }, { installed: { '198.51.100.0/24': [GW1] } }),
    );
    expect(state.routes.get('198.51.100.0/24')?.gateways).toEqual([GW1]);
    expect(state.routes.get('203.0.113.0/24')?.gateways).toEqual([GW1, GW2]);
    const outcome = objectOutcome(state.assessments.get('ecmp')!, new Map());
    expect(outcome.state).toBe('Applied');
    expect(outcome.message).toBe('2/2 routes applied; all gateways unreachable, routes kept');
    expect(outcome.unreachableGateways).toEqual([GW1, GW2]);
  });

  it('a single gateway down is kept by default, withdrawn with whenAllDown: Withdraw', () => {
    const kept = route('kept', { destinations: ['198.51.100.7'], gateway: GW2 });
    const withdrawn = route('withdrawn', {
      destinations: ['198.51.100.8'],
      gateway: GW2,
      gatewayHealth: { whenAllDown: 'Withdraw' },
    });
    const state = computeDesiredState([kept, withdrawn], TEST_NODE, TEST_POLICY, health({ [GW2]: 'Unreachable' }));
    expect([...state.routes.keys()]).toEqual(['198.51.100.7/32']);
    expect(objectOutcome(state.assessments.get('kept')!, new Map())).toMatchObject({
      state: 'Applied',
      routes: 1,
      message: '1/1 routes applied; all gateways unreachable, routes kept',
    });
    expect(objectOutcome(state.assessments.get('withdrawn')!, new Map())).toEqual({
      state: 'Applied',
      routes: 0,
      message: '0/1 routes applied; all gateways unreachable, routes withdrawn (whenAllDown: Withdraw)',
      unreachableGateways: [GW2],
    });
  });

  it('check: Disabled, or the cluster default off, leaves the routes alone and probes nothing', () => {
    const disabled = route('off', {
      destinations: ['198.51.100.0/24'],
      gateways: [GW1, GW2],
      gatewayHealth: { check: 'Disabled' },
    });
    const down = health({ [GW1]: 'Unreachable', [GW2]: 'Unreachable' });
    const state = computeDesiredState([disabled], TEST_NODE, TEST_POLICY, down);
    expect(state.routes.get('198.51.100.0/24')?.gateways).toEqual([GW1, GW2]);
    expect(state.assessments.get('off')?.checkedGateways).toBeUndefined();
    expect(objectOutcome(state.assessments.get('off')!, new Map()).unreachableGateways).toBeUndefined();
    const byDefault = computeDesiredState(
      [ecmp()],
      TEST_NODE,
      TEST_POLICY,
      health({ [GW2]: 'Unreachable' }, { checkByDefault: false }),
    );
    expect(byDefault.routes.get('198.51.100.0/24')?.gateways).toEqual([GW1, GW2]);
  });

  it('claims are decided on the configured gateways: health never hands a destination to another object', () => {
    const older = ecmp();
    const same = route('same', { destinations: ['198.51.100.0/24'], gateways: [GW2, GW1] });
    const other = route('other', { destinations: ['198.51.100.0/24'], gateway: GW1 });
    const state = computeDesiredState([older, same, other], TEST_NODE, TEST_POLICY, health({ [GW2]: 'Unreachable' }));
    expect(state.routes.get('198.51.100.0/24')).toMatchObject({ owner: 'ecmp', gateways: [GW1], sharedWith: ['same'] });
    expect(state.assessments.get('other')?.conflicts).toEqual([{ destination: '198.51.100.0/24', winner: 'ecmp' }]);
    expect(state.assessments.get('same')?.gatewayHealth?.withdrawnFrom).toBe(1);
  });

  it('probes the gateways of objects that route something here, or whose routes are withdrawn, only', () => {
    const winner = route('winner', { destinations: ['198.51.100.9'], gateway: GW1 });
    const loser = route('loser', { destinations: ['198.51.100.9'], gateway: '10.116.0.7' });
    const withdrawn = route('gone', {
      destinations: ['198.51.100.10'],
      gateway: GW2,
      gatewayHealth: { whenAllDown: 'Withdraw' },
    });
    const state = computeDesiredState(
      [winner, loser, withdrawn],
      TEST_NODE,
      TEST_POLICY,
      health({ [GW2]: 'Unreachable' }),
    );
    expect(state.assessments.get('winner')?.checkedGateways).toEqual([GW1]);
    expect(state.assessments.get('loser')?.checkedGateways).toBeUndefined();
    expect(state.assessments.get('gone')?.checkedGateways).toEqual([GW2]);
  });
});

describe('status.gateways of the node report', () => {
  it('lists probed gateways only, and writes null once for one no longer probed', () => {
    const listed = new Set<string>();
    const first = gatewaysField(
      new Map([
        [GW1, { state: 'Reachable' as const, since: '2026-01-01T00:00:00Z', probed: true, reason: 'answered' }],
        [GW2, { state: 'Unreachable' as const, since: '2026-01-01T00:01:00Z', probed: true, reason: 'no reply' }],
        ['192.0.2.1', { state: 'Unknown' as const, probed: false, reason: 'not on a connected subnet' }],
      ]),
      listed,
    );
    expect(first).toEqual({
      [GW2]: { state: 'Unreachable', since: '2026-01-01T00:01:00Z', reason: 'no reply' },
      [GW1]: { state: 'Reachable', since: '2026-01-01T00:00:00Z' },
    });
    expect(gatewaysField(new Map([[GW1, { state: 'Reachable' as const, probed: true }]]), listed)).toEqual({
      [GW1]: { state: 'Reachable' },
      [GW2]: null,
    });
    expect(gatewaysField(new Map([[GW1, { state: 'Reachable' as const, probed: true }]]), listed)).toEqual({
      [GW1]: { state: 'Reachable' },
    });
  });
});

const NOW = Date.parse('2026-01-01T00:10:00Z');
const UID = 'uid-sr';

function object(spec: Record<string, unknown> = {}, conditions?: StatusCondition[]): StaticRouteObject {
  return {
    metadata: { name: 'sr', uid: UID, generation: 1, finalizers: [AGGREGATOR_FINALIZER] },
    spec: { destinations: ['198.51.100.0/24'], gateways: [GW1, GW2], ...spec },
    ...(conditions ? { status: { conditions } } : {}),
  };
}

function nodeName(index: number): string {
  return `node-${String(index).padStart(3, '0')}`;
}

/** `count` nodes; those in `unreachableOn` report GW2 (or `gateways`) unreachable. */
function cluster(
  count: number,
  unreachableOn: (index: number) => string[] | undefined,
  spec: Record<string, unknown> = {},
  /** The nodes' default; `none`: agents of a version without gateway health. */
  reportDefault: 'Enabled' | 'Disabled' | 'none' = 'Enabled',
  conditions?: StatusCondition[],
): AggregateInput {
  const nodes = new Map<string, Record<string, string>>();
  const reports = new Map<string, NodeReportView>();
  for (let index = 1; index <= count; index++) {
    const name = nodeName(index);
    nodes.set(name, {});
    const unreachable = unreachableOn(index);
    const entry: ReportEntry = { uid: UID, generation: 1, state: 'Applied', routes: 1 };
    if (unreachable) entry.unreachableGateways = unreachable;
    reports.set(name, {
      entry,
      heartbeatAt: NOW - 1000,
      ...(reportDefault === 'none' ? {} : { gatewayHealthCheck: reportDefault }),
    });
  }
  return {
    object: object(spec, conditions),
    nodes,
    reports,
    now: NOW,
    silentAfterMs: 180_000,
    deletionGraceMs: 120_000,
  };
}

function gatewaysCondition(input: AggregateInput): StatusCondition | undefined {
  return aggregate(input).status.conditions.find((item) => item.type === 'GatewaysReachable');
}

describe('aggregate: GatewaysReachable', () => {
  it('True while no node reports an unreachable gateway; Ready is unaffected by gateway health', () => {
    const decision = aggregate(cluster(3, () => undefined));
    expect(decision.status.conditions.find((item) => item.type === 'GatewaysReachable')).toMatchObject({
      status: 'True',
      reason: 'Reachable',
      message: 'no gateway unreachable from the 3 nodes checking them',
    });
    expect(decision.status.unreachableGateways).toEqual([]);
    const down = aggregate(cluster(3, () => [GW2]));
    expect(down.status.ready).toBe('3/3');
    expect(down.status.conditions.find((item) => item.type === 'Ready')?.status).toBe('True');
  });

  it('False names the gateway once, with the count of nodes and the first few: one line at 500 nodes', () => {
    const input = cluster(500, (index) => (index % 5 === 0 ? undefined : [GW2]));
    const condition = gatewaysCondition(input);
    expect(condition).toMatchObject({ status: 'False', reason: 'GatewayUnreachable' });
    expect(condition?.message).toBe(
      `${GW2} unreachable from 400/500 nodes (node-001, node-002, node-003, ...): withdrawn from ECMP`,
    );
    expect(condition?.message).not.toContain('\n');
    expect(aggregate(input).status.unreachableGateways).toEqual([GW2]);
  });

  it('says what an all-down set did: kept, or withdrawn with whenAllDown: Withdraw', () => {
    expect(gatewaysCondition(cluster(3, () => [GW1, GW2]))?.message).toBe(
      `${GW2} unreachable from 3/3 nodes (node-001, node-002, node-003): all gateways down, routes kept; ` +
        `${GW1} unreachable from 3/3 nodes (node-001, node-002, node-003): all gateways down, routes kept`,
    );
    const single = cluster(2, () => [GW2], { gateways: undefined, gateway: GW2 });
    expect(gatewaysCondition(single)?.message).toBe(
      `${GW2} unreachable from 2/2 nodes (node-001, node-002): the only gateway, routes kept`,
    );
    const withdraw = cluster(1, () => [GW2], {
      gateways: undefined,
      gateway: GW2,
      gatewayHealth: { whenAllDown: 'Withdraw' },
    });
    expect(gatewaysCondition(withdraw)?.message).toBe(
      `${GW2} unreachable from 1/1 nodes (node-001): all gateways down, routes withdrawn (whenAllDown: Withdraw)`,
    );
  });

  it('absent when no node checks the object: check Disabled, the nodes default to Disabled, or older agents', () => {
    expect(gatewaysCondition(cluster(3, () => undefined, { gatewayHealth: { check: 'Disabled' } }))).toBeUndefined();
    expect(gatewaysCondition(cluster(3, () => undefined, {}, 'Disabled'))).toBeUndefined();
    expect(aggregate(cluster(3, () => undefined, {}, 'Disabled')).status.unreachableGateways).toBeUndefined();
    const olderAgents = { gatewayHealth: { check: 'Enabled' } };
    expect(gatewaysCondition(cluster(3, () => undefined, olderAgents, 'none'))).toBeUndefined();
    expect(
      gatewaysCondition(cluster(3, () => undefined, { gatewayHealth: { check: 'Enabled' } }, 'Disabled')),
    ).toBeDefined();
  });

  it('keeps lastTransitionTime while the status stays, as the other conditions do', () => {
    const before = gatewaysCondition(cluster(3, () => [GW2]))!;
    const earlier = { ...before, lastTransitionTime: '2026-01-01T00:00:00Z' };
    const after = gatewaysCondition(cluster(3, (index) => (index === 1 ? [GW2] : undefined), {}, undefined, [earlier]));
    expect(after?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(after?.message).toContain('1/3 nodes');
  });
});

describe('gatewayTransition: one Event per object transition', () => {
  const reachable = gatewaysCondition(cluster(3, () => undefined))!;
  const downOn = (count: number) => gatewaysCondition(cluster(3, (index) => (index <= count ? [GW2] : undefined)))!;

  it('a Warning when the condition turns False, none while more nodes see the same gateway down', () => {
    const first = gatewayTransition(
      { condition: reachable, unreachable: [] },
      { condition: downOn(1), unreachable: [GW2] },
    );
    expect(first).toEqual({ type: 'Warning', reason: 'GatewayUnreachable', message: downOn(1).message });
    expect(
      gatewayTransition({ condition: downOn(1), unreachable: [GW2] }, { condition: downOn(3), unreachable: [GW2] }),
    ).toBeUndefined();
    expect(
      gatewayTransition({ condition: downOn(3), unreachable: [GW2] }, { condition: downOn(3), unreachable: [GW2] }),
    ).toBeUndefined();
  });

  it('another Warning when another gateway joins the unreachable ones', () => {
    const both = gatewaysCondition(cluster(3, () => [GW1, GW2]))!;
    expect(
      gatewayTransition({ condition: downOn(3), unreachable: [GW2] }, { condition: both, unreachable: [GW1, GW2] }),
    ).toMatchObject({ type: 'Warning', reason: 'GatewayUnreachable' });
  });

  it('a Normal on recovery, nothing for a first True or without the condition', () => {
    expect(
      gatewayTransition({ condition: downOn(3), unreachable: [GW2] }, { condition: reachable, unreachable: [] }),
    ).toMatchObject({ type: 'Normal', reason: 'GatewayReachable' });
    expect(gatewayTransition({}, { condition: reachable, unreachable: [] })).toBeUndefined();
    expect(gatewayTransition({ condition: downOn(3), unreachable: [GW2] }, {})).toBeUndefined();
    expect(gatewayTransition({}, { condition: downOn(1), unreachable: [GW2] })).toMatchObject({ type: 'Warning' });
  });
});

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] === name && (match[2] as string).split(',').sort().join(',') === wanted) return Number(match[3]);
  }
  return undefined;
}

describe('gateway metrics', () => {
  it('gateway_up follows the state (absent while Unknown), transitions are counted, probe rounds follow the prober', async () => {
    const registry = new Registry();
    const metrics = nodeRouteMetrics(registry, 'node-a');
    const stats = { rounds: 4, failedRounds: 1 };
    metrics.probeStats(() => stats);
    metrics.gatewayState(GW1, 'Reachable', true);
    metrics.gatewayState(GW2, 'Unreachable', true);
    let text = await registry.metrics();
    expect(sample(text, 'staticroute_gateway_up', { node: 'node-a', gateway: GW1 })).toBe(1);
    expect(sample(text, 'staticroute_gateway_up', { node: 'node-a', gateway: GW2 })).toBe(0);
    expect(
      sample(text, 'staticroute_gateway_transitions_total', { node: 'node-a', gateway: GW2, state: 'Unreachable' }),
    ).toBe(1);
    expect(sample(text, 'staticroute_gateway_probe_rounds_total', { node: 'node-a' })).toBe(4);
    expect(sample(text, 'staticroute_gateway_probe_failures_total', { node: 'node-a' })).toBe(1);

    stats.rounds = 10;
    metrics.gatewayState(GW2, 'Reachable', true);
    metrics.gatewayState(GW1, 'Unknown', true);
    text = await registry.metrics();
    expect(sample(text, 'staticroute_gateway_up', { node: 'node-a', gateway: GW1 })).toBeUndefined();
    expect(sample(text, 'staticroute_gateway_up', { node: 'node-a', gateway: GW2 })).toBe(1);
    expect(
      sample(text, 'staticroute_gateway_transitions_total', { node: 'node-a', gateway: GW2, state: 'Reachable' }),
    ).toBe(1);
    expect(sample(text, 'staticroute_gateway_probe_rounds_total', { node: 'node-a' })).toBe(10);
    metrics.gatewayForgotten(GW2);
    expect(
      sample(await registry.metrics(), 'staticroute_gateway_up', { node: 'node-a', gateway: GW2 }),
    ).toBeUndefined();
  });
});
