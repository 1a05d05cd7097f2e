/**
 * The StaticRoute resource: its wire shape and the parsing that turns a spec into normalized values.
 *
 * The CRD's OpenAPI + CEL rules refuse bad objects at admission; this parser applies the same rules (plus the ones CEL
 * cannot afford, such as duplicates written differently) so that an object stored under an older CRD is refused with
 * a clear status instead of reaching the kernel.
 */
import {
  canonicalAddress,
  formatPrefix,
  hostPrefix,
  mustParsePrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  sortAddresses,
  type Family,
  type Prefix,
} from './ip.js';
import { validateLabelSelector, type LabelSelector } from './label-selector.js';

/** API coordinates of the resource (kept from the seed operator for drop-in compatibility). */
export const STATIC_ROUTE_GROUP = 'networking.digitalocean.com';
export const STATIC_ROUTE_VERSION = 'v1';
export const STATIC_ROUTE_PLURAL = 'staticroutes';
export const STATIC_ROUTE_KIND = 'StaticRoute';

/** Largest `spec.destinations` list accepted (also `maxItems` in deploy/crd.yaml). */
export const MAX_DESTINATIONS = 2000;
/** Largest `spec.gateways` list (ECMP next hops) accepted (also `maxItems` in deploy/crd.yaml). */
export const MAX_GATEWAYS = 16;

/** `spec` as users write it. */
export interface StaticRouteSpec {
  /** Host IPs or CIDRs routed through the gateway(s). */
  destinations: string[];
  /** One next hop (the seed's field). Exactly one of `gateway` / `gateways`. */
  gateway?: string;
  /** Several next hops: one ECMP multipath route per destination. */
  gateways?: string[];
  /** Nodes that install the routes; absent selects every node. */
  nodeSelector?: LabelSelector;
}

/** The subset of an object's metadata the operator reads. */
export interface StaticRouteMetadata {
  name: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

/** A StaticRoute as read from the API (spec unchecked). */
export interface StaticRouteObject {
  apiVersion?: string;
  kind?: string;
  metadata: StaticRouteMetadata;
  spec?: unknown;
  status?: unknown;
}

/** A validated, normalized spec. */
export interface ParsedRouteSpec {
  family: Family;
  /** Normalized destinations in spec order, e.g. `34.160.111.145/32`. */
  destinations: Prefix[];
  /** Canonical next hops, sorted (ECMP next hops form a set). One entry for `gateway`. */
  gateways: string[];
  nodeSelector?: LabelSelector;
}

export type ParseResult = { ok: true; spec: ParsedRouteSpec } | { ok: false; problems: string[] };

/** Whether an address may serve as a next hop: a unicast address that is not loopback, link-local or unspecified. */
export function gatewayProblem(text: string): string | undefined {
  const parsed = parseAddress(text);
  if (!parsed) return 'is not a valid IP address';
  const { family, address } = parsed;
  if (address === 0n) return 'is the unspecified address';
  const inRange = (cidr: string) => prefixContains(mustParsePrefix(cidr), hostPrefix(family, address));
  if (inRange('127.0.0.0/8') || inRange('::1/128')) return 'is a loopback address';
  if (inRange('169.254.0.0/16') || inRange('fe80::/10'))
    return 'is a link-local address (not usable without an interface)';
  if (inRange('224.0.0.0/4') || inRange('ff00::/8')) return 'is a multicast address';
  if (inRange('255.255.255.255/32') || inRange('0.0.0.0/8')) return 'is not a unicast address';
  return undefined;
}

function parseGateways(spec: Record<string, unknown>, problems: string[]): { family?: Family; gateways: string[] } {
  const hasGateway = spec.gateway !== undefined && spec.gateway !== null;
  const hasGateways = spec.gateways !== undefined && spec.gateways !== null;
  if (hasGateway === hasGateways) {
    problems.push('spec: exactly one of spec.gateway or spec.gateways must be set');
    return { gateways: [] };
  }
  const entries: Array<{ path: string; value: unknown }> = [];
  if (hasGateway) {
    entries.push({ path: 'spec.gateway', value: spec.gateway });
  } else if (!Array.isArray(spec.gateways)) {
    problems.push('spec.gateways: must be a list of IP addresses');
    return { gateways: [] };
  } else {
    if (spec.gateways.length === 0) problems.push('spec.gateways: must not be empty');
    if (spec.gateways.length > MAX_GATEWAYS) problems.push(`spec.gateways: at most ${MAX_GATEWAYS} gateways`);
    spec.gateways.forEach((value, index) => entries.push({ path: `spec.gateways[${index}]`, value }));
  }
  const families = new Set<Family>();
  const seen = new Map<string, string>();
  const gateways: string[] = [];
  for (const { path, value } of entries) {
    if (typeof value !== 'string') {
      problems.push(`${path}: must be a string`);
      continue;
    }
    const problem = gatewayProblem(value);
    if (problem) {
      problems.push(`${path}: ${JSON.stringify(value)} ${problem}`);
      continue;
    }
    const canonical = canonicalAddress(value) as string;
    const earlier = seen.get(canonical);
    if (earlier) {
      problems.push(`${path}: duplicate of ${earlier} (${canonical})`);
      continue;
    }
    seen.set(canonical, path);
    families.add((parseAddress(value) as { family: Family }).family);
    gateways.push(canonical);
  }
  if (families.size > 1) problems.push('spec.gateways: all gateways must be of one address family');
  return { family: families.size === 1 ? [...families][0] : undefined, gateways: sortAddresses(gateways) };
}

/**
 * Validates and normalizes a spec. Every problem names the field it is about (`spec.destinations[2]: ...`).
 */
export function parseRouteSpec(spec: unknown): ParseResult {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return { ok: false, problems: ['spec: must be an object with destinations and a gateway'] };
  }
  const fields = spec as Record<string, unknown>;
  const problems: string[] = [];
  const { family: gatewayFamily, gateways } = parseGateways(fields, problems);

  const destinations: Prefix[] = [];
  const { destinations: rawDestinations } = fields;
  if (!Array.isArray(rawDestinations)) {
    problems.push('spec.destinations: must be a list of IP addresses or CIDRs');
  } else {
    if (rawDestinations.length === 0) problems.push('spec.destinations: must not be empty');
    if (rawDestinations.length > MAX_DESTINATIONS) {
      problems.push(`spec.destinations: at most ${MAX_DESTINATIONS} destinations (got ${rawDestinations.length})`);
    }
    const seen = new Map<string, string>();
    rawDestinations.forEach((value: unknown, index) => {
      const path = `spec.destinations[${index}]`;
      if (typeof value !== 'string') {
        problems.push(`${path}: must be a string`);
        return;
      }
      const parsed = parsePrefix(value);
      if (!parsed) {
        problems.push(`${path}: ${JSON.stringify(value)} is not a valid IP address or CIDR`);
        return;
      }
      const canonical = formatPrefix(parsed.prefix);
      if (parsed.hostBitsSet) {
        problems.push(`${path}: ${JSON.stringify(value)} has host bits set (the network is ${canonical})`);
        return;
      }
      if (gatewayFamily !== undefined && parsed.prefix.family !== gatewayFamily) {
        problems.push(
          `${path}: ${JSON.stringify(value)} is IPv${parsed.prefix.family} but the gateway is IPv${gatewayFamily}`,
        );
        return;
      }
      const earlier = seen.get(canonical);
      if (earlier) {
        problems.push(`${path}: duplicate of ${earlier} (${canonical})`);
        return;
      }
      seen.set(canonical, path);
      destinations.push(parsed.prefix);
    });
  }
  problems.push(...validateLabelSelector(fields.nodeSelector, 'spec.nodeSelector'));

  if (problems.length > 0 || gatewayFamily === undefined) {
    return { ok: false, problems: problems.length > 0 ? problems : ['spec: no usable gateway'] };
  }
  const parsed: ParsedRouteSpec = { family: gatewayFamily, destinations, gateways };
  if (fields.nodeSelector) parsed.nodeSelector = fields.nodeSelector as LabelSelector;
  return { ok: true, spec: parsed };
}
