import { describe, expect, it } from 'vitest';
import {
  decodeAddress,
  decodeRoute,
  encodeDumpRequest,
  encodeRouteRequest,
  errorCode,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  routeRequestLength,
  RTM_DELROUTE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  splitMessages,
  type RouteRequest,
} from '../../src/adapters/netlink-codec.js';
import { parseAddress } from '../../src/logic/ip.js';

const address = (text: string) => (parseAddress(text) as { address: bigint }).address;

function request(extra: Partial<RouteRequest> = {}): RouteRequest {
  return {
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    family: 4,
    destination: address('198.51.100.0'),
    prefixLength: 24,
    gateways: [address('10.116.0.5')],
    protocol: 201,
    table: 254,
    ...extra,
  };
}

function encode(input: RouteRequest, ack = true): Buffer {
  const buffer = Buffer.alloc(routeRequestLength(input));
  const end = encodeRouteRequest(buffer, 0, input, 7, 1234, ack);
  expect(end).toBe(buffer.length);
  return buffer;
}

describe('route requests', () => {
  it('encodes a header the kernel accepts and decodes back to the same route', () => {
    const buffer = encode(request());
    expect(buffer.readUInt32LE(0)).toBe(buffer.length);
    expect(buffer.readUInt16LE(4)).toBe(RTM_NEWROUTE);
    expect(buffer.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    expect(buffer.readUInt32LE(8)).toBe(7);
    expect(buffer.readUInt32LE(12)).toBe(1234);
    const [message] = splitMessages(buffer);
    expect(decodeRoute(message!)).toEqual({
      family: 4,
      destination: '198.51.100.0/24',
      gateways: ['10.116.0.5'],
      protocol: 201,
      metric: 0,
      type: 1,
      table: 254,
    });
  });

  it('omits the ACK flag when asked (batches ask only on their last request)', () => {
    expect(encode(request(), false).readUInt16LE(6) & NLM_F_ACK).toBe(0);
  });

  it('encodes ECMP next hops as RTA_MULTIPATH', () => {
    const buffer = encode(request({ gateways: [address('10.116.0.12'), address('10.116.0.5')] }));
    expect(decodeRoute(splitMessages(buffer)[0]!)?.gateways).toEqual(['10.116.0.5', '10.116.0.12']);
  });

  it('encodes IPv6 with a metric', () => {
    const buffer = encode(
      request({
        family: 6,
        destination: address('2001:db8:100::'),
        prefixLength: 48,
        gateways: [address('fd00:116::5'), address('fd00:116::c')],
        priority: 1024,
      }),
    );
    expect(decodeRoute(splitMessages(buffer)[0]!)).toMatchObject({
      family: 6,
      destination: '2001:db8:100::/48',
      gateways: ['fd00:116::5', 'fd00:116::c'],
      metric: 1024,
    });
  });

  it('deletes match any scope and type, and name the protocol', () => {
    const buffer = encode(request({ type: RTM_DELROUTE, flags: 0, protocol: 4 }));
    expect(buffer[NLMSG_HDRLEN + 5]).toBe(4); // rtm_protocol
    expect(buffer[NLMSG_HDRLEN + 6]).toBe(255); // RT_SCOPE_NOWHERE
    expect(buffer[NLMSG_HDRLEN + 7]).toBe(0); // RTN_UNSPEC
  });

  it('splits a datagram holding several messages', () => {
    const first = encode(request());
    const second = encode(request({ destination: address('203.0.113.0') }));
    const messages = splitMessages(Buffer.concat([first, second]));
    expect(messages.map((message) => decodeRoute(message)?.destination)).toEqual(['198.51.100.0/24', '203.0.113.0/24']);
  });
});

describe('replies', () => {
  it('reads errno from NLMSG_ERROR (0 = ACK)', () => {
    const buffer = Buffer.alloc(NLMSG_HDRLEN + 4);
    buffer.writeUInt32LE(buffer.length, 0);
    buffer.writeUInt16LE(2, 4);
    buffer.writeInt32LE(-101, NLMSG_HDRLEN);
    expect(errorCode(splitMessages(buffer)[0]!)).toBe(101);
  });

  it('encodes dump requests for every family', () => {
    const buffer = encodeDumpRequest(RTM_GETROUTE, 9, 1);
    expect(buffer.readUInt16LE(4)).toBe(RTM_GETROUTE);
    expect(buffer.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_DUMP);
    expect(buffer[NLMSG_HDRLEN]).toBe(0); // AF_UNSPEC
  });

  it('decodes interface addresses, preferring IFA_LOCAL and reading the label', () => {
    const attribute = (type: number, payload: Buffer) => {
      const header = Buffer.alloc(4);
      header.writeUInt16LE(4 + payload.length, 0);
      header.writeUInt16LE(type, 2);
      const padding = Buffer.alloc((4 - ((4 + payload.length) % 4)) % 4);
      return Buffer.concat([header, payload, padding]);
    };
    const body = Buffer.concat([
      Buffer.from([2, 20, 0, 0, 2, 0, 0, 0]), // ifaddrmsg: AF_INET /20, index 2
      attribute(1, Buffer.from([10, 116, 0, 1])), // IFA_ADDRESS (peer)
      attribute(2, Buffer.from([10, 116, 0, 10])), // IFA_LOCAL
      attribute(3, Buffer.from('eth0\0')),
    ]);
    const header = Buffer.alloc(NLMSG_HDRLEN);
    header.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
    header.writeUInt16LE(20, 4);
    const decoded = decodeAddress(splitMessages(Buffer.concat([header, body]))[0]!);
    expect(decoded).toEqual({
      family: 4,
      address: address('10.116.0.10'),
      prefixLength: 20,
      interfaceIndex: 2,
      label: 'eth0',
    });
  });
});
