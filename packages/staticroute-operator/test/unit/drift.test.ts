import { describe, expect, it } from 'vitest';
import type { DesiredRoute } from '../../src/logic/desired.js';
import { changeNeedsReconcile, type TableChange } from '../../src/logic/drift.js';
import { mustParsePrefix } from '../../src/logic/ip.js';
import type { KernelRoute } from '../../src/logic/plan.js';

const OURS = 201;
const desired = new Map<string, DesiredRoute>([
  [
    '192.0.2.1/32',
    {
      key: '192.0.2.1/32',
      destination: mustParsePrefix('192.0.2.1'),
      gateways: ['10.0.0.2'],
      owner: 'a',
      sharedWith: [],
      seedGateways: [],
    },
  ],
]);
const route = (destination: string, gateways: string[], protocol = OURS): KernelRoute => ({
  family: 4,
  destination,
  gateways,
  protocol,
  metric: 0,
  type: 1,
});
const check = (change: TableChange) => changeNeedsReconcile(change, desired, OURS);

describe('changeNeedsReconcile', () => {
  it('ignores the echo of our own changes', () => {
    expect(check({ kind: 'route-added', route: route('192.0.2.1/32', ['10.0.0.2']) })).toBe(false);
    expect(check({ kind: 'route-deleted', route: route('192.0.2.1/32', ['10.0.0.1']) })).toBe(false); // old gateway
    expect(check({ kind: 'route-deleted', route: route('192.0.2.9/32', ['10.0.0.1']) })).toBe(false); // orphan removed
  });

  it('reacts to a wanted route being deleted', () => {
    expect(check({ kind: 'route-deleted', route: route('192.0.2.1/32', ['10.0.0.2']) })).toBe(true);
  });

  it('reacts to a wanted destination being replaced or taken by another protocol', () => {
    expect(check({ kind: 'route-added', route: route('192.0.2.1/32', ['10.0.0.9'], 3) })).toBe(true);
    expect(check({ kind: 'route-added', route: route('192.0.2.1/32', ['10.0.0.9']) })).toBe(true);
    expect(check({ kind: 'route-deleted', route: route('192.0.2.1/32', ['10.0.0.9'], 3) })).toBe(true);
  });

  it('reacts to routes with our protocol that nobody wants', () => {
    expect(check({ kind: 'route-added', route: route('198.51.100.0/24', ['10.0.0.2']) })).toBe(true);
  });

  it('ignores foreign routes elsewhere', () => {
    expect(check({ kind: 'route-added', route: route('198.51.100.0/24', ['10.0.0.2'], 16) })).toBe(false);
    expect(check({ kind: 'route-deleted', route: route('198.51.100.0/24', ['10.0.0.2'], 16) })).toBe(false);
  });

  it('always reacts to link and address changes, lost notifications, and before the first reconcile', () => {
    for (const kind of ['link-changed', 'address-changed', 'overflow'] as const) expect(check({ kind })).toBe(true);
    expect(
      changeNeedsReconcile({ kind: 'route-added', route: route('192.0.2.1/32', ['10.0.0.2']) }, undefined, OURS),
    ).toBe(true);
  });
});
