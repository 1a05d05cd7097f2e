/** Types of the hostile-input generator (see hostile-routes.ts). */
import type { Random } from './random.js';

/** Kinds of bad input. */
export const HOSTILE_CATEGORIES = [
  'malformed-destination',
  'malformed-gateway',
  'host-bits',
  'default-route',
  'mixed-family',
  'loopback',
  'multicast',
  'link-local',
  'api-endpoint',
  'node-subnet',
  'too-many',
  'huge-name',
  'unknown-field',
  'wrong-type',
  'duplicate',
  'unreachable-gateway',
  'bad-selector',
  'user-status',
] as const;

export type HostileCategory = (typeof HOSTILE_CATEGORIES)[number];

/** What the generator needs to know about the cluster it attacks. */
export interface HostileTarget {
  /** An IPv4 gateway the nodes can reach. */
  gatewayV4: string;
  /** An IPv6 gateway the nodes can reach. */
  gatewayV6: string;
  /** The nodes' connected IPv4 subnet, e.g. `10.116.0.0/20`. */
  nodeSubnetV4: string;
  /** The nodes' connected IPv6 subnet, e.g. `fd00:116::/64`. */
  nodeSubnetV6: string;
  /** The nodes' own addresses. */
  nodeAddresses: string[];
  /** Node names (for status a user forges). */
  nodeNames: string[];
  /** The API server endpoint the nodes use, e.g. `10.116.0.1`. */
  apiServerAddress: string;
  apiServerAddressV6: string;
}

/** One hostile object. */
export interface HostileCase {
  /** Object name (invalid on purpose in some `huge-name` cases). */
  name: string;
  category: HostileCategory;
  /** What is wrong, for reports. */
  description: string;
  /** The field at fault: an admission error must name it (`spec.destinations`, `metadata.name`, ...). */
  field: string;
  /** The whole object, as sent to the API server. */
  manifest: Record<string, unknown>;
  /** Status a user writes through the status subresource once the object exists (`user-status`). */
  userStatus?: Record<string, unknown>;
}

/** Options of {@link generateHostileRoutes}. */
export interface HostileOptions {
  seed: number;
  /** At least this many cases (default 120). Every category appears at least once. */
  count?: number;
  /** Name prefix (default `fuzz`). */
  prefix?: string;
}

/** What a template produces (the object is built around it). */
export interface HostileDraft {
  description: string;
  field: string;
  spec?: unknown;
  /** Replaces the whole object when set (wrong top-level types, unknown top-level fields). */
  extra?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** Overrides the generated name. */
  name?: string;
  userStatus?: Record<string, unknown>;
}

/** Produces one case of a category. */
export type HostileTemplate = (random: Random, target: HostileTarget) => HostileDraft;
