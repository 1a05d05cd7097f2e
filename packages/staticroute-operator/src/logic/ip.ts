/**
 * IP addresses and prefixes as plain values: strict parsing, canonical formatting and set relations.
 *
 * Addresses are held as `bigint` so that containment and masking are exact for both families. Parsing follows the
 * rules of the Kubernetes CEL `ip()`/`cidr()` library that the CRD uses, so the operator and the API server agree on
 * what is valid: dotted-quad IPv4 without leading zeros, IPv6 without zone ids, and no IPv4-mapped IPv6 addresses.
 */
import ipaddr from 'ipaddr.js';

/** Address family, as the Linux kernel's `AF_INET`/`AF_INET6` distinction. */
export type Family = 4 | 6;

/** A network prefix (address + length). Host routes are prefixes of full length. */
export interface Prefix {
  readonly family: Family;
  /** Network address; for normalized prefixes the host bits are zero. */
  readonly address: bigint;
  readonly length: number;
}

/** Width of an address of the family, in bits. */
export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Strict dotted quad: four decimal octets 0-255 without leading zeros. Hand-rolled: it runs per route. */
function parseIPv4(text: string): bigint | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      dots++;
      octet = 0;
      digits = 0;
      leadingZero = false;
    } else if (code >= 48 && code <= 57) {
      if (leadingZero) return undefined;
      if (digits === 0 && code === 48) leadingZero = true;
      octet = octet * 10 + (code - 48);
      digits++;
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return BigInt(value * 256 + octet);
}

const IPV4_MAPPED_PREFIX = 0xffffn << 32n;

/** Any syntactically valid IPv6 address, IPv4-mapped ones included. */
function parseIPv6Syntax(text: string): bigint | undefined {
  // ipaddr.js accepts zone ids ("fe80::1%eth0"); the kernel route API and CEL do not.
  if (text.includes('%') || !text.includes(':') || !ipaddr.IPv6.isValid(text)) return undefined;
  let value = 0n;
  for (const part of ipaddr.IPv6.parse(text).parts) value = (value << 16n) | BigInt(part);
  return value;
}

function isIPv4Mapped(value: bigint): boolean {
  return value >> 32n === IPV4_MAPPED_PREFIX >> 32n;
}

function parseIPv6(text: string): bigint | undefined {
  const value = parseIPv6Syntax(text);
  // IPv4-mapped addresses (::ffff:a.b.c.d) are IPv4 traffic in disguise; CEL refuses them too.
  return value === undefined || isIPv4Mapped(value) ? undefined : value;
}

/** Parses one IP address; `undefined` when the text is not a valid address. */
export function parseAddress(text: string): { family: Family; address: bigint } | undefined {
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return { family: 4, address: v4 };
  const v6 = parseIPv6(text);
  if (v6 !== undefined) return { family: 6, address: v6 };
  return undefined;
}

/** Result of parsing a destination: the prefix, and whether the text had host bits set (e.g. `10.0.0.1/8`). */
export interface ParsedPrefix {
  prefix: Prefix;
  hostBitsSet: boolean;
}

/**
 * Parses an address (`10.0.0.1`, a host route) or a CIDR (`10.0.0.0/8`). Returns `undefined` for malformed text.
 * The prefix is returned masked; `hostBitsSet` tells whether masking changed it.
 */
export function parsePrefix(text: string): ParsedPrefix | undefined {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const parsed = parseAddress(addressText);
  if (!parsed) return undefined;
  const bits = familyBits(parsed.family);
  const length = slash === -1 ? bits : prefixLength(text.slice(slash + 1), bits);
  if (length === undefined) return undefined;
  const masked = maskAddress(parsed.address, parsed.family, length);
  return {
    prefix: { family: parsed.family, address: masked, length },
    hostBitsSet: masked !== parsed.address,
  };
}

/**
 * Recognizes an IPv4-mapped IPv6 address or CIDR (`::ffff:1.2.3.4`, `::ffff:102:304`, `::ffff:1.2.3.0/120`), which
 * {@link parseAddress} and {@link parsePrefix} refuse, so that the refusal can say what it is instead of calling it
 * malformed. Returns `undefined` for any other text; otherwise the IPv4 form to write instead (`1.2.3.4`,
 * `1.2.3.0/24`), absent when the prefix is shorter than /96 and so has no IPv4 form.
 */
export function ipv4MappedForm(text: string): { ipv4?: string } | undefined {
  const slash = text.indexOf('/');
  const value = parseIPv6Syntax(slash === -1 ? text : text.slice(0, slash));
  if (value === undefined || !isIPv4Mapped(value)) return undefined;
  const address = formatAddress(4, value & 0xffffffffn);
  if (slash === -1) return { ipv4: address };
  const length = prefixLength(text.slice(slash + 1), 128);
  if (length === undefined) return undefined;
  return length >= 96 ? { ipv4: `${address}/${length - 96}` } : {};
}

/** A prefix length as CEL's cidr() accepts it: decimal without leading zeros, at most `bits`. */
function prefixLength(text: string, bits: number): number | undefined {
  if (!/^(0|[1-9][0-9]{0,2})$/.test(text)) return undefined;
  const length = Number(text);
  return length > bits ? undefined : length;
}

/** Parses a prefix and throws on malformed text; for trusted constants and configuration. */
export function mustParsePrefix(text: string): Prefix {
  const parsed = parsePrefix(text);
  if (!parsed) throw new Error(`not an IP address or CIDR: ${JSON.stringify(text)}`);
  return parsed.prefix;
}

function maskAddress(address: bigint, family: Family, length: number): bigint {
  const bits = BigInt(familyBits(family));
  const hostBits = bits - BigInt(length);
  return (address >> hostBits) << hostBits;
}

/** Formats an address canonically: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function formatAddress(family: Family, address: bigint): string {
  if (family === 4) {
    const value = Number(address);
    return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((address >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((group) => group.toString(16)).join(':');
  if (bestLength < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Canonical text of a prefix, always with its length: `34.160.111.145/32`, `2001:db8::/32`. */
export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress(prefix.family, prefix.address)}/${prefix.length}`;
}

/** Canonical text of a single address given as text; `undefined` when invalid. */
export function canonicalAddress(text: string): string | undefined {
  const parsed = parseAddress(text);
  return parsed ? formatAddress(parsed.family, parsed.address) : undefined;
}

/** Whether `outer` contains every address of `inner` (a prefix contains itself). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) return false;
  return maskAddress(inner.address, inner.family, outer.length) === outer.address;
}

/** Whether two prefixes share at least one address (one contains the other). */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  return prefixContains(a, b) || prefixContains(b, a);
}

/** The host prefix (/32 or /128) of an address. */
export function hostPrefix(family: Family, address: bigint): Prefix {
  return { family, address, length: familyBits(family) };
}

/** The network prefix of an interface address, e.g. `10.116.0.2/20` -> `10.116.0.0/20`. */
export function networkOf(family: Family, address: bigint, length: number): Prefix {
  return { family, address: maskAddress(address, family, length), length };
}

/** Canonicalizes and sorts addresses numerically (IPv4 before IPv6); invalid entries are dropped. */
export function sortAddresses(addresses: readonly string[]): string[] {
  return addresses
    .map((text) => parseAddress(text))
    .filter((parsed): parsed is { family: Family; address: bigint } => parsed !== undefined)
    .sort((a, b) => a.family - b.family || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))
    .map((parsed) => formatAddress(parsed.family, parsed.address));
}

/** Whether two canonical, sorted address lists are equal. */
export function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

/**
 * Parses a list of addresses and CIDRs separated by commas and/or white space (configuration values, annotations).
 * Strict like the CRD's destinations: an entry with host bits set (`10.0.0.1/8`) is refused rather than widened,
 * because these lists grant exceptions and must mean exactly what was written.
 */
export function parseCidrList(text: string): { prefixes: Prefix[]; problems: string[] } {
  const prefixes: Prefix[] = [];
  const problems: string[] = [];
  for (const entry of text.split(/[,\s]+/).filter((item) => item !== '')) {
    const parsed = parsePrefix(entry);
    if (!parsed) problems.push(`${JSON.stringify(entry)} is not an IP address or CIDR`);
    else if (parsed.hostBitsSet) {
      problems.push(`${JSON.stringify(entry)} has host bits set (the network is ${formatPrefix(parsed.prefix)})`);
    } else prefixes.push(parsed.prefix);
  }
  return { prefixes, problems };
}

/** A prefix as people write it: a host prefix as the bare address (`203.0.113.10`), any other with its length. */
export function formatPrefixShort(prefix: Prefix): string {
  return prefix.length === familyBits(prefix.family)
    ? formatAddress(prefix.family, prefix.address)
    : formatPrefix(prefix);
}
