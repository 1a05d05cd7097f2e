import { describe, expect, it } from 'vitest';
import type { DesiredRoute } from '../../src/logic/desired.js';
import { mustParsePrefix } from '../../src/logic/ip.js';
import { describeKernelRoute, planRouteChanges, type KernelRoute, type RouteOperation } from '../../src/logic/plan.js';

const OURS = 201;
const STATIC = 4;

function want(destination: string, gateways: string[], extra: Partial<DesiredRoute> = {}): DesiredRoute {
  const prefix = mustParsePrefix(destination);
  const key = `${destination.includes('/') ? destination : `${destination}/${prefix.family === 4 ? 32 : 128}`}`;
  return { key, destination: prefix, gateways, owner: 'sr', sharedWith: [], seedGateways: [], ...extra };
}

function kernel(
  destination: string,
  gateways: string[],
  protocol = OURS,
  extra: Partial<KernelRoute> = {},
): KernelRoute {
  const family = destination.includes(':') ? 6 : 4;
  return { family, destination, gateways, protocol, metric: family === 4 ? 0 : 1024, type: 1, ...extra };
}

function desired(...routes: DesiredRoute[]): Map<string, DesiredRoute> {
  return new Map(routes.map((route) => [route.key, route]));
}

/** Compact text of the operations, e.g. "delete 192.0.2.1/32 via 10.0.0.1 (gateway-changed)". */
function show(operations: RouteOperation[]): string[] {
  return operations.map((operation) =>
    operation.op === 'delete'
      ? `delete ${operation.route.destination} via ${operation.route.gateways.join(',')} (${operation.reason})`
      : `${operation.op} ${operation.route.key} via ${operation.route.gateways.join(',')} (${operation.reason})`,
  );
}

const plan = (want: Map<string, DesiredRoute>, have: KernelRoute[]) => planRouteChanges(want, have, { protocol: OURS });

describe('planRouteChanges', () => {
  it('adds missing routes', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.1'])), []);
    expect(show(result.operations)).toEqual(['add 192.0.2.1/32 via 10.0.0.1 (missing)']);
    expect(result.unchanged).toBe(0);
  });

  it('leaves correct routes untouched (no flap)', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.1'])), [kernel('192.0.2.1/32', ['10.0.0.1'])]);
    expect(result.operations).toEqual([]);
    expect(result.unchanged).toBe(1);
  });

  it('deletes our routes nobody wants (removed destinations, orphans), never foreign ones', () => {
    const result = plan(desired(), [
      kernel('192.0.2.1/32', ['10.0.0.1']),
      kernel('192.0.2.2/32', ['10.0.0.1'], STATIC),
      kernel('10.0.0.0/20', [], 2),
      kernel('0.0.0.0/0', ['10.0.0.254'], 16),
    ]);
    expect(show(result.operations)).toEqual(['delete 192.0.2.1/32 via 10.0.0.1 (not-desired)']);
  });

  it('changes a single gateway by delete then add, every delete before any add', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.2']), want('192.0.2.2/32', ['10.0.0.2'])), [
      kernel('192.0.2.1/32', ['10.0.0.1']),
      kernel('192.0.2.2/32', ['10.0.0.1']),
    ]);
    expect(show(result.operations)).toEqual([
      'delete 192.0.2.1/32 via 10.0.0.1 (gateway-changed)',
      'delete 192.0.2.2/32 via 10.0.0.1 (gateway-changed)',
      'add 192.0.2.1/32 via 10.0.0.2 (gateway-changed)',
      'add 192.0.2.2/32 via 10.0.0.2 (gateway-changed)',
    ]);
  });

  it('handles a gateway and destinations change together (issue #23: unchanged destinations move too)', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.2']), want('192.0.2.3/32', ['10.0.0.2'])), [
      kernel('192.0.2.1/32', ['10.0.0.1']),
      kernel('192.0.2.2/32', ['10.0.0.1']),
    ]);
    expect(show(result.operations)).toEqual([
      'delete 192.0.2.1/32 via 10.0.0.1 (gateway-changed)',
      'delete 192.0.2.2/32 via 10.0.0.1 (not-desired)',
      'add 192.0.2.1/32 via 10.0.0.2 (gateway-changed)',
      'add 192.0.2.3/32 via 10.0.0.2 (missing)',
    ]);
  });

  it('touches only changed destinations', () => {
    const result = plan(
      desired(
        want('192.0.2.1/32', ['10.0.0.1']),
        want('192.0.2.2/32', ['10.0.0.1']),
        want('192.0.2.4/32', ['10.0.0.1']),
      ),
      [
        kernel('192.0.2.1/32', ['10.0.0.1']),
        kernel('192.0.2.2/32', ['10.0.0.1']),
        kernel('192.0.2.3/32', ['10.0.0.1']),
      ],
    );
    expect(show(result.operations)).toEqual([
      'delete 192.0.2.3/32 via 10.0.0.1 (not-desired)',
      'add 192.0.2.4/32 via 10.0.0.1 (missing)',
    ]);
    expect(result.unchanged).toBe(2);
  });

  it('puts back a route whose gateway was changed by hand, keeping our protocol', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.1'])), [kernel('192.0.2.1/32', ['10.0.0.9'])]);
    expect(show(result.operations)).toEqual([
      'delete 192.0.2.1/32 via 10.0.0.9 (gateway-changed)',
      'add 192.0.2.1/32 via 10.0.0.1 (gateway-changed)',
    ]);
  });

  it('removes duplicates of our route at other metrics', () => {
    const result = plan(desired(want('192.0.2.1/32', ['10.0.0.1'])), [
      kernel('192.0.2.1/32', ['10.0.0.1']),
      kernel('192.0.2.1/32', ['10.0.0.1'], OURS, { metric: 50 }),
    ]);
    expect(show(result.operations)).toEqual(['delete 192.0.2.1/32 via 10.0.0.1 (duplicate)']);
  });

  describe('ECMP', () => {
    it('adds a multipath route', () => {
      const result = plan(desired(want('192.0.2.0/24', ['10.0.0.1', '10.0.0.2'])), []);
      expect(show(result.operations)).toEqual(['add 192.0.2.0/24 via 10.0.0.1,10.0.0.2 (missing)']);
    });

    it('is unchanged when the next-hop set is equal', () => {
      const result = plan(desired(want('192.0.2.0/24', ['10.0.0.1', '10.0.0.2'])), [
        kernel('192.0.2.0/24', ['10.0.0.1', '10.0.0.2']),
      ]);
      expect(result.operations).toEqual([]);
    });

    it('replaces the next-hop set in place when it changes', () => {
      const result = plan(desired(want('192.0.2.0/24', ['10.0.0.1', '10.0.0.3'])), [
        kernel('192.0.2.0/24', ['10.0.0.1', '10.0.0.2']),
      ]);
      expect(show(result.operations)).toEqual(['replace 192.0.2.0/24 via 10.0.0.1,10.0.0.3 (multipath-changed)']);
      expect(result.operations[0]).toMatchObject({ previous: { gateways: ['10.0.0.1', '10.0.0.2'] } });
    });

    it('replaces when going from single path to multipath and back', () => {
      expect(
        show(
          plan(desired(want('192.0.2.0/24', ['10.0.0.1', '10.0.0.2'])), [kernel('192.0.2.0/24', ['10.0.0.1'])])
            .operations,
        ),
      ).toEqual(['replace 192.0.2.0/24 via 10.0.0.1,10.0.0.2 (multipath-changed)']);
      expect(
        show(
          plan(desired(want('192.0.2.0/24', ['10.0.0.2'])), [kernel('192.0.2.0/24', ['10.0.0.1', '10.0.0.2'])])
            .operations,
        ),
      ).toEqual(['replace 192.0.2.0/24 via 10.0.0.2 (multipath-changed)']);
    });

    it('orders replaces after deletes and before adds', () => {
      const result = plan(
        desired(want('192.0.2.0/24', ['10.0.0.1', '10.0.0.3']), want('198.51.100.0/24', ['10.0.0.1'])),
        [kernel('192.0.2.0/24', ['10.0.0.1', '10.0.0.2']), kernel('203.0.113.0/24', ['10.0.0.1'])],
      );
      expect(result.operations.map((operation) => operation.op)).toEqual(['delete', 'replace', 'add']);
    });
  });

  describe('IPv6', () => {
    it('uses metric 1024 as our metric', () => {
      expect(
        plan(desired(want('2001:db8::/32', ['fd00::1'])), [kernel('2001:db8::/32', ['fd00::1'])]).operations,
      ).toEqual([]);
      expect(
        show(
          plan(desired(want('2001:db8::/32', ['fd00::1'])), [kernel('2001:db8::/32', ['fd00::1'], OURS, { metric: 0 })])
            .operations,
        ),
      ).toEqual([
        'delete 2001:db8::/32 via fd00::1 (gateway-changed)',
        'add 2001:db8::/32 via fd00::1 (gateway-changed)',
      ]);
    });
  });

  describe('migration from the seed operator', () => {
    it('adopts a seed route with the current gateway by replacing it with our protocol', () => {
      const seed = kernel('34.160.111.145/32', ['10.116.0.5'], STATIC);
      const result = plan(desired(want('34.160.111.145/32', ['10.116.0.5'])), [seed]);
      expect(show(result.operations)).toEqual(['replace 34.160.111.145/32 via 10.116.0.5 (adopt-seed)']);
      expect(result.operations[0]).toMatchObject({ previous: seed });
    });

    it('deletes a seed route via the last handled (old) gateway, then adds ours', () => {
      const result = plan(desired(want('34.160.111.145/32', ['10.116.0.12'], { seedGateways: [['10.116.0.5']] })), [
        kernel('34.160.111.145/32', ['10.116.0.5'], STATIC),
      ]);
      expect(show(result.operations)).toEqual([
        'delete 34.160.111.145/32 via 10.116.0.5 (seed-old-gateway)',
        'add 34.160.111.145/32 via 10.116.0.12 (gateway-changed)',
      ]);
    });

    it('does not touch static routes via unrelated gateways: the destination is blocked', () => {
      const foreign = kernel('34.160.111.145/32', ['10.116.0.99'], STATIC);
      const result = plan(desired(want('34.160.111.145/32', ['10.116.0.5'], { seedGateways: [['10.116.0.4']] })), [
        foreign,
      ]);
      expect(result.operations).toEqual([]);
      expect(result.blocked).toEqual([{ route: expect.objectContaining({ key: '34.160.111.145/32' }), by: foreign }]);
    });

    it('ignores seed routes at other metrics (they do not collide)', () => {
      const result = plan(desired(want('34.160.111.145/32', ['10.116.0.5'])), [
        kernel('34.160.111.145/32', ['10.116.0.5'], STATIC, { metric: 100 }),
      ]);
      expect(show(result.operations)).toEqual(['add 34.160.111.145/32 via 10.116.0.5 (missing)']);
    });
  });

  it('reports destinations held by routes of other protocols as blocked', () => {
    const dhcp = kernel('0.0.0.0/0', ['10.0.0.254'], 16);
    const blackhole = kernel('192.0.2.0/24', [], 3, { type: 6 });
    const result = plan(desired(want('0.0.0.0/0', ['10.0.0.1']), want('192.0.2.0/24', ['10.0.0.1'])), [
      dhcp,
      blackhole,
    ]);
    expect(result.operations).toEqual([]);
    expect(result.blocked.map((item) => item.by)).toEqual([dhcp, blackhole]);
  });

  it('is deterministic whatever the input order', () => {
    const want1 = desired(want('192.0.2.2/32', ['10.0.0.2']), want('192.0.2.1/32', ['10.0.0.2']));
    const have = [kernel('192.0.2.9/32', ['10.0.0.1']), kernel('192.0.2.1/32', ['10.0.0.1'])];
    expect(show(plan(want1, have).operations)).toEqual(show(plan(want1, [...have].reverse()).operations));
  });

  it('describes kernel routes', () => {
    expect(describeKernelRoute(kernel('192.0.2.0/24', ['10.0.0.1']))).toBe(
      '192.0.2.0/24 via 10.0.0.1 proto 201 metric 0',
    );
    expect(describeKernelRoute(kernel('192.0.2.0/24', [], 2))).toBe('192.0.2.0/24 no gateway proto 2 metric 0');
  });
});
