import { describe, expect, it } from 'vitest';
import type { DesiredRoute } from '../../src/logic/desired.js';
import { mustParsePrefix } from '../../src/logic/ip.js';
import { planRouteChanges, type KernelRoute } from '../../src/logic/plan.js';
import { RouteView } from '../../src/logic/route-view.js';

const OURS = 201;

function kernel(destination: string, gateways: string[], protocol = OURS, metric = 0): KernelRoute {
  return { family: 4, destination, gateways, protocol, metric, type: 1 };
}

function desired(destination: string, gateways: string[]): DesiredRoute {
  return {
    key: destination,
    destination: mustParsePrefix(destination),
    gateways,
    owner: 'o',
    sharedWith: [],
    seedGateways: [],
  };
}

describe('RouteView', () => {
  it('follows a plan it executed: a gateway change leaves only the new route', () => {
    const view = new RouteView(OURS);
    view.replaceAll([kernel('34.0.0.1/32', ['10.0.0.5']), kernel('10.0.0.0/24', [], 2)]);
    const want = new Map([['34.0.0.1/32', desired('34.0.0.1/32', ['10.0.0.6'])]]);
    const plan = planRouteChanges(want, view.routesAt(want.keys()), { protocol: OURS });
    expect(plan.operations.map((op) => op.op)).toEqual(['delete', 'add']);
    for (const operation of plan.operations) view.applied(operation);
    expect(view.routesAt(['34.0.0.1/32'])).toEqual([kernel('34.0.0.1/32', ['10.0.0.6'])]);
    expect(planRouteChanges(want, view.routesAt(want.keys()), { protocol: OURS }).operations).toEqual([]);
    expect(view.size).toBe(2);
  });

  it('replaces a multipath route in place', () => {
    const view = new RouteView(OURS);
    view.replaceAll([kernel('34.0.0.1/32', ['10.0.0.5', '10.0.0.6'])]);
    const want = new Map([['34.0.0.1/32', desired('34.0.0.1/32', ['10.0.0.5', '10.0.0.7'])]]);
    const plan = planRouteChanges(want, view.routesAt(want.keys()), { protocol: OURS });
    expect(plan.operations.map((op) => op.op)).toEqual(['replace']);
    for (const operation of plan.operations) view.applied(operation);
    expect(view.routesAt(['34.0.0.1/32'])).toEqual([kernel('34.0.0.1/32', ['10.0.0.5', '10.0.0.7'])]);
    expect(view.size).toBe(1);
  });

  it('records routes of other protocols from notifications, so a wanted destination they hold is blocked', () => {
    const view = new RouteView(OURS);
    view.replaceAll([]);
    view.notified('route-added', kernel('34.0.0.1/32', ['10.0.0.9'], 4 + 12));
    const want = new Map([['34.0.0.1/32', desired('34.0.0.1/32', ['10.0.0.6'])]]);
    expect(planRouteChanges(want, view.routesAt(want.keys()), { protocol: OURS }).blocked).toHaveLength(1);
    view.notified('route-deleted', kernel('34.0.0.1/32', ['10.0.0.9'], 4 + 12));
    expect(view.routesAt(['34.0.0.1/32'])).toEqual([]);
    expect(view.size).toBe(0);
  });

  it('ignores notifications about its own protocol (its operations and full re-reads keep those)', () => {
    const view = new RouteView(OURS);
    view.replaceAll([kernel('34.0.0.1/32', ['10.0.0.5'])]);
    view.notified('route-deleted', kernel('34.0.0.1/32', ['10.0.0.5']));
    view.notified('route-added', kernel('34.0.0.2/32', ['10.0.0.5']));
    expect(view.routesAt(['34.0.0.1/32', '34.0.0.2/32'])).toEqual([kernel('34.0.0.1/32', ['10.0.0.5'])]);
  });

  it('shares one next-hop array between routes via the same gateways', () => {
    const view = new RouteView(OURS);
    view.replaceAll([kernel('34.0.0.1/32', ['10.0.0.5']), kernel('34.0.0.2/32', ['10.0.0.5'])]);
    const [a, b] = view.routesAt(['34.0.0.1/32', '34.0.0.2/32']) as [KernelRoute, KernelRoute];
    expect(a.gateways).toBe(b.gateways);
  });
});
