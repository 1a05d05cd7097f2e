/**
 * The route plan: the ordered kernel operations that take the node's table from what it is to what it should be.
 *
 * Guarantees:
 * - All deletes come first, then replaces, then adds. A route via an old gateway is gone before any route via a new
 *   gateway appears, so the table never holds a mix of old and new next hops (on IPv6 an add next to an existing route
 *   with the same metric would even merge into one ECMP route).
 * - Routes that are already right are not touched (no flap).
 * - A single-path gateway change is delete-then-add. A change where either side is multipath (ECMP) is one
 *   `replace` (NLM_F_REPLACE): the kernel swaps the whole next-hop set atomically, so traffic never loses the route.
 * - Only routes carrying our protocol are deleted or replaced, plus routes the seed operator installed (protocol
 *   `static`) that match what an object asked for. Anything else occupying a destination blocks it: it is reported,
 *   never removed.
 */
import { sameAddresses, type Family } from './ip.js';
import type { DesiredRoute } from './desired.js';
import { SEED_ROUTE_PROTOCOL } from './migration.js';

/** A route as read from the kernel's main table. */
export interface KernelRoute {
  family: Family;
  /** Canonical destination prefix (`10.0.0.0/8`, `2001:db8::/32`). */
  destination: string;
  /** Canonical next hops, sorted; empty for routes without a gateway. */
  gateways: string[];
  /** `rtm_protocol`. */
  protocol: number;
  /** Route priority (metric). */
  metric: number;
  /** `rtm_type` (1 = unicast). */
  type: number;
}

const NONE: readonly KernelRoute[] = [];

/** `rtm_type` of an ordinary forwarding route. */
export const RTN_UNICAST = 1;

/** Metric the kernel gives a route added without one: 0 for IPv4, 1024 for IPv6. Our routes use it. */
export function defaultMetric(family: Family): number {
  return family === 4 ? 0 : 1024;
}

export type DeleteReason = 'not-desired' | 'gateway-changed' | 'duplicate' | 'seed-old-gateway';
export type ReplaceReason = 'multipath-changed' | 'adopt-seed';
export type AddReason = 'missing' | 'gateway-changed';

/** One kernel operation. */
export type RouteOperation =
  | { op: 'delete'; route: KernelRoute; reason: DeleteReason }
  | { op: 'replace'; route: DesiredRoute; previous: KernelRoute; reason: ReplaceReason }
  | { op: 'add'; route: DesiredRoute; reason: AddReason };

/** A desired route that cannot be installed because a route we do not own holds its destination. */
export interface BlockedRoute {
  route: DesiredRoute;
  by: KernelRoute;
}

export interface RoutePlan {
  /** Deletes, then replaces, then adds; each group ordered by destination. */
  operations: RouteOperation[];
  blocked: BlockedRoute[];
  /** Desired routes already correct in the kernel. */
  unchanged: number;
}

export interface PlanOptions {
  /** Our `rtm_protocol` number. */
  protocol: number;
}

function describeGateways(gateways: readonly string[]): string {
  return gateways.length === 0 ? 'no gateway' : `via ${gateways.join(', ')}`;
}

/** Human-readable description of a kernel route, for messages. */
export function describeKernelRoute(route: KernelRoute): string {
  return `${route.destination} ${describeGateways(route.gateways)} proto ${route.protocol} metric ${route.metric}`;
}

/**
 * Plans the operations that converge `current` (the kernel's main table, all protocols) to `desired`.
 */
export function planRouteChanges(
  desired: ReadonlyMap<string, DesiredRoute>,
  current: readonly KernelRoute[],
  options: PlanOptions,
): RoutePlan {
  const ours = new Map<string, KernelRoute[]>();
  const others = new Map<string, KernelRoute[]>();
  for (const route of current) {
    const bucket = route.protocol === options.protocol ? ours : others;
    const list = bucket.get(route.destination) ?? [];
    list.push(route);
    bucket.set(route.destination, list);
  }

  const deletes: Array<Extract<RouteOperation, { op: 'delete' }>> = [];
  const replaces: Array<Extract<RouteOperation, { op: 'replace' }>> = [];
  const adds: Array<Extract<RouteOperation, { op: 'add' }>> = [];
  const blocked: BlockedRoute[] = [];
  let unchanged = 0;

  for (const [key, list] of ours) {
    if (!desired.has(key)) for (const route of list) deletes.push({ op: 'delete', route, reason: 'not-desired' });
  }

  for (const route of desired.values()) {
    const metric = defaultMetric(route.destination.family);
    const mine = ours.get(route.key) ?? NONE;
    const exact = mine.find(
      (kernel) =>
        kernel.metric === metric && kernel.type === RTN_UNICAST && sameAddresses(kernel.gateways, route.gateways),
    );
    if (exact) {
      unchanged++;
      for (const extra of mine) if (extra !== exact) deletes.push({ op: 'delete', route: extra, reason: 'duplicate' });
      continue;
    }
    const inPlace = mine.find((kernel) => kernel.metric === metric && kernel.type === RTN_UNICAST);
    if (inPlace && (route.gateways.length > 1 || inPlace.gateways.length > 1)) {
      replaces.push({ op: 'replace', route, previous: inPlace, reason: 'multipath-changed' });
      for (const extra of mine)
        if (extra !== inPlace) deletes.push({ op: 'delete', route: extra, reason: 'duplicate' });
      continue;
    }
    for (const old of mine) deletes.push({ op: 'delete', route: old, reason: 'gateway-changed' });

    // Routes of other protocols holding the same destination at our metric would make an add fail (IPv4: EEXIST)
    // or merge into it (IPv6). Adopt them when the seed operator put them there for this object; else stand back.
    const sharing = others.get(route.key);
    const occupying = sharing ? sharing.filter((kernel) => kernel.metric === metric) : NONE;
    const seed = occupying.find(
      (kernel) => kernel.protocol === SEED_ROUTE_PROTOCOL && kernel.type === RTN_UNICAST && kernel.gateways.length > 0,
    );
    if (seed && occupying.length === 1 && sameAddresses(seed.gateways, route.gateways)) {
      replaces.push({ op: 'replace', route, previous: seed, reason: 'adopt-seed' });
      continue;
    }
    if (seed && occupying.length === 1 && route.seedGateways.some((old) => sameAddresses(old, seed.gateways))) {
      deletes.push({ op: 'delete', route: seed, reason: 'seed-old-gateway' });
      adds.push({ op: 'add', route, reason: 'gateway-changed' });
      continue;
    }
    if (occupying.length > 0) {
      blocked.push({ route, by: occupying[0] as KernelRoute });
      continue;
    }
    adds.push({ op: 'add', route, reason: mine.length > 0 ? 'gateway-changed' : 'missing' });
  }

  return { operations: [...sortByKey(deletes), ...sortByKey(replaces), ...sortByKey(adds)], blocked, unchanged };
}

/** Orders operations by destination text; keys are computed once (plans can hold 100,000 operations). */
function sortByKey<T extends RouteOperation>(operations: T[]): T[] {
  return operations
    .map((operation) => ({ operation, key: operationKey(operation) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((item) => item.operation);
}

/** The destination an operation is about. */
export function operationKey(operation: RouteOperation): string {
  return operation.op === 'delete' ? operation.route.destination : operation.route.key;
}
