/**
 * The operator's in-memory copy of the node's main routing table, so that one object's change is planned against the
 * few routes at its destinations without dumping the whole table.
 *
 * Kept current by: the full reconcile (each one replaces the view with a fresh dump), the outcomes of the operator's
 * own kernel operations (applied as soon as the kernel acknowledged them), and notifications of routes of other
 * protocols. Changes to our own routes made by someone else are drift: the route monitor schedules a full reconcile
 * for them, which re-reads the table. When the view is wrong anyway (a notification lost), the kernel says so: an add
 * fails with EEXIST, a delete finds nothing, and the caller re-reads the table.
 */
import { sameAddresses } from './ip.js';
import { defaultMetric, type KernelRoute, RTN_UNICAST, type RouteOperation } from './plan.js';

const NONE: readonly KernelRoute[] = [];

/** Routes of the main table by destination. */
export class RouteView {
  private readonly byDestination = new Map<string, KernelRoute[]>();
  /** One array per distinct next-hop set: 10,000 routes via one gateway share it. */
  private readonly gatewaySets = new Map<string, readonly string[]>();
  private count = 0;

  constructor(private readonly protocol: number) {}

  /** Routes in the view. */
  get size(): number {
    return this.count;
  }

  /** Replaces the whole view (after a dump). */
  replaceAll(routes: Iterable<KernelRoute>): void {
    this.byDestination.clear();
    this.gatewaySets.clear();
    this.count = 0;
    for (const route of routes) this.insert(route);
  }

  /** The routes at these destinations (every protocol). */
  routesAt(keys: Iterable<string>): KernelRoute[] {
    const result: KernelRoute[] = [];
    for (const key of keys) for (const route of this.byDestination.get(key) ?? NONE) result.push(route);
    return result;
  }

  /** Records an operation of ours that the kernel acknowledged (a delete that found nothing included). */
  applied(operation: RouteOperation): void {
    if (operation.op === 'delete') {
      this.remove(operation.route);
      return;
    }
    const { route } = operation;
    const metric = defaultMetric(route.destination.family);
    if (operation.op === 'replace') this.remove(operation.previous);
    this.insert({
      family: route.destination.family,
      destination: route.key,
      gateways: route.gateways,
      protocol: this.protocol,
      metric,
      type: RTN_UNICAST,
    });
  }

  /**
   * Records a kernel notification about a route of another protocol. Our own protocol's notifications are ignored:
   * ours are recorded from our operations, and a change of ours by someone else is drift, repaired by a full
   * reconcile that re-reads the table.
   */
  notified(kind: 'route-added' | 'route-deleted', route: KernelRoute): void {
    if (route.protocol === this.protocol) return;
    if (kind === 'route-deleted') this.remove(route);
    else this.insert(route);
  }

  /** Inserts `route`, replacing the route of the same protocol and metric at its destination (the kernel's identity). */
  private insert(route: KernelRoute): void {
    const stored: KernelRoute = {
      family: route.family,
      destination: route.destination,
      gateways: this.intern(route.gateways),
      protocol: route.protocol,
      metric: route.metric,
      type: route.type,
    };
    const list = this.byDestination.get(route.destination);
    if (!list) {
      this.byDestination.set(route.destination, [stored]);
      this.count++;
      return;
    }
    const index = list.findIndex((item) => item.protocol === route.protocol && item.metric === route.metric);
    if (index === -1) {
      list.push(stored);
      this.count++;
    } else list[index] = stored;
  }

  private remove(route: KernelRoute): void {
    const list = this.byDestination.get(route.destination);
    if (!list) return;
    // The same protocol and metric identify it; the next hops too when they are known to match.
    let index = list.findIndex(
      (item) =>
        item.protocol === route.protocol &&
        item.metric === route.metric &&
        sameAddresses(item.gateways, route.gateways),
    );
    if (index === -1)
      index = list.findIndex((item) => item.protocol === route.protocol && item.metric === route.metric);
    if (index === -1) return;
    list.splice(index, 1);
    this.count--;
    if (list.length === 0) this.byDestination.delete(route.destination);
  }

  private intern(gateways: readonly string[]): string[] {
    const key = gateways.join(',');
    let shared = this.gatewaySets.get(key);
    if (!shared) {
      shared = [...gateways];
      this.gatewaySets.set(key, shared);
    }
    return shared as string[];
  }
}
