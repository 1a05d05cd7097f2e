import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GATEWAY_HEALTH,
  effectiveGateways,
  gatewayHealthThresholds,
  GatewayHealthTracker,
  type GatewayState,
} from '../../src/logic/gateway-health.js';

const GW1 = '10.116.0.5';
const GW2 = '10.116.0.12';
const GW3 = '10.116.0.20';

/** Feeds rounds (1 = good, 0 = failed) one interval apart; returns the transitions seen, as `round:state`. */
function feed(tracker: GatewayHealthTracker, gateway: string, rounds: string): string[] {
  const seen: string[] = [];
  [...rounds].forEach((round, index) => {
    const changed = tracker.observe(gateway, round === '1', index * 2000);
    if (changed !== undefined) seen.push(`${index}:${changed}`);
  });
  return seen;
}

describe('GatewayHealthTracker', () => {
  it('defaults to rounds of 2 s, Unreachable after 3 failed, Reachable after 2 good', () => {
    expect(DEFAULT_GATEWAY_HEALTH).toEqual({ intervalMs: 2000, fallAfter: 3, riseAfter: 2 });
    expect(new GatewayHealthTracker().thresholds).toEqual(DEFAULT_GATEWAY_HEALTH);
    expect(new GatewayHealthTracker({ fallAfter: 5 }).thresholds).toEqual({ ...DEFAULT_GATEWAY_HEALTH, fallAfter: 5 });
  });

  it('starts Unknown, for a gateway never observed and after one round of either kind', () => {
    const tracker = new GatewayHealthTracker();
    expect(tracker.state(GW1)).toBe('Unknown');
    expect(tracker.since(GW1)).toBeUndefined();
    expect(tracker.observe(GW1, true, 0)).toBeUndefined();
    expect(tracker.observe(GW2, false, 0)).toBeUndefined();
    expect(tracker.state(GW1)).toBe('Unknown');
    expect(tracker.state(GW2)).toBe('Unknown');
  });

  it('the first riseAfter good rounds make it Reachable, the first fallAfter failed ones Unreachable', () => {
    const tracker = new GatewayHealthTracker();
    expect(feed(tracker, GW1, '11')).toEqual(['1:Reachable']);
    expect(tracker.since(GW1)).toBe(2000);
    expect(feed(tracker, GW2, '000')).toEqual(['2:Unreachable']);
    expect(tracker.state(GW2)).toBe('Unreachable');
    expect(tracker.since(GW2)).toBe(4000);
  });

  it('one lost round never flips a Reachable gateway, nor one good round an Unreachable one', () => {
    const tracker = new GatewayHealthTracker();
    expect(feed(tracker, GW1, '11' + '0110100110')).toEqual(['1:Reachable']);
    expect(tracker.state(GW1)).toBe('Reachable');
    expect(feed(tracker, GW2, '000' + '1001000101')).toEqual(['2:Unreachable']);
    expect(tracker.state(GW2)).toBe('Unreachable');
  });

  it('counts rounds in a row: fallAfter failed rounds take it down, riseAfter good ones bring it back', () => {
    const tracker = new GatewayHealthTracker();
    expect(feed(tracker, GW1, '11' + '001' + '000' + '1' + '0' + '11' + '1')).toEqual([
      '1:Reachable',
      '7:Unreachable',
      '11:Reachable',
    ]);
    const custom = new GatewayHealthTracker({ fallAfter: 1, riseAfter: 4 });
    expect(feed(custom, GW2, '0' + '111' + '0' + '1111')).toEqual(['0:Unreachable', '8:Reachable']);
  });

  it('tracks gateways independently, and forget makes one Unknown again', () => {
    const tracker = new GatewayHealthTracker();
    feed(tracker, GW1, '11');
    feed(tracker, GW2, '000');
    expect([tracker.state(GW1), tracker.state(GW2)]).toEqual(['Reachable', 'Unreachable']);
    tracker.forget(GW2);
    expect(tracker.state(GW2)).toBe('Unknown');
    expect(tracker.since(GW2)).toBeUndefined();
    expect(tracker.gateways()).toEqual([GW1]);
    // Forgotten means from scratch: one failed round after forget is not enough.
    expect(tracker.observe(GW2, false, 0)).toBeUndefined();
  });

  it('raises thresholds below their minimums and fills in defaults for missing ones', () => {
    expect(gatewayHealthThresholds({ intervalMs: 0, fallAfter: 0, riseAfter: -3 })).toEqual({
      intervalMs: 100,
      fallAfter: 1,
      riseAfter: 1,
    });
    expect(gatewayHealthThresholds({ intervalMs: Number.NaN })).toEqual(DEFAULT_GATEWAY_HEALTH);
  });
});

function states(map: Record<string, GatewayState>): (gateway: string) => GatewayState {
  return (gateway) => map[gateway] ?? 'Unknown';
}

describe('effectiveGateways', () => {
  const keep = { withdrawWhenAllDown: false };
  const withdraw = { withdrawWhenAllDown: true };

  it('installs every configured gateway while none is Unreachable; Unknown counts as usable', () => {
    expect(effectiveGateways([GW1, GW2], states({ [GW1]: 'Reachable' }), keep)).toEqual({
      gateways: [GW1, GW2],
      withdrawn: [],
      keptUnreachable: [],
    });
    expect(effectiveGateways([GW1, GW2], states({}), withdraw).gateways).toEqual([GW1, GW2]);
  });

  it('ECMP with one gateway down: leaves it out, keeping the given order', () => {
    const stateOf = states({ [GW3]: 'Reachable', [GW1]: 'Unreachable', [GW2]: 'Reachable' });
    expect(effectiveGateways([GW3, GW1, GW2], stateOf, keep)).toEqual({
      gateways: [GW3, GW2],
      withdrawn: [GW1],
      keptUnreachable: [],
    });
  });

  it('an Unknown gateway alone is enough to leave the Unreachable ones out', () => {
    const stateOf = states({ [GW1]: 'Unreachable', [GW2]: 'Unknown' });
    expect(effectiveGateways([GW1, GW2], stateOf, withdraw)).toEqual({
      gateways: [GW2],
      withdrawn: [GW1],
      keptUnreachable: [],
    });
  });

  it('all down: keeps the installed set when it is a non-empty subset of the configured ones', () => {
    const stateOf = states({ [GW1]: 'Unreachable', [GW2]: 'Unreachable', [GW3]: 'Unreachable' });
    expect(effectiveGateways([GW1, GW2, GW3], stateOf, { ...keep, installed: [GW3, GW2] })).toEqual({
      gateways: [GW2, GW3],
      withdrawn: [GW1],
      keptUnreachable: [GW2, GW3],
    });
  });

  it('all down: keeps every configured gateway when nothing, or something else, is installed', () => {
    const stateOf = states({ [GW1]: 'Unreachable', [GW2]: 'Unreachable' });
    const all = { gateways: [GW1, GW2], withdrawn: [], keptUnreachable: [GW1, GW2] };
    expect(effectiveGateways([GW1, GW2], stateOf, keep)).toEqual(all);
    expect(effectiveGateways([GW1, GW2], stateOf, { ...keep, installed: [] })).toEqual(all);
    expect(effectiveGateways([GW1, GW2], stateOf, { ...keep, installed: [GW1, GW3] })).toEqual(all);
  });

  it('all down with withdrawal: removes the route', () => {
    const stateOf = states({ [GW1]: 'Unreachable', [GW2]: 'Unreachable' });
    expect(effectiveGateways([GW1, GW2], stateOf, { ...withdraw, installed: [GW1] })).toEqual({
      gateways: [],
      withdrawn: [GW1, GW2],
      keptUnreachable: [],
    });
  });

  it('a single gateway that is down is kept, unless the route opts into withdrawal', () => {
    const stateOf = states({ [GW1]: 'Unreachable' });
    expect(effectiveGateways([GW1], stateOf, keep)).toEqual({
      gateways: [GW1],
      withdrawn: [],
      keptUnreachable: [GW1],
    });
    expect(effectiveGateways([GW1], stateOf, withdraw)).toEqual({
      gateways: [],
      withdrawn: [GW1],
      keptUnreachable: [],
    });
    expect(effectiveGateways([GW1], states({}), withdraw).gateways).toEqual([GW1]);
  });

  it('IPv6: the same rules, comparing addresses in canonical form', () => {
    const stateOf = states({ 'fd00:116::5': 'Unreachable', 'fd00:116::c': 'Reachable' });
    expect(effectiveGateways(['fd00:116::5', 'fd00:116::c'], stateOf, keep)).toEqual({
      gateways: ['fd00:116::c'],
      withdrawn: ['fd00:116::5'],
      keptUnreachable: [],
    });
    const down = states({ 'fd00:116::5': 'Unreachable', 'fd00:116::c': 'Unreachable' });
    expect(
      effectiveGateways(['fd00:116::5', 'fd00:116::c'], down, { ...keep, installed: ['fd00:116:0:0::c'] }),
    ).toEqual({ gateways: ['fd00:116::c'], withdrawn: ['fd00:116::5'], keptUnreachable: ['fd00:116::c'] });
  });

  it('lists a gateway configured twice once', () => {
    const stateOf = states({ [GW1]: 'Unreachable' });
    expect(effectiveGateways([GW1, GW2, GW2], stateOf, keep)).toEqual({
      gateways: [GW2],
      withdrawn: [GW1],
      keptUnreachable: [],
    });
  });
});
