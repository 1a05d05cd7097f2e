/**
 * rtnetlink wire format for the few messages the operator needs: route requests (add, replace, delete, dump),
 * address dumps, and parsing of the kernel's replies and notifications.
 *
 * The `netlink` package provides the socket (a native binding); its generic attribute codec is convenient but slow
 * for tens of thousands of routes, so requests are encoded here straight into one buffer per batch, and replies are
 * decoded without intermediate objects. Netlink uses host byte order; the operator supports little-endian Linux
 * (amd64, arm64), which is checked at load time.
 */
import { endianness } from 'node:os';
import { formatAddress, formatPrefix, sortAddresses, type Family } from '../logic/ip.js';
import type { KernelRoute } from '../logic/plan.js';

if (endianness() !== 'LE') throw new Error('the netlink codec supports little-endian machines only');

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
/** Set on a dump's messages when the kernel's object set changed while it ran: the dump may be inconsistent. */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

/** Multicast groups (RTNLGRP_*) the route monitor joins. */
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV6_ROUTE = 11;

const AF_INET = 2;
const AF_INET6 = 10;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTA_VIA = 18;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const RTMSG_LEN = 12;
const IFADDRMSG_LEN = 8;
const IFINFOMSG_LEN = 16;
const IFLA_IFNAME = 3;
const RTNH_LEN = 8;
/** RT_SCOPE_UNIVERSE for adds; RT_SCOPE_NOWHERE on deletes means "any scope" to the kernel. */
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_NOWHERE = 255;
export const RT_TABLE_MAIN = 254;

/** Netlink aligns messages and attributes to 4 bytes. */
export const align4 = (length: number) => (length + 3) & ~3;

export function familyToAf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

function afToFamily(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

function bytesToAddress(buffer: Buffer, start: number, length: number): bigint {
  if (length === 4) return BigInt(buffer.readUInt32BE(start));
  let value = 0n;
  for (let index = start; index < start + length; index++) value = (value << 8n) | BigInt(buffer[index] as number);
  return value;
}

/** What a route request carries. */
export interface RouteRequest {
  /** RTM_NEWROUTE or RTM_DELROUTE. */
  type: number;
  /** NLM_F_* beyond REQUEST|ACK (which are always set). */
  flags: number;
  family: Family;
  destination: bigint;
  prefixLength: number;
  /** Next-hop addresses; more than one is encoded as RTA_MULTIPATH. */
  gateways: bigint[];
  protocol: number;
  table: number;
  /** Metric; omitted when undefined (the kernel then uses its default on add, and any metric on delete). */
  priority?: number;
}

function attributeLength(payload: number): number {
  return align4(4 + payload);
}

/** Bytes of one encoded route request. */
export function routeRequestLength(request: RouteRequest): number {
  const addressLength = request.family === 4 ? 4 : 16;
  let length = NLMSG_HDRLEN + RTMSG_LEN + attributeLength(addressLength) + attributeLength(4);
  if (request.priority !== undefined) length += attributeLength(4);
  if (request.gateways.length === 1) length += attributeLength(addressLength);
  if (request.gateways.length > 1) {
    length += attributeLength(request.gateways.length * (RTNH_LEN + attributeLength(addressLength)));
  }
  return length;
}

/** Writes an attribute header at `offset` and returns where its payload goes. */
export function writeAttribute(buffer: Buffer, offset: number, type: number, payloadLength: number): number {
  buffer.writeUInt16LE(4 + payloadLength, offset);
  buffer.writeUInt16LE(type, offset + 2);
  return offset + 4;
}

/** Writes an address in network byte order (4 or 16 bytes). */
export function writeAddress(buffer: Buffer, offset: number, family: Family, address: bigint): void {
  if (family === 4) {
    buffer.writeUInt32BE(Number(address), offset);
  } else {
    buffer.writeBigUInt64BE(address >> 64n, offset);
    buffer.writeBigUInt64BE(address & 0xffffffffffffffffn, offset + 8);
  }
}

/**
 * Encodes one route request at `offset` of `buffer` (which must have room, see {@link routeRequestLength}) and
 * returns the offset after it.
 *
 * `ack`: without NLM_F_ACK the kernel answers only on error. Batches use that to avoid one ACK per route filling the
 * receive buffer: only the last request of a datagram asks, and its ACK proves the earlier ones done.
 */
export function encodeRouteRequest(
  buffer: Buffer,
  offset: number,
  request: RouteRequest,
  seq: number,
  pid: number,
  ack = true,
): number {
  const length = routeRequestLength(request);
  buffer.fill(0, offset, offset + length);
  const isDelete = request.type === RTM_DELROUTE;
  buffer.writeUInt32LE(length, offset);
  buffer.writeUInt16LE(request.type, offset + 4);
  buffer.writeUInt16LE(NLM_F_REQUEST | (ack ? NLM_F_ACK : 0) | request.flags, offset + 6);
  buffer.writeUInt32LE(seq >>> 0, offset + 8);
  buffer.writeUInt32LE(pid >>> 0, offset + 12);
  let at = offset + NLMSG_HDRLEN;
  buffer.writeUInt8(familyToAf(request.family), at);
  buffer.writeUInt8(request.prefixLength, at + 1);
  buffer.writeUInt8(request.table < 256 ? request.table : 252, at + 4);
  buffer.writeUInt8(request.protocol, at + 5);
  buffer.writeUInt8(isDelete ? RT_SCOPE_NOWHERE : RT_SCOPE_UNIVERSE, at + 6);
  buffer.writeUInt8(isDelete ? 0 : 1, at + 7); // rtm_type: unicast (0 = any on delete)
  at += RTMSG_LEN;
  const addressLength = request.family === 4 ? 4 : 16;
  at = writeAttribute(buffer, at, RTA_DST, addressLength);
  writeAddress(buffer, at, request.family, request.destination);
  at += align4(addressLength);
  at = writeAttribute(buffer, at, RTA_TABLE, 4);
  buffer.writeUInt32LE(request.table, at);
  at += 4;
  if (request.priority !== undefined) {
    at = writeAttribute(buffer, at, RTA_PRIORITY, 4);
    buffer.writeUInt32LE(request.priority, at);
    at += 4;
  }
  if (request.gateways.length === 1) {
    at = writeAttribute(buffer, at, RTA_GATEWAY, addressLength);
    writeAddress(buffer, at, request.family, request.gateways[0] as bigint);
    at += align4(addressLength);
  } else if (request.gateways.length > 1) {
    const hopLength = RTNH_LEN + attributeLength(addressLength);
    at = writeAttribute(buffer, at, RTA_MULTIPATH, request.gateways.length * hopLength);
    for (const gateway of request.gateways) {
      buffer.writeUInt16LE(hopLength, at); // rtnh_len; flags, hops (weight 1) and ifindex (any) stay 0
      at = writeAttribute(buffer, at + RTNH_LEN, RTA_GATEWAY, addressLength);
      writeAddress(buffer, at, request.family, gateway);
      at += align4(addressLength);
    }
  }
  return at;
}

/** Encodes a dump request (RTM_GETROUTE, RTM_GETADDR or RTM_GETLINK) for all families (AF_UNSPEC). */
export function encodeDumpRequest(type: number, seq: number, pid: number): Buffer {
  const bodyLength = type === RTM_GETROUTE ? RTMSG_LEN : type === RTM_GETLINK ? IFINFOMSG_LEN : IFADDRMSG_LEN;
  const buffer = Buffer.alloc(NLMSG_HDRLEN + bodyLength);
  buffer.writeUInt32LE(buffer.length, 0);
  buffer.writeUInt16LE(type, 4);
  buffer.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  buffer.writeUInt32LE(seq >>> 0, 8);
  buffer.writeUInt32LE(pid >>> 0, 12);
  return buffer;
}

/** One netlink message inside a datagram (payload not copied). */
export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  /**
   * Port of the socket the message is about: ours in replies, the requester's in a notification caused by a request
   * (how the monitor recognizes the echo of the operator's own changes), 0 for the kernel's own changes.
   */
  pid: number;
  /** Start and end of the payload in `buffer`. */
  start: number;
  end: number;
  buffer: Buffer;
}

/** Splits a datagram into messages. */
export function splitMessages(buffer: Buffer): RawMessage[] {
  const messages: RawMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= buffer.length) {
    const length = buffer.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > buffer.length) break;
    messages.push({
      type: buffer.readUInt16LE(offset + 4),
      flags: buffer.readUInt16LE(offset + 6),
      seq: buffer.readUInt32LE(offset + 8),
      pid: buffer.readUInt32LE(offset + 12),
      start: offset + NLMSG_HDRLEN,
      end: offset + length,
      buffer,
    });
    offset += align4(length);
  }
  return messages;
}

/** The errno of an NLMSG_ERROR message: 0 for an ACK, a positive errno otherwise. */
export function errorCode(message: RawMessage): number {
  return -message.buffer.readInt32LE(message.start);
}

/** Visits the attributes between `start` and `end` (a malformed length ends the walk). */
export function forEachAttribute(
  buffer: Buffer,
  start: number,
  end: number,
  visit: (type: number, at: number, length: number) => void,
) {
  let offset = start;
  while (offset + 4 <= end) {
    const length = buffer.readUInt16LE(offset);
    if (length < 4 || offset + length > end) break;
    visit(buffer.readUInt16LE(offset + 2) & 0x3fff, offset + 4, length - 4);
    offset += align4(length);
  }
}

/** A route message with the table and interface it is in, beyond what the planner needs. */
export interface DecodedRoute extends KernelRoute {
  table: number;
  /** Output interface index (single-path routes). */
  oif?: number;
}

/** Decodes an RTM_NEWROUTE / RTM_DELROUTE payload; `undefined` for families other than IPv4/IPv6. */
export function decodeRoute(message: RawMessage): DecodedRoute | undefined {
  const { buffer, start, end } = message;
  const family = afToFamily(buffer.readUInt8(start));
  if (!family) return undefined;
  const addressLength = family === 4 ? 4 : 16;
  const prefixLength = buffer.readUInt8(start + 1);
  let table = buffer.readUInt8(start + 4);
  const protocol = buffer.readUInt8(start + 5);
  const type = buffer.readUInt8(start + 7);
  let destination = 0n;
  let metric = 0;
  let oif: number | undefined;
  const gateways: bigint[] = [];
  forEachAttribute(buffer, start + RTMSG_LEN, end, (attribute, at, length) => {
    if (attribute === RTA_DST && length >= addressLength) destination = bytesToAddress(buffer, at, addressLength);
    else if (attribute === RTA_GATEWAY && length >= addressLength)
      gateways.push(bytesToAddress(buffer, at, addressLength));
    else if (attribute === RTA_PRIORITY && length >= 4) metric = buffer.readUInt32LE(at);
    else if (attribute === RTA_TABLE && length >= 4) table = buffer.readUInt32LE(at);
    else if (attribute === RTA_OIF && length >= 4) oif = buffer.readUInt32LE(at);
    else if (attribute === RTA_MULTIPATH) {
      let hop = at;
      while (hop + RTNH_LEN <= at + length) {
        const hopLength = buffer.readUInt16LE(hop);
        if (hopLength < RTNH_LEN) break;
        forEachAttribute(buffer, hop + RTNH_LEN, hop + hopLength, (inner, innerAt, innerLength) => {
          if (inner === RTA_GATEWAY && innerLength >= addressLength) {
            gateways.push(bytesToAddress(buffer, innerAt, addressLength));
          } else if (inner === RTA_VIA && innerLength >= 2 + addressLength) {
            gateways.push(bytesToAddress(buffer, innerAt + 2, addressLength));
          }
        });
        hop += align4(hopLength);
      }
    }
  });
  const route: DecodedRoute = {
    family,
    destination: formatPrefix({ family, address: destination, length: prefixLength }),
    gateways:
      gateways.length === 1
        ? [formatAddress(family, gateways[0] as bigint)]
        : sortAddresses(gateways.map((gateway) => formatAddress(family, gateway))),
    protocol,
    metric,
    type,
    table,
  };
  if (oif !== undefined) route.oif = oif;
  return route;
}

/** An interface address from RTM_NEWADDR. */
export interface DecodedAddress {
  family: Family;
  address: bigint;
  prefixLength: number;
  interfaceIndex: number;
  label?: string;
}

/** Decodes an RTM_NEWADDR payload. IFA_LOCAL (the address itself) wins over IFA_ADDRESS (the peer on p2p links). */
export function decodeAddress(message: RawMessage): DecodedAddress | undefined {
  const { buffer, start, end } = message;
  const family = afToFamily(buffer.readUInt8(start));
  if (!family) return undefined;
  const addressLength = family === 4 ? 4 : 16;
  let local: bigint | undefined;
  let address: bigint | undefined;
  let label: string | undefined;
  forEachAttribute(buffer, start + IFADDRMSG_LEN, end, (attribute, at, length) => {
    if (attribute === IFA_LOCAL && length >= addressLength) local = bytesToAddress(buffer, at, addressLength);
    else if (attribute === IFA_ADDRESS && length >= addressLength) address = bytesToAddress(buffer, at, addressLength);
    else if (attribute === IFA_LABEL) label = buffer.toString('utf8', at, at + length).replace(/\0.*$/s, '');
  });
  const value = local ?? address;
  if (value === undefined) return undefined;
  const decoded: DecodedAddress = {
    family,
    address: value,
    prefixLength: buffer.readUInt8(start + 1),
    interfaceIndex: buffer.readUInt32LE(start + 4),
  };
  if (label) decoded.label = label;
  return decoded;
}

/** What a route notification says about the links it uses, without decoding the route. */
export interface RouteLinks {
  table: number;
  protocol: number;
  /** Interface indexes of its next hops (RTA_OIF, or each hop's ifindex of RTA_MULTIPATH). */
  interfaces: number[];
}

/** Decodes the table, protocol and output interfaces of an RTM_NEWROUTE / RTM_DELROUTE payload. */
export function decodeRouteLinks(message: RawMessage): RouteLinks | undefined {
  const { buffer, start, end } = message;
  if (end - start < RTMSG_LEN) return undefined;
  let table = buffer.readUInt8(start + 4);
  const protocol = buffer.readUInt8(start + 5);
  const interfaces: number[] = [];
  forEachAttribute(buffer, start + RTMSG_LEN, end, (attribute, at, length) => {
    if (attribute === RTA_TABLE && length >= 4) table = buffer.readUInt32LE(at);
    else if (attribute === RTA_OIF && length >= 4) interfaces.push(buffer.readUInt32LE(at));
    else if (attribute === RTA_MULTIPATH) {
      let hop = at;
      while (hop + RTNH_LEN <= at + length) {
        const hopLength = buffer.readUInt16LE(hop);
        if (hopLength < RTNH_LEN) break;
        // struct rtnexthop: len (2), flags (1), hops (1), ifindex (4).
        interfaces.push(buffer.readInt32LE(hop + 4));
        hop += align4(hopLength);
      }
    }
  });
  return { table, protocol, interfaces };
}

/** A link from RTM_NEWLINK / RTM_DELLINK. */
export interface DecodedLink {
  index: number;
  /** IFF_* flags (IFF_UP, IFF_RUNNING, IFF_LOWER_UP, ...). */
  flags: number;
  name?: string;
}

/** Decodes the ifinfomsg header and IFLA_IFNAME of a link message. */
export function decodeLink(message: RawMessage): DecodedLink | undefined {
  const { buffer, start, end } = message;
  if (end - start < IFINFOMSG_LEN) return undefined;
  const link: DecodedLink = { index: buffer.readInt32LE(start + 4), flags: buffer.readUInt32LE(start + 8) };
  forEachAttribute(buffer, start + IFINFOMSG_LEN, end, (attribute, at, length) => {
    if (attribute === IFLA_IFNAME) link.name = buffer.toString('utf8', at, at + length).replace(/\0.*$/s, '');
  });
  return link;
}
