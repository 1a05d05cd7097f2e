/**
 * The codec's link side: link messages (index, flags, name), the links a route uses, the requester's port of every
 * message (how the monitor recognizes the echo of our own requests), and link dump requests.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeLink,
  decodeRouteLinks,
  encodeDumpRequest,
  encodeRouteRequest,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  routeRequestLength,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  splitMessages,
} from '../../src/adapters/netlink-codec.js';
import { parseAddress } from '../../src/logic/ip.js';
import { attribute, u32 } from '../support/netlink-messages.js';

const address = (text: string) => (parseAddress(text) as { address: bigint }).address;

function message(type: number, body: Buffer, seq: number, pid: number): Buffer {
  const header = Buffer.alloc(NLMSG_HDRLEN);
  header.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  header.writeUInt16LE(type, 4);
  header.writeUInt32LE(seq, 8);
  header.writeUInt32LE(pid, 12);
  return Buffer.concat([header, body]);
}

describe('link messages', () => {
  it('decodes the index, the flags and the name', () => {
    const info = Buffer.alloc(16);
    info.writeUInt16LE(1, 2); // ARPHRD_ETHER
    info.writeInt32LE(42, 4);
    info.writeUInt32LE(0x11043, 8); // UP | BROADCAST | RUNNING | MULTICAST | LOWER_UP
    const body = Buffer.concat([info, attribute(3, Buffer.from('pod7a\0'))]);
    const [decoded] = splitMessages(message(RTM_NEWLINK, body, 0, 0));
    expect(decodeLink(decoded!)).toEqual({ index: 42, flags: 0x11043, name: 'pod7a' });
  });

  it('refuses a message too short for ifinfomsg', () => {
    const [decoded] = splitMessages(message(RTM_NEWLINK, Buffer.alloc(8), 0, 0));
    expect(decodeLink(decoded!)).toBeUndefined();
  });

  it('encodes a link dump request with an ifinfomsg body', () => {
    const request = encodeDumpRequest(RTM_GETLINK, 9, 77);
    expect(request.length).toBe(NLMSG_HDRLEN + 16);
    expect(request.readUInt16LE(4)).toBe(RTM_GETLINK);
    expect(request.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_DUMP);
  });
});

describe('the links of a route', () => {
  it('reads the table, the protocol and the output interface of a single-path route', () => {
    const rtmsg = Buffer.alloc(12);
    rtmsg.writeUInt8(2, 0);
    rtmsg.writeUInt8(32, 1);
    rtmsg.writeUInt8(254, 4);
    rtmsg.writeUInt8(201, 5);
    const body = Buffer.concat([rtmsg, attribute(1, Buffer.from([198, 51, 100, 1])), attribute(4, u32(3))]);
    const [decoded] = splitMessages(message(RTM_NEWROUTE, body, 5, 1234));
    expect(decodeRouteLinks(decoded!)).toEqual({ table: 254, protocol: 201, interfaces: [3] });
  });

  it('reads every hop of a multipath route, and the table from RTA_TABLE', () => {
    const rtmsg = Buffer.alloc(12);
    rtmsg.writeUInt8(2, 0);
    rtmsg.writeUInt8(252, 4);
    rtmsg.writeUInt8(201, 5);
    const hop = (ifindex: number) => {
      const gateway = attribute(5, Buffer.from([10, 116, 0, ifindex]));
      const header = Buffer.alloc(8);
      header.writeUInt16LE(8 + gateway.length, 0);
      header.writeInt32LE(ifindex, 4);
      return Buffer.concat([header, gateway]);
    };
    const body = Buffer.concat([rtmsg, attribute(15, u32(1000)), attribute(9, Buffer.concat([hop(3), hop(4)]))]);
    const [decoded] = splitMessages(message(RTM_NEWROUTE, body, 5, 1234));
    expect(decodeRouteLinks(decoded!)).toEqual({ table: 1000, protocol: 201, interfaces: [3, 4] });
  });
});

describe('message headers', () => {
  it("carry the requester's port and sequence number: what identifies the echo of our own request", () => {
    const request = {
      type: RTM_NEWROUTE,
      flags: 0,
      family: 4 as const,
      destination: address('198.51.100.0'),
      prefixLength: 24,
      gateways: [address('10.116.0.5')],
      protocol: 201,
      table: 254,
    };
    const buffer = Buffer.alloc(routeRequestLength(request) * 2);
    const middle = encodeRouteRequest(buffer, 0, request, 41, 99_001);
    encodeRouteRequest(buffer, middle, request, 42, 99_001);
    expect(splitMessages(buffer).map(({ seq, pid }) => ({ seq, pid }))).toEqual([
      { seq: 41, pid: 99_001 },
      { seq: 42, pid: 99_001 },
    ]);
  });
});
