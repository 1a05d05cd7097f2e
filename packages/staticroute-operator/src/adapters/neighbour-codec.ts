/**
 * rtnetlink wire format for gateway probing: a route lookup (RTM_GETROUTE for one address: is it on a connected
 * subnet?), one neighbour entry's get (RTM_GETNEIGH), and the two neighbour requests the prober sends
 * (RTM_NEWNEIGH setting NUD_PROBE, or NTF_USE), with the decoding of their replies.
 *
 * None of the requests carries a link-layer address: the kernel keeps the entry's own (a NUD_PROBE update without
 * NDA_LLADDR reuses it, and NTF_USE only starts resolution), so probing can never rewrite an entry's lladdr.
 *
 * At the end, what an entry means for a probe round ({@link roundVerdict}, {@link probeRequest}): the prober's
 * decisions, kept free of I/O so that they are unit-tested.
 */
import { formatAddress, parseAddress, type Family } from '../logic/ip.js';
import {
  align4,
  familyToAf,
  forEachAttribute,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  writeAddress,
  writeAttribute,
  type RawMessage,
} from './netlink-codec.js';

export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;
const RTM_GETROUTE = 26;

/** Neighbour states (NUD_*), one bit each. */
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** States in which the entry has a link-layer address the kernel sends to. */
export const NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

/** Neighbour flags (ndm_flags), and the managed bit of NDA_FLAGS_EXT (the first of several, all owner marks). */
export const NTF_USE = 0x01;
export const NTF_EXT_LEARNED = 0x10;
export const NTF_EXT_MANAGED = 0x1;

const NDA_DST = 1;
const NDA_LLADDR = 2;
const NDA_CACHEINFO = 3;
const NDA_FLAGS_EXT = 15;
const NDMSG_LEN = 12;
const RTMSG_LEN = 12;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_VIA = 18;
/** rtm_type of an ordinary route (connected subnets are unicast routes without a gateway). */
export const RTN_UNICAST = 1;
/** nda_cacheinfo counts in clock ticks of USER_HZ, 100 per second on every Linux architecture the agent runs on. */
const MS_PER_CLOCK_TICK = 10;

/** One request message: header, fixed part (zeroed), then NDA_DST/RTA_DST; returns the buffer and the offsets. */
function message(
  type: number,
  flags: number,
  seq: number,
  pid: number,
  fixedLength: number,
  address: string,
): { buffer: Buffer; fixed: number; family: Family } {
  const parsed = parseAddress(address);
  if (parsed === undefined) throw new Error(`not an IP address: ${address}`);
  const addressLength = parsed.family === 4 ? 4 : 16;
  const length = NLMSG_HDRLEN + fixedLength + 4 + align4(addressLength);
  const buffer = Buffer.alloc(length);
  buffer.writeUInt32LE(length, 0);
  buffer.writeUInt16LE(type, 4);
  buffer.writeUInt16LE(NLM_F_REQUEST | flags, 6);
  buffer.writeUInt32LE(seq >>> 0, 8);
  buffer.writeUInt32LE(pid >>> 0, 12);
  buffer.writeUInt8(familyToAf(parsed.family), NLMSG_HDRLEN);
  // NDA_DST and RTA_DST are both attribute 1.
  const payload = writeAttribute(buffer, NLMSG_HDRLEN + fixedLength, NDA_DST, addressLength);
  writeAddress(buffer, payload, parsed.family, parsed.address);
  return { buffer, fixed: NLMSG_HDRLEN, family: parsed.family };
}

/** RTM_GETROUTE for one address: the kernel answers with the route it would use (RTM_NEWROUTE) or an error. */
export function encodeRouteLookup(address: string, seq: number, pid: number): Buffer {
  const { buffer, fixed, family } = message(RTM_GETROUTE, 0, seq, pid, RTMSG_LEN, address);
  buffer.writeUInt8(family === 4 ? 32 : 128, fixed + 1); // rtm_dst_len
  return buffer;
}

/** RTM_GETNEIGH for the entry of `address` on interface `ifindex`: answered by RTM_NEWNEIGH, or ENOENT. */
export function encodeNeighbourGet(address: string, ifindex: number, seq: number, pid: number): Buffer {
  const { buffer, fixed } = message(RTM_GETNEIGH, 0, seq, pid, NDMSG_LEN, address);
  buffer.writeInt32LE(ifindex, fixed + 4);
  return buffer;
}

/**
 * The two probe requests, acknowledged:
 * - `probe`: RTM_NEWNEIGH with state NUD_PROBE on an existing entry that has a link-layer address (without one the
 *   kernel refuses: "No link layer address given"). The kernel sends `ucast_solicit` unicast solicitations to that
 *   address, `retrans_time` apart, then makes the entry REACHABLE on an answer or FAILED without one.
 * - `resolve`: RTM_NEWNEIGH with NTF_USE (creating the entry when absent): the kernel resolves the address as if a
 *   packet were waiting for it (`mcast_solicit` broadcasts / multicast solicitations), INCOMPLETE until REACHABLE or
 *   FAILED. On an entry that is already valid, NTF_USE does nothing.
 */
export function encodeNeighbourProbe(
  kind: 'probe' | 'resolve',
  address: string,
  ifindex: number,
  seq: number,
  pid: number,
): Buffer {
  const flags = NLM_F_ACK | (kind === 'resolve' ? NLM_F_CREATE : 0);
  const { buffer, fixed } = message(RTM_NEWNEIGH, flags, seq, pid, NDMSG_LEN, address);
  buffer.writeInt32LE(ifindex, fixed + 4);
  if (kind === 'probe') buffer.writeUInt16LE(NUD_PROBE, fixed + 8);
  else buffer.writeUInt8(NTF_USE, fixed + 10);
  return buffer;
}

/** Visits the attributes of `msg` after its fixed part of `fixedLength` bytes. */
function eachAttribute(msg: RawMessage, fixedLength: number, visit: (type: number, at: number, len: number) => void) {
  forEachAttribute(msg.buffer, msg.start + fixedLength, msg.end, visit);
}

function readAddress(buffer: Buffer, at: number, length: number): string | undefined {
  if (length === 4) return formatAddress(4, BigInt(buffer.readUInt32BE(at)));
  if (length === 16) {
    return formatAddress(6, (buffer.readBigUInt64BE(at) << 64n) | buffer.readBigUInt64BE(at + 8));
  }
  return undefined;
}

/** The route the kernel would use for an address, as much as tells whether the address is on a connected subnet. */
export interface RouteLookup {
  /** rtm_type: 1 unicast, 2 local, 7 unreachable, ... */
  type: number;
  /** The next hop, when the route has one (RTA_GATEWAY or RTA_VIA): then the address is not on-link. */
  gateway?: string;
  /** Interface the address is reached through. */
  oif?: number;
}

/** Decodes the RTM_NEWROUTE answer of {@link encodeRouteLookup}. */
export function decodeRouteLookup(msg: RawMessage): RouteLookup | undefined {
  if (msg.end - msg.start < RTMSG_LEN) return undefined;
  const lookup: RouteLookup = { type: msg.buffer.readUInt8(msg.start + 7) };
  eachAttribute(msg, RTMSG_LEN, (type, at, length) => {
    if (type === RTA_OIF && length >= 4) lookup.oif = msg.buffer.readUInt32LE(at);
    else if (type === RTA_GATEWAY) lookup.gateway = readAddress(msg.buffer, at, length) ?? 'unknown';
    // struct rtvia: a 2-byte family, then the address.
    else if (type === RTA_VIA) lookup.gateway = readAddress(msg.buffer, at + 2, length - 2) ?? 'unknown';
  });
  return lookup;
}

/** One neighbour entry. */
export interface NeighbourEntry {
  family: Family;
  ifindex: number;
  /** NUD_* bits (exactly one is set by the kernel; NUD_NONE is 0). */
  state: number;
  /** ndm_flags (NTF_*). */
  flags: number;
  /** NDA_FLAGS_EXT (NTF_EXT_*), 0 when absent. */
  extFlags: number;
  address?: string;
  /** Link-layer address as lower-case hex pairs joined by ':'. */
  lladdr?: string;
  /** How long ago the kernel last confirmed the entry (an answer, or a confirmation by traffic), in ms. */
  confirmedAgoMs?: number;
}

/** Decodes an RTM_NEWNEIGH message (the answer of {@link encodeNeighbourGet}, or a notification). */
export function decodeNeighbour(msg: RawMessage): NeighbourEntry | undefined {
  if (msg.end - msg.start < NDMSG_LEN) return undefined;
  const { buffer, start } = msg;
  const af = buffer.readUInt8(start);
  if (af !== 2 && af !== 10) return undefined;
  const entry: NeighbourEntry = {
    family: af === 2 ? 4 : 6,
    ifindex: buffer.readInt32LE(start + 4),
    state: buffer.readUInt16LE(start + 8),
    flags: buffer.readUInt8(start + 10),
    extFlags: 0,
  };
  eachAttribute(msg, NDMSG_LEN, (type, at, length) => {
    if (type === NDA_DST) entry.address = readAddress(buffer, at, length);
    else if (type === NDA_LLADDR)
      entry.lladdr = buffer
        .subarray(at, at + length)
        .toString('hex')
        .replace(/(..)(?!$)/g, '$1:');
    else if (type === NDA_CACHEINFO && length >= 4) entry.confirmedAgoMs = buffer.readUInt32LE(at) * MS_PER_CLOCK_TICK;
    else if (type === NDA_FLAGS_EXT && length >= 4) entry.extFlags = buffer.readUInt32LE(at);
  });
  return entry;
}

const STATE_NAMES: [number, string][] = [
  [NUD_INCOMPLETE, 'INCOMPLETE'],
  [NUD_REACHABLE, 'REACHABLE'],
  [NUD_STALE, 'STALE'],
  [NUD_DELAY, 'DELAY'],
  [NUD_PROBE, 'PROBE'],
  [NUD_FAILED, 'FAILED'],
  [NUD_NOARP, 'NOARP'],
  [NUD_PERMANENT, 'PERMANENT'],
];

/** The state's name as `ip neigh` prints it (NONE for 0). */
export function neighbourStateName(state: number): string {
  const names = STATE_NAMES.filter(([bit]) => (state & bit) !== 0).map(([, name]) => name);
  return names.length > 0 ? names.join(',') : 'NONE';
}

/** Slack for the kernel's tick granularity when asking "was the entry confirmed during the round?". */
const CONFIRM_SLACK_MS = 50;

/** Entries someone else maintains (EVPN, switchdev, the kernel's managed neighbours): never written by the prober. */
export function ownedByAnother(entry: NeighbourEntry): boolean {
  return (entry.flags & NTF_EXT_LEARNED) !== 0 || entry.extFlags !== 0;
}

/**
 * How a round ended, from the entry read at its end and how long it lasted: good when the kernel confirmed the entry
 * during the round (the answer to the round's solicitation, or confirmation by traffic), or when the entry is
 * PERMANENT / NOARP; an entry owned by someone else is good while REACHABLE.
 */
export function roundVerdict(entry: NeighbourEntry | undefined, roundMs: number): { ok: boolean; reason: string } {
  if (entry === undefined) return { ok: false, reason: 'no neighbour entry' };
  const name = neighbourStateName(entry.state);
  if (entry.state & (NUD_PERMANENT | NUD_NOARP)) return { ok: true, reason: `neighbour ${name}` };
  if (ownedByAnother(entry)) {
    return { ok: (entry.state & NUD_REACHABLE) !== 0, reason: `neighbour ${name} (not probed)` };
  }
  const confirmed =
    (entry.state & NUD_VALID) !== 0 &&
    entry.confirmedAgoMs !== undefined &&
    entry.confirmedAgoMs <= roundMs + CONFIRM_SLACK_MS;
  if (confirmed) return { ok: true, reason: 'neighbour answered' };
  return { ok: false, reason: `neighbour ${name}${entry.state & NUD_PROBE ? ', probe unanswered' : ''}` };
}

/**
 * The request that starts a round (`kind`), if the entry may be written and the kernel is not soliciting already;
 * `unprobed` says why an entry is never written.
 */
export function probeRequest(entry: NeighbourEntry | undefined): { kind?: 'probe' | 'resolve'; unprobed?: string } {
  if (entry === undefined) return { kind: 'resolve' };
  if (entry.state & (NUD_PERMANENT | NUD_NOARP)) {
    return { unprobed: `${neighbourStateName(entry.state)} neighbour entry: counted Reachable, not probed` };
  }
  if (ownedByAnother(entry)) {
    return { unprobed: 'neighbour entry owned by another (extern_learn or managed): state read, not probed' };
  }
  if (entry.state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY)) return { kind: 'probe' };
  // NONE or FAILED: no link-layer address to probe, so ask the kernel to resolve. PROBE and INCOMPLETE: the kernel
  // is soliciting already; another request would not add a solicitation.
  if ((entry.state & NUD_VALID) === 0 && entry.state !== NUD_INCOMPLETE) return { kind: 'resolve' };
  return {};
}
