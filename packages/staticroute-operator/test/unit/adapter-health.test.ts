import { describe, expect, it } from 'vitest';
import { AdapterState, probeVerdict, type AdapterEvent, type AdapterHealth } from '../../src/adapters/health.js';

describe('adapter health', () => {
  it('reports the transitions, keeps the last error and counts reopens', () => {
    const state = new AdapterState(1_000);
    const events: AdapterEvent[] = [];
    state.subscribe((event) => events.push(event));
    state.failed(new Error('poll error'), 2_000);
    state.failed(new Error('socket: EMFILE'), 2_500);
    expect(state.health).toEqual({ healthy: false, lastError: 'socket: EMFILE', since: 2_000, reopens: 0 });
    state.reopened(3_000);
    expect(state.health).toEqual({ healthy: true, lastError: 'socket: EMFILE', since: 3_000, reopens: 1 });
    // One event per transition: the second failure while down changes the reason, not the state.
    expect(events).toEqual([
      { type: 'health', health: { healthy: false, lastError: 'poll error', since: 2_000, reopens: 0 } },
      { type: 'reopened' },
      { type: 'health', health: { healthy: true, lastError: 'socket: EMFILE', since: 3_000, reopens: 1 } },
    ]);
  });

  it('keeps reporting to the other subscribers when one throws, and stops after unsubscribe', () => {
    const state = new AdapterState();
    const seen: string[] = [];
    state.subscribe(() => {
      throw new Error('a buggy subscriber');
    });
    const unsubscribe = state.subscribe((event) => seen.push(event.type));
    state.error('timeout', new Error('no ACK'));
    unsubscribe();
    state.error('timeout', new Error('no ACK'));
    expect(seen).toEqual(['error']);
  });
});

describe('probe verdict', () => {
  const healthy: AdapterHealth = { healthy: true, lastError: undefined, since: 0, reopens: 0 };
  const downSince = (since: number): AdapterHealth => ({ healthy: false, lastError: 'closed', since, reopens: 0 });

  it('is ready and live when every adapter is healthy or not started', () => {
    expect(probeVerdict({ channel: healthy, monitor: undefined }, 10_000)).toEqual({
      ready: true,
      live: true,
      reason: undefined,
    });
  });

  it('is not ready at once when a socket is down, and not live once that lasts beyond the grace period', () => {
    const early = probeVerdict({ channel: downSince(10_000), monitor: healthy }, 20_000, { livenessGraceMs: 60_000 });
    expect(early).toMatchObject({ ready: false, live: true });
    expect(early.reason).toContain('netlink channel down since');
    const late = probeVerdict({ channel: downSince(10_000), monitor: healthy }, 80_001, { livenessGraceMs: 60_000 });
    expect(late).toMatchObject({ ready: false, live: false });
  });
});
