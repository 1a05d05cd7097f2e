/**
 * The StaticRoute resource: its wire shape and the parsing that turns a spec into normalized values.
 *
 * The CRD's OpenAPI + CEL rules refuse bad objects at admission; this parser applies the same rules (plus the ones CEL
 * cannot afford, such as duplicates written differently) so that an object stored under an older CRD is refused with
 * a clear status instead of reaching the kernel. Its messages are the CRD's messageExpressions word for word (after
 * the field path), so a user sees the same sentence at `kubectl apply` and in the status; where CEL cannot compute a
 * detail (the network of a CIDR with host bits, the IPv4 form of a hex IPv4-mapped address), the parser adds it.
 *
 * One rule is deliberately not applied: the CRD's limit of 2000 destinations. See {@link MAX_DESTINATIONS}.
 */
import {
  canonicalAddress,
  formatPrefix,
  hostPrefix,
  ipv4MappedForm,
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

/**
 * Largest `spec.destinations` list the API server admits (`maxItems` in deploy/crd.yaml; it bounds the CEL cost and
 * the object size).
 *
 * The parser does not refuse longer lists: objects stored before the CRD had the limit (the seed's CRD had none) are
 * applied as they are. The limit guards admission, not existing objects: refusing them on upgrade would remove
 * routes that worked the moment before, i.e. turn an operator upgrade into an outage, while nothing in the operator
 * needs the limit (routes are programmed in batches whatever their number). The API server keeps such an object
 * usable (CRD validation ratcheting: status, finalizers and a gateway change are accepted while the list is
 * unchanged; a change of the list must bring it within the limit), and the parse result carries a warning that says
 * so.
 */
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
  /** Gateway health checking (ECMP withdrawal of unreachable gateways); absent: the cluster default. */
  gatewayHealth?: GatewayHealthSpec;
}

/** `spec.gatewayHealth` as users write it. */
export interface GatewayHealthSpec {
  /** `Enabled` or `Disabled`; absent: the agents' `GATEWAY_HEALTH_CHECK` (Enabled unless the cluster says otherwise). */
  check?: GatewayHealthCheck;
  /** What happens while every gateway is Unreachable: `Keep` the routes (default) or `Withdraw` them. */
  whenAllDown?: WhenAllDown;
}

export type GatewayHealthCheck = 'Enabled' | 'Disabled';
export type WhenAllDown = 'Keep' | 'Withdraw';
export const GATEWAY_HEALTH_CHECKS: readonly GatewayHealthCheck[] = ['Enabled', 'Disabled'];
export const WHEN_ALL_DOWN: readonly WhenAllDown[] = ['Keep', 'Withdraw'];

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
  /** `spec.gatewayHealth` with its default filled in; `check` stays absent when the cluster default decides. */
  gatewayHealth: { check?: GatewayHealthCheck; whenAllDown: WhenAllDown };
  /** What is accepted but worth telling the user (an over-limit list from before the limit); absent when nothing. */
  warnings?: string[];
}

export type ParseResult = { ok: true; spec: ParsedRouteSpec } | { ok: false; problems: string[] };

/** Why an IPv4-mapped IPv6 value is refused; `ipv4` is the form to write instead, when there is one. */
function ipv4MappedProblem(ipv4: string | undefined): string {
  return (
    'is an IPv4-mapped IPv6 address, which is not accepted: the kernel would route it as IPv6 while the address is ' +
    `IPv4; write it as IPv4${ipv4 === undefined ? '' : ` (${ipv4})`}`
  );
}

/** Addresses that cannot serve as a next hop, in the order the CRD's message tells them apart. */
const NOT_A_GATEWAY: ReadonlyArray<{ ranges: readonly Prefix[]; kind: string }> = [
  ['the unspecified address', '0.0.0.0/32', '::/128'],
  ['a loopback address', '127.0.0.0/8', '::1/128'],
  ['a link-local address (not usable without an interface)', '169.254.0.0/16', 'fe80::/10'],
  ['a multicast address', '224.0.0.0/4', 'ff00::/8'],
  ['the limited broadcast address', '255.255.255.255/32'],
  ['in "this network" (0.0.0.0/8)', '0.0.0.0/8'],
].map(([kind, ...ranges]) => ({ kind: kind as string, ranges: ranges.map(mustParsePrefix) }));

/**
 * Why an address cannot serve as a next hop (the words after `gateway "<text>"`), or `undefined` when it can: it must
 * be a unicast address that is not loopback, link-local, unspecified, broadcast or in 0.0.0.0/8.
 */
export function gatewayProblem(text: string): string | undefined {
  const parsed = parseAddress(text);
  if (!parsed) {
    const mapped = ipv4MappedForm(text);
    return mapped ? ipv4MappedProblem(mapped.ipv4) : 'is not an IP address (e.g. 10.116.0.5)';
  }
  const host = hostPrefix(parsed.family, parsed.address);
  const refused = NOT_A_GATEWAY.find(({ ranges }) => ranges.some((range) => prefixContains(range, host)));
  return refused ? `is ${refused.kind}; a gateway must be a unicast address` : undefined;
}

/**
 * Why a destination is refused (the whole sentence, as the CRD's messageExpression says it), or its prefix.
 */
function parseDestination(value: string): { prefix: Prefix } | { problem: string } {
  const quoted = JSON.stringify(value);
  const parsed = parsePrefix(value);
  if (!parsed) {
    const mapped = ipv4MappedForm(value);
    if (mapped) return { problem: `destination ${quoted} ${ipv4MappedProblem(mapped.ipv4)}` };
    return {
      problem: `destination ${quoted} is not an IP address or CIDR (e.g. 34.160.111.145, 10.0.0.0/8 or 2001:db8::/32)`,
    };
  }
  if (parsed.hostBitsSet) {
    return {
      problem: `destination ${quoted} has host bits set; use the network address ${formatPrefix(parsed.prefix)}`,
    };
  }
  return { prefix: parsed.prefix };
}

function parseGateways(spec: Record<string, unknown>, problems: string[]): { family?: Family; gateways: string[] } {
  const hasGateway = spec.gateway !== undefined && spec.gateway !== null;
  const hasGateways = spec.gateways !== undefined && spec.gateways !== null;
  if (hasGateway === hasGateways) {
    problems.push(
      `spec: exactly one of spec.gateway or spec.gateways must be set (${hasGateway ? 'both are' : 'neither is'})`,
    );
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
  const seen = new Map<string, string>();
  const gateways: string[] = [];
  // The family of the first usable gateway in spec order; the CRD compares every gateway with spec.gateways[0].
  let first: { text: string; family: Family } | undefined;
  let mixed: string | undefined;
  for (const { path, value } of entries) {
    if (typeof value !== 'string') {
      problems.push(`${path}: must be a string`);
      continue;
    }
    const problem = gatewayProblem(value);
    if (problem) {
      problems.push(`${path}: gateway ${JSON.stringify(value)} ${problem}`);
      continue;
    }
    const canonical = canonicalAddress(value) as string;
    const earlier = seen.get(canonical);
    if (earlier) {
      problems.push(`${path}: duplicate of ${earlier} (${canonical})`);
      continue;
    }
    seen.set(canonical, path);
    const { family } = parseAddress(value) as { family: Family };
    if (!first) first = { text: value, family };
    else if (family !== first.family && mixed === undefined) mixed = value;
    gateways.push(canonical);
  }
  if (first && mixed !== undefined) {
    problems.push(
      `spec.gateways: gateway ${JSON.stringify(mixed)} is IPv${first.family === 4 ? 6 : 4} but gateway ` +
        `${JSON.stringify(first.text)} is IPv${first.family} (all gateways must be of one address family)`,
    );
    return { gateways: [] };
  }
  return { family: first?.family, gateways: sortAddresses(gateways) };
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
  const warnings: string[] = [];
  const { destinations: rawDestinations } = fields;
  const single = fields.gateway !== undefined && fields.gateway !== null;
  if (!Array.isArray(rawDestinations)) {
    problems.push('spec.destinations: must be a list of IP addresses or CIDRs');
  } else {
    if (rawDestinations.length === 0) problems.push('spec.destinations: must not be empty');
    if (rawDestinations.length > MAX_DESTINATIONS) {
      warnings.push(
        `spec.destinations: ${rawDestinations.length} destinations, more than the ${MAX_DESTINATIONS} the CRD admits ` +
          '(stored before the limit existed): all are applied; a change of the list must bring it to ' +
          `${MAX_DESTINATIONS} or fewer`,
      );
    }
    const seen = new Map<string, string>();
    rawDestinations.forEach((value: unknown, index) => {
      const path = `spec.destinations[${index}]`;
      if (typeof value !== 'string') {
        problems.push(`${path}: must be a string`);
        return;
      }
      const parsed = parseDestination(value);
      if ('problem' in parsed) {
        problems.push(`${path}: ${parsed.problem}`);
        return;
      }
      const { prefix } = parsed;
      if (gatewayFamily !== undefined && prefix.family !== gatewayFamily) {
        const [subject, owner] = single ? ['gateway is', "gateway's"] : ['gateways are', "gateways'"];
        problems.push(
          `${path}: destination ${JSON.stringify(value)} is IPv${prefix.family} but the ${subject} ` +
            `IPv${gatewayFamily} (every destination must be of the ${owner} address family)`,
        );
        return;
      }
      const canonical = formatPrefix(prefix);
      const earlier = seen.get(canonical);
      if (earlier) {
        problems.push(`${path}: duplicate of ${earlier} (${canonical})`);
        return;
      }
      seen.set(canonical, path);
      destinations.push(prefix);
    });
  }
  problems.push(...validateLabelSelector(fields.nodeSelector, 'spec.nodeSelector'));
  const gatewayHealth = parseGatewayHealth(fields.gatewayHealth, problems);

  if (problems.length > 0 || gatewayFamily === undefined) {
    return { ok: false, problems: problems.length > 0 ? problems : ['spec: no usable gateway'] };
  }
  const parsed: ParsedRouteSpec = { family: gatewayFamily, destinations, gateways, gatewayHealth };
  if (fields.nodeSelector) parsed.nodeSelector = fields.nodeSelector as LabelSelector;
  if (warnings.length > 0) parsed.warnings = warnings;
  return { ok: true, spec: parsed };
}

/** Whether `value` is one of `allowed`; else records the CRD's message for the field. */
function oneOf<T extends string>(value: unknown, allowed: readonly T[], path: string, problems: string[]): value is T {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return true;
  problems.push(`${path}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  return false;
}

/** `spec.gatewayHealth`: both fields optional; `whenAllDown` defaults to Keep (the seed's behaviour: routes stay). */
function parseGatewayHealth(value: unknown, problems: string[]): ParsedRouteSpec['gatewayHealth'] {
  const result: ParsedRouteSpec['gatewayHealth'] = { whenAllDown: 'Keep' };
  if (value === undefined || value === null) return result;
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push('spec.gatewayHealth: must be an object (check, whenAllDown)');
    return result;
  }
  const { check, whenAllDown } = value as Record<string, unknown>;
  if (oneOf(check, GATEWAY_HEALTH_CHECKS, 'spec.gatewayHealth.check', problems)) result.check = check;
  if (oneOf(whenAllDown, WHEN_ALL_DOWN, 'spec.gatewayHealth.whenAllDown', problems)) result.whenAllDown = whenAllDown;
  return result;
}

/**
 * Whether a node health-checks the gateways of a parsed spec: `spec.gatewayHealth.check` when set, else the node's
 * cluster default (`GATEWAY_HEALTH_CHECK`).
 */
export function gatewayHealthChecked(spec: Pick<ParsedRouteSpec, 'gatewayHealth'>, checkByDefault: boolean): boolean {
  const { check } = spec.gatewayHealth;
  return check === undefined ? checkByDefault : check === 'Enabled';
}
