import { describe, expect, it } from 'vitest';
import {
  decodeNeighbour,
  decodeRouteLookup,
  encodeNeighbourGet,
  encodeNeighbourProbe,
  encodeRouteLookup,
  neighbourStateName,
  probeRequest,
  roundVerdict,
  NTF_EXT_LEARNED,
  NUD_DELAY,
  NUD_FAILED,
  NUD_INCOMPLETE,
  NUD_NOARP,
  NUD_PERMANENT,
  NUD_PROBE,
  NUD_REACHABLE,
  NUD_STALE,
  type NeighbourEntry,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from '../../src/adapters/neighbour-codec.js';
import { splitMessages, type RawMessage } from '../../src/adapters/netlink-codec.js';
import { attribute, u32 } from '../support/netlink-messages.js';

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;

/** One netlink message of `type` with a fixed part and attributes, as the kernel would send it. */
function kernelMessage(type: number, fixed: Buffer, attributes: Buffer[]): RawMessage {
  const body = Buffer.concat([fixed, ...attributes]);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + body.length, 0);
  header.writeUInt16LE(type, 4);
  header.writeUInt32LE(7, 8);
  return splitMessages(Buffer.concat([header, body]))[0]!;
}

function ndmsg(family: number, ifindex: number, state: number, flags: number): Buffer {
  const buffer = Buffer.alloc(12);
  buffer.writeUInt8(family, 0);
  buffer.writeInt32LE(ifindex, 4);
  buffer.writeUInt16LE(state, 8);
  buffer.writeUInt8(flags, 10);
  return buffer;
}

function rtmsg(family: number, type: number): Buffer {
  const buffer = Buffer.alloc(12);
  buffer.writeUInt8(family, 0);
  buffer.writeUInt8(family === 2 ? 32 : 128, 1);
  buffer.writeUInt8(type, 7);
  return buffer;
}

describe('neighbour requests', () => {
  it('RTM_GETNEIGH names the entry by address and interface, nothing else', () => {
    const buffer = encodeNeighbourGet('10.116.0.5', 3, 42, 99);
    const [message] = splitMessages(buffer);
    expect(message).toMatchObject({ type: RTM_GETNEIGH, flags: NLM_F_REQUEST, seq: 42, pid: 99 });
    expect(buffer.length).toBe(16 + 12 + 8);
    expect(decodeNeighbour(message!)).toEqual({
      family: 4,
      ifindex: 3,
      state: 0,
      flags: 0,
      extFlags: 0,
      address: '10.116.0.5',
    });
  });

  it('a probe sets NUD_PROBE on the existing entry, acknowledged, without a link-layer address', () => {
    const [message] = splitMessages(encodeNeighbourProbe('probe', 'fd00:116::5', 2, 1, 1));
    expect(message).toMatchObject({ type: RTM_NEWNEIGH, flags: NLM_F_REQUEST | NLM_F_ACK });
    const decoded = decodeNeighbour(message!);
    expect(decoded).toEqual({ family: 6, ifindex: 2, state: NUD_PROBE, flags: 0, extFlags: 0, address: 'fd00:116::5' });
    expect(decoded?.lladdr).toBeUndefined();
  });

  it('a resolve asks with NTF_USE, creating the entry when absent, without a state or link-layer address', () => {
    const [resolve] = splitMessages(encodeNeighbourProbe('resolve', '10.116.0.12', 2, 1, 1));
    expect(resolve?.flags).toBe(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
    expect(decodeNeighbour(resolve!)).toEqual({
      family: 4,
      ifindex: 2,
      state: 0,
      flags: 0x01,
      extFlags: 0,
      address: '10.116.0.12',
    });
  });

  it('a route lookup asks for the host route of the address', () => {
    const buffer = encodeRouteLookup('fd00:116::c', 5, 6);
    const [message] = splitMessages(buffer);
    expect(message).toMatchObject({ type: 26, flags: NLM_F_REQUEST, seq: 5, pid: 6 });
    expect(buffer.readUInt8(16)).toBe(10);
    expect(buffer.readUInt8(17)).toBe(128);
    expect(buffer.subarray(16 + 12 + 4).toString('hex')).toBe('fd00011600000000000000000000000c');
  });

  it('refuses what is not an address', () => {
    expect(() => encodeNeighbourGet('gateway-1', 2, 1, 1)).toThrow(/not an IP address: gateway-1/);
  });
});

describe('kernel answers', () => {
  it('decodes a neighbour entry: state, flags, link-layer address, confirmation age in ms', () => {
    const cacheinfo = Buffer.concat([u32(150), u32(30), u32(150), u32(1)]);
    const message = kernelMessage(RTM_NEWNEIGH, ndmsg(2, 2, NUD_REACHABLE, NTF_EXT_LEARNED), [
      attribute(1, Buffer.from([10, 116, 0, 5])),
      attribute(2, Buffer.from([0x02, 0xab, 0, 0, 0, 0x05])),
      attribute(3, cacheinfo),
      attribute(15, u32(1)),
    ]);
    expect(decodeNeighbour(message)).toEqual({
      family: 4,
      ifindex: 2,
      state: NUD_REACHABLE,
      flags: NTF_EXT_LEARNED,
      extFlags: 1,
      address: '10.116.0.5',
      lladdr: '02:ab:00:00:00:05',
      confirmedAgoMs: 1500,
    });
  });

  it('skips other families and short messages', () => {
    expect(decodeNeighbour(kernelMessage(RTM_NEWNEIGH, ndmsg(7, 2, 0, 0), []))).toBeUndefined();
    expect(decodeNeighbour(kernelMessage(RTM_NEWNEIGH, Buffer.alloc(4), []))).toBeUndefined();
  });

  it('decodes a route lookup: connected (no next hop), via a gateway, via RTA_VIA, local', () => {
    const connected = decodeRouteLookup(
      kernelMessage(24, rtmsg(2, 1), [attribute(1, Buffer.from([10, 116, 0, 5])), attribute(4, u32(2))]),
    );
    expect(connected).toEqual({ type: 1, oif: 2 });
    const routed = decodeRouteLookup(
      kernelMessage(24, rtmsg(2, 1), [attribute(4, u32(2)), attribute(5, Buffer.from([10, 116, 0, 5]))]),
    );
    expect(routed).toEqual({ type: 1, oif: 2, gateway: '10.116.0.5' });
    const via = Buffer.concat([Buffer.from([10, 0]), Buffer.from('fd000116000000000000000000000005', 'hex')]);
    expect(decodeRouteLookup(kernelMessage(24, rtmsg(2, 1), [attribute(18, via)]))).toEqual({
      type: 1,
      gateway: 'fd00:116::5',
    });
    expect(decodeRouteLookup(kernelMessage(24, rtmsg(2, 2), [attribute(4, u32(1))]))).toEqual({ type: 2, oif: 1 });
  });

  it('names states as ip neigh does', () => {
    expect(neighbourStateName(0)).toBe('NONE');
    expect(neighbourStateName(NUD_FAILED)).toBe('FAILED');
    expect(neighbourStateName(NUD_PERMANENT)).toBe('PERMANENT');
    expect(neighbourStateName(NUD_PROBE)).toBe('PROBE');
  });
});

function entry(state: number, more: Partial<NeighbourEntry> = {}): NeighbourEntry {
  return { family: 4, ifindex: 2, state, flags: 0, extFlags: 0, address: '10.116.0.5', ...more };
}

describe('gateway prober rounds', () => {
  it('a round is good when the kernel confirmed the entry during it, whatever confirmed it', () => {
    expect(roundVerdict(entry(NUD_REACHABLE, { confirmedAgoMs: 10 }), 2000)).toEqual({
      ok: true,
      reason: 'neighbour answered',
    });
    // Tick granularity: a confirmation right at the round's start still counts.
    expect(roundVerdict(entry(NUD_REACHABLE, { confirmedAgoMs: 2040 }), 2000).ok).toBe(true);
    expect(roundVerdict(entry(NUD_STALE, { confirmedAgoMs: 500 }), 2000).ok).toBe(true);
  });

  it('REACHABLE alone is not an answer: an entry confirmed before the round fails it', () => {
    expect(roundVerdict(entry(NUD_REACHABLE, { confirmedAgoMs: 2100 }), 2000)).toEqual({
      ok: false,
      reason: 'neighbour REACHABLE',
    });
    expect(roundVerdict(entry(NUD_PROBE, { confirmedAgoMs: 4000 }), 2000)).toEqual({
      ok: false,
      reason: 'neighbour PROBE, probe unanswered',
    });
  });

  it('FAILED, INCOMPLETE and absent entries fail the round', () => {
    expect(roundVerdict(entry(NUD_FAILED, { confirmedAgoMs: 10 }), 2000)).toEqual({
      ok: false,
      reason: 'neighbour FAILED',
    });
    expect(roundVerdict(entry(NUD_INCOMPLETE), 2000).ok).toBe(false);
    expect(roundVerdict(undefined, 2000)).toEqual({ ok: false, reason: 'no neighbour entry' });
  });

  it('permanent and noarp entries are good and never written; foreign entries are read only', () => {
    expect(roundVerdict(entry(NUD_PERMANENT), 2000).ok).toBe(true);
    expect(roundVerdict(entry(NUD_NOARP), 2000).ok).toBe(true);
    expect(probeRequest(entry(NUD_PERMANENT))).toEqual({
      unprobed: 'PERMANENT neighbour entry: counted Reachable, not probed',
    });
    expect(probeRequest(entry(NUD_NOARP)).kind).toBeUndefined();
    const learned = entry(NUD_STALE, { flags: NTF_EXT_LEARNED });
    expect(probeRequest(learned).kind).toBeUndefined();
    expect(probeRequest(entry(NUD_REACHABLE, { extFlags: 1 })).kind).toBeUndefined();
    expect(probeRequest(entry(NUD_FAILED, { extFlags: 4 })).kind).toBeUndefined();
    expect(roundVerdict(learned, 2000).ok).toBe(false);
    expect(roundVerdict(entry(NUD_REACHABLE, { flags: NTF_EXT_LEARNED }), 2000).ok).toBe(true);
  });

  it("probes entries with a link-layer address, resolves those without, leaves the kernel's own probing alone", () => {
    for (const state of [NUD_REACHABLE, NUD_STALE, NUD_DELAY])
      expect(probeRequest(entry(state))).toEqual({ kind: 'probe' });
    for (const state of [0, NUD_FAILED]) expect(probeRequest(entry(state))).toEqual({ kind: 'resolve' });
    expect(probeRequest(undefined)).toEqual({ kind: 'resolve' });
    for (const state of [NUD_PROBE, NUD_INCOMPLETE]) expect(probeRequest(entry(state))).toEqual({});
  });
});
