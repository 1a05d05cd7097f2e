import { describe, expect, it } from 'vitest';
import { IFF_LOWER_UP, IFF_RUNNING, IFF_UP, isIpv6LinkLocal, LinkState } from '../../src/adapters/link-state.js';
import type { DecodedAddress } from '../../src/adapters/netlink-codec.js';
import { parseAddress } from '../../src/logic/ip.js';

const UP = IFF_UP | IFF_RUNNING | IFF_LOWER_UP;

function address(text: string, interfaceIndex: number, prefixLength = 24): DecodedAddress {
  const parsed = parseAddress(text) as { family: 4 | 6; address: bigint };
  return { ...parsed, prefixLength, interfaceIndex };
}

/** eth0 (2) with an address, veth (5) with nothing, tunl (7) carrying one of our routes. */
function synced(): LinkState {
  const state = new LinkState();
  state.beginSync();
  state.finishSync({
    links: [
      { index: 2, flags: UP, name: 'eth0' },
      { index: 5, flags: UP, name: 'pod1a' },
      { index: 7, flags: UP, name: 'tunl' },
    ],
    addresses: [address('10.116.0.10', 2, 20), address('fe80::1', 5, 64)],
    routesByLink: new Map([[7, 1]]),
  });
  return state;
}

describe('which link changes matter', () => {
  it('counts every change until the state is known', () => {
    const state = new LinkState();
    expect(state.synced).toBe(false);
    expect(state.linkChanged({ index: 9, flags: 0, name: 'pod9a' }, false)).toBe(true);
  });

  it('ignores links that carry neither an address nor one of our routes, whatever happens to them', () => {
    const state = synced();
    expect(state.linkChanged({ index: 11, flags: 0, name: 'pod2a' }, false)).toBe(false);
    expect(state.linkChanged({ index: 11, flags: UP, name: 'pod2a' }, false)).toBe(false);
    expect(state.linkChanged({ index: 5, flags: 0, name: 'pod1a' }, false)).toBe(false);
    expect(state.linkChanged({ index: 5, flags: 0, name: 'pod1a' }, true)).toBe(false);
  });

  it('counts oper-state changes, renames and deletion of a link with an address or our route', () => {
    const state = synced();
    expect(state.linkChanged({ index: 2, flags: UP, name: 'eth0' }, false)).toBe(false);
    expect(state.linkChanged({ index: 2, flags: IFF_UP, name: 'eth0' }, false)).toBe(true);
    expect(state.linkChanged({ index: 2, flags: IFF_UP, name: 'wan0' }, false)).toBe(true);
    expect(state.linkChanged({ index: 7, flags: 0, name: 'tunl' }, false)).toBe(true);
    expect(state.linkChanged({ index: 7, flags: 0, name: 'tunl' }, true)).toBe(true);
    expect(state.carries(7)).toBe(false);
  });

  it('follows addresses and routes as they are notified, IPv6 link-local aside', () => {
    const state = synced();
    expect(state.addressChanged(address('fe80::2', 11, 64), true)).toBe(false);
    expect(state.carries(11)).toBe(false);
    expect(state.addressChanged(address('10.88.0.1', 11), true)).toBe(true);
    expect(state.carries(11)).toBe(true);
    expect(state.addressChanged(address('10.88.0.1', 11), false)).toBe(true);
    expect(state.carries(11)).toBe(false);
    state.routeChanged([12, 13], true);
    expect(state.carries(13)).toBe(true);
    state.routeChanged([12, 13], false);
    expect(state.carries(13)).toBe(false);
  });

  it('replays what was notified during the dumps, except route removals (never too few routes)', () => {
    const state = new LinkState();
    state.beginSync();
    state.addressChanged(address('10.88.0.1', 11), true);
    state.routeChanged([12], true);
    state.routeChanged([7], false);
    state.linkChanged({ index: 5, flags: 0, name: 'pod1a' }, true);
    state.finishSync({
      links: [{ index: 5, flags: UP, name: 'pod1a' }],
      addresses: [],
      routesByLink: new Map([[7, 1]]),
    });
    expect([11, 12, 7, 5].map((index) => state.carries(index))).toEqual([true, true, true, false]);
    expect(state.linkChanged({ index: 5, flags: UP, name: 'pod1a' }, false)).toBe(false);
  });

  it('tells IPv6 link-local addresses apart', () => {
    expect(isIpv6LinkLocal(address('fe80::1', 1))).toBe(true);
    expect(isIpv6LinkLocal(address('febf::1', 1))).toBe(true);
    expect(isIpv6LinkLocal(address('fec0::1', 1))).toBe(false);
    expect(isIpv6LinkLocal(address('169.254.0.1', 1))).toBe(false);
  });
});
