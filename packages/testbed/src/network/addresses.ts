/** Address arithmetic for the simulated network (IPv4 hosts of the VPC, their IPv6 twins, destination checks). */
import { isIPv4, isIPv6 } from 'node:net';
import { ALLOWED_DESTINATION_RANGES } from '../constants.js';

/** 10.116.0.10 -> 0x0a74000a */
export function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Expands an IPv6 address to 8 groups of numbers. */
function ipv6Groups(address: string): number[] {
  const [head = '', tail = ''] = address.split('::');
  const parse = (part: string): number[] => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const left = parse(head);
  const right = address.includes('::') ? parse(tail) : [];
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function splitCidr(cidr: string): { address: string; length: number } {
  const [address = '', length] = cidr.split('/');
  return { address, length: Number(length ?? (isIPv6(address) ? 128 : 32)) };
}

/** Whether `inner` (a CIDR) lies entirely inside `outer` (a CIDR of the same family). */
export function cidrWithin(inner: string, outer: string): boolean {
  const a = splitCidr(inner);
  const b = splitCidr(outer);
  if (a.length < b.length) return false;
  if (isIPv4(a.address) && isIPv4(b.address)) {
    const masked = (value: number): number => Math.floor(value / 2 ** (32 - b.length));
    return masked(ipv4ToNumber(a.address)) === masked(ipv4ToNumber(b.address));
  }
  if (isIPv6(a.address) && isIPv6(b.address)) {
    const ga = ipv6Groups(a.address);
    const gb = ipv6Groups(b.address);
    for (let bit = 0; bit < b.length; bit += 1) {
      const group = Math.floor(bit / 16);
      const shift = 15 - (bit % 16);
      if ((((ga[group] ?? 0) >> shift) & 1) !== (((gb[group] ?? 0) >> shift) & 1)) return false;
    }
    return true;
  }
  return false;
}

/** Throws unless `cidr` is inside a documentation range (the only destinations a gateway may host). */
export function assertAllowedDestination(cidr: string): void {
  if (!cidr.includes('/') || !ALLOWED_DESTINATION_RANGES.some((range) => cidrWithin(cidr, range))) {
    throw new Error(
      `gateway destination ${cidr} is not allowed: use a CIDR inside ${ALLOWED_DESTINATION_RANGES.join(', ')}`,
    );
  }
}

/**
 * The address a gateway puts on its loopback to host `cidr`: the first host address with the CIDR's prefix length.
 * For IPv4 the kernel then answers for the whole prefix (a loopback prefix is local as a whole); for IPv6 only for
 * that one address.
 */
export function hostedAddress(cidr: string): string {
  const { address, length } = splitCidr(cidr);
  if (isIPv4(address)) {
    const base = ipv4ToNumber(address);
    return `${numberToIpv4(length >= 31 ? base : base + 1)}/${length}`;
  }
  const groups = ipv6Groups(address);
  if (length < 128) groups[7] = (groups[7] ?? 0) + 1;
  return `${groups.map((group) => group.toString(16)).join(':')}/${length}`;
}

/** The IPv6 twin of a VPC IPv4 address: 10.116.0.10 -> fd00:116::a (host part of the /20 in hex). */
export function ipv6TwinOf(address: string): string {
  const host = ipv4ToNumber(address) % 2 ** 12;
  return `fd00:116::${host.toString(16)}`;
}
