/**
 * Which kernel notifications mean the table may have drifted from the desired routes, so that the reconcile loop
 * runs on real drift (a route deleted or replaced by hand, a link flap) and not on the echo of its own changes.
 */
import type { DesiredRoute } from './desired.js';
import { sameAddresses } from './ip.js';
import type { KernelRoute } from './plan.js';

/** A kernel notification, reduced to what matters here. */
export type TableChange =
  | { kind: 'route-added' | 'route-deleted'; route: KernelRoute }
  | { kind: 'link-changed' | 'address-changed' | 'overflow' };

/** What the drift check needs of each desired route (a full DesiredRoute fits): its next hops, by destination. */
export type WantedRoutes = ReadonlyMap<string, Pick<DesiredRoute, 'gateways'>>;

/**
 * True when `change` may leave the table different from `desired` (the routes of the latest reconcile; undefined
 * before the first one). Link and address changes always count: a link going down flushes its routes without one
 * notification per route, and addresses feed the safety rules. A lost notification (`overflow`) counts too.
 */
export function changeNeedsReconcile(
  change: TableChange,
  desired: WantedRoutes | undefined,
  protocol: number,
): boolean {
  if (change.kind !== 'route-added' && change.kind !== 'route-deleted') return true;
  if (!desired) return true;
  const { route } = change;
  const wanted = desired.get(route.destination);
  const ours = route.protocol === protocol;
  if (change.kind === 'route-deleted') {
    // Our own deletes remove routes nobody wants or routes via an old gateway: no drift. Losing the route we want is.
    // A foreign route leaving a wanted destination may unblock it.
    return wanted !== undefined && (!ours || sameAddresses(route.gateways, wanted.gateways));
  }
  // An added route is our own echo when it is exactly what we want; anything else on a wanted destination (a foreign
  // route, a replace by hand) or with our protocol where we want nothing is drift.
  if (ours) return wanted === undefined || !sameAddresses(route.gateways, wanted.gateways);
  return wanted !== undefined;
}
