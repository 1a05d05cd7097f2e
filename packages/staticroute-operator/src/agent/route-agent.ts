/**
 * The node-local route manager: keeps this node's routing table equal to what all StaticRoutes ask of it.
 *
 * Level-based: old state is whatever the kernel holds with our protocol, never a record of "what was installed
 * before", so a gateway edit, a restart, a lost event or a route deleted by hand all converge the same way (the seed's
 * issue #23 cannot happen). Two kinds of pass, never overlapping:
 * - Incremental, for a change of some objects (a watch event, a handler): plans only the destinations those objects
 *   claim or claimed, from every object claiming them (logic/claims.ts), against the agent's in-memory copy of the
 *   table (logic/route-view.ts). A watch event is applied at once: the routes do not wait for the framework's
 *   finalizer write and handler, which only confirm the outcome. Concurrent changes are batched into one pass.
 * - Full, the safety net: re-reads the addresses and the whole table (which refreshes the in-memory copy), computes the
 *   desired routes from every object, plans and applies the difference. It runs at start, periodically (after
 *   re-listing the StaticRoutes), on drift reported by the route monitor, on changes of this node's labels, and when
 *   the kernel contradicts the in-memory copy (EEXIST, a lost reply).
 *
 * Gateway health (ECMP): the gateways of the health-checked routes selected on this node are the prober's targets
 * (adapters/gateway-prober.ts; only those on connected subnets are probed). Every pass plans the routes through
 * `effectiveGateways` (logic/desired.ts): an Unreachable gateway leaves the multipath routes while another one is
 * usable. A change of a gateway's state re-plans, in an incremental pass, the objects that check that gateway.
 *
 * Outcomes go into this node's report (a `StaticRouteNodeStatus` named after the node, through opkit's coalescing
 * ReportWriter): the agent never writes a StaticRoute, holds no finalizer on one, and posts no Event; the aggregator
 * turns every node's report into each object's status and Events. This node's labels (for `nodeSelector`) come from
 * the framework's Nodes view, which in the agent watches this node only.
 */
import { ReportWriter, type KubeApi, type KubeObject, type Logger, type NodeCache, type NodeChange } from 'opkit';
import { compactAfterBursts, limitYoungGeneration } from 'opkit/heap';
import { affectedScope, ClaimIndex } from '../logic/claims.js';
import { computeDesiredState, type DesiredRoute, type DesiredState, type GatewayHealthView } from '../logic/desired.js';
import type { GatewayState } from '../logic/gateway-health.js';
import { changeNeedsReconcile, type TableChange } from '../logic/drift.js';
import type { OperatorConfig } from '../logic/config.js';
import { KOPF_LAST_HANDLED_ANNOTATION } from '../logic/migration.js';
import { ALLOW_COVERING_ANNOTATION } from '../logic/safety.js';
import {
  entryForDeletion,
  entryFromOutcome,
  gatewaysField,
  REPORT_ENTRIES_FIELD,
  REPORT_KIND,
  summarizeReport,
  type ReportEntry,
} from '../logic/report.js';
import { describeFailure, Outage, type OutageLog } from '../logic/outage.js';
import {
  defaultMetric,
  describeKernelRoute,
  operationKey,
  RTN_UNICAST,
  planRouteChanges,
  type KernelRoute,
  type RoutePlan,
} from '../logic/plan.js';
import { RouteView } from '../logic/route-view.js';
import { goneAfterList, isNewerVersion } from '../logic/resource-version.js';
import type { NodeAddress, SafetyPolicy } from '../logic/safety.js';
import { parseRouteSpec, type StaticRouteObject } from '../logic/spec.js';
import { formatPrefix, type Prefix } from '../logic/ip.js';
import { objectOutcome, type NodeOutcome } from '../logic/status.js';
import { RouteMonitor, type TableEvent } from '../adapters/route-monitor.js';
import { RouteTable, type OperationOutcome } from '../adapters/route-table.js';
import { probeVerdict, type AdapterEvent, type ProbeVerdict } from '../adapters/health.js';
import { countRoutes, type NodeRouteMetrics, type RouteCounts } from '../adapters/metrics.js';
import { GatewayProber } from '../adapters/gateway-prober.js';
import { ApiEndpointsWatch } from './api-endpoints-watch.js';
import { NODE_REPORTS, STATIC_ROUTES } from '../resources.js';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_VERSION } from '../logic/spec.js';

/** What one pass found and did. An incremental pass has outcomes for the objects it assessed only. */
export interface ReconcileResult {
  outcomes: Map<string, NodeOutcome>;
  /** Destinations of routes nobody wants any more that could not be removed (destination -> error). */
  undeleted: Map<string, string>;
  /** Kernel operations applied. */
  operations: number;
}

/** Options of {@link NodeRouteAgent.start}. */
export interface RouteAgentOptions {
  config: OperatorConfig;
  api: KubeApi;
  /** The agent's logger for its whole life (not a handler's). */
  logger: Logger;
  /** The framework's Nodes view (`ctx.nodes`); the agent waits for its first list before the first reconcile. */
  nodes: NodeCache;
  /** Minimum time between two writes of the node's report. Defaults to 1 s. */
  reportIntervalMs?: number;
  /** Heartbeat of the node's report (the aggregator tells silent agents by it). Defaults to 60 s. */
  reportHeartbeatMs?: number;
  /** Where routes, netlink errors, socket reopens and full passes are counted (adapters/metrics.ts). */
  metrics?: NodeRouteMetrics;
  /** Aborts the start (the startup handler's `ctx.signal`). */
  signal?: AbortSignal;
  /** Delay that batches bursts of kernel notifications into one reconcile. Defaults to 100 ms. */
  driftDebounceMs?: number;
  /** Probes the gateways of health-checked routes. Defaults to true; without it every gateway stays Unknown. */
  gatewayProbes?: boolean;
}

type Labels = Readonly<Record<string, string>>;

function sameLabels(a: Labels | undefined, b: Labels | undefined): boolean {
  const left = Object.entries(a ?? {});
  return left.length === Object.keys(b ?? {}).length && left.every(([key, value]) => b?.[key] === value);
}

const RECHECK_ERRORS = new Set(['EEXIST', 'UNKNOWN']);
/** Objects planned (a full pass counts as this many) that make a burst, after which the heap is compacted. */
const BURST_WORK = 200;

/** A caller waiting for the next pass. */
interface Waiter {
  resolve: (result: ReconcileResult) => void;
  reject: (error: unknown) => void;
}

/** What the kernel's answers to a plan mean. */
interface Absorbed {
  failures: Map<string, string>;
  undeleted: Map<string, string>;
  /** An add met an unexpected route or a reply was lost: only a re-read of the table says what is there. */
  recheck: boolean;
}

/** Changes whenever something that decides the object's routes changes; status writes leave it alone. */
function claimFingerprint(object: StaticRouteObject): string {
  const { uid, generation, deletionTimestamp, annotations } = object.metadata;
  const spec = generation === undefined ? JSON.stringify(object.spec) : String(generation);
  // The allowance annotation decides which destinations are safe; annotation edits do not bump the generation.
  return `${uid ?? ''}\n${spec}\n${deletionTimestamp ?? ''}\n${annotations?.[KOPF_LAST_HANDLED_ANNOTATION] ?? ''}\n${annotations?.[ALLOW_COVERING_ANNOTATION] ?? ''}`;
}

/** What a running LIST must know about the watch events that arrive meanwhile (they are newer than the list). */
interface Listing {
  upserted: Set<string>;
  forgotten: Set<string>;
}

export class NodeRouteAgent {
  /** The watch's copies (shared with the framework's cache: no second copy of any body is kept). */
  private readonly objects = new Map<string, StaticRouteObject>();
  private readonly claims = new ClaimIndex();
  private readonly view: RouteView;
  /** The node's addresses as of the last full pass (address changes trigger one). */
  private addresses: NodeAddress[] = [];
  private table: RouteTable;
  private monitor: RouteMonitor | undefined;
  /** Unsubscribes from the netlink adapters' events (logs, metrics). */
  private readonly unwatch: Array<() => void> = [];
  private unsubscribeNodes: (() => void) | undefined;
  /** The API server's real endpoints, kept off gateways like the configured addresses. */
  private readonly apiEndpoints: ApiEndpointsWatch;
  /** This node's report: its outcome for every StaticRoute, by name. */
  readonly report: ReportWriter<ReportEntry>;
  /**
   * Next hops of the desired routes by destination, as last planned (what the drift check compares notifications
   * with). Not the DesiredRoutes themselves: at 10,000 routes those hold ~2.5 MB that nothing else needs.
   */
  private readonly wanted = new Map<string, Pick<DesiredRoute, 'gateways'>>();
  /** One `{ gateways }` per next-hop array (each object's parsed spec has one, shared by its destinations). */
  private readonly wantedShapes = new WeakMap<readonly string[], Pick<DesiredRoute, 'gateways'>>();
  private planned = false;
  /** Changes not planned yet. */
  private dirtyKeys = new Set<string>();
  private dirtyObjects = new Set<string>();
  private incrementalWaiters: Waiter[] = [];
  private fullWaiters: Waiter[] = [];
  private pumping = false;
  private pumpScheduled = false;
  private listing: Listing | undefined;
  private readonly listOutage = new Outage();
  private driftTimer: ReturnType<typeof setTimeout> | undefined;
  /** Objects planned so far: what marks a burst for opkit's compactAfterBursts. */
  private work = 0;
  private stopCompaction: (() => void) | undefined;
  private periodicTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  /**
   * Set once the StaticRoutes were listed. Before that the view is incomplete, and a reconcile would remove the routes
   * of every object not seen yet: nothing may trigger one (e.g. the first Node list) until then.
   */
  private listed = false;
  /** Probes the gateways of health-checked routes (undefined: not opened, or failed to open). */
  private prober: GatewayProber | undefined;
  /** Configured gateways of each health-checked object selected here, and how many objects check each gateway. */
  private readonly checkedByObject = new Map<string, readonly string[]>();
  private readonly checkers = new Map<string, number>();
  private targetsChanged = false;
  /** Gateways listed in the report's `status.gateways` (removed ones are written as null once). */
  private readonly gatewaysListed = new Set<string>();
  /** Completed full reconciles (for logs and tests). */
  reconciles = 0;
  /** Completed incremental passes (for logs and tests). */
  incrementalPasses = 0;

  private constructor(private readonly options: RouteAgentOptions) {
    const { config, api, logger, nodes } = options;
    this.table = RouteTable.open({ protocol: config.routeProtocol });
    this.watchAdapter('channel', this.table);
    this.view = new RouteView(config.routeProtocol);
    this.apiEndpoints = new ApiEndpointsWatch(api, logger.child({ component: 'api-endpoints' }), () => {
      // A new endpoint may be captured by a route installed already: re-plan everything.
      if (this.listed) this.scheduleReconcile(0);
    });
    this.report = new ReportWriter<ReportEntry>({
      api,
      resource: NODE_REPORTS,
      name: config.nodeName,
      entriesField: REPORT_ENTRIES_FIELD,
      summarize: (entries) => ({
        summary: summarizeReport(entries),
        gatewayHealthCheck: config.gatewayHealthCheck ? 'Enabled' : 'Disabled',
        gateways: gatewaysField(this.prober?.snapshot() ?? new Map(), this.gatewaysListed),
      }),
      minIntervalMs: options.reportIntervalMs ?? 1_000,
      heartbeatMs: options.reportHeartbeatMs ?? 60_000,
      logger: logger.child({ component: 'report' }),
      template: () => {
        const node = nodes.own();
        return {
          apiVersion: `${STATIC_ROUTE_GROUP}/${STATIC_ROUTE_VERSION}`,
          kind: REPORT_KIND,
          metadata: {
            // Garbage-collected with its Node.
            ...(node
              ? {
                  ownerReferences: [
                    { apiVersion: 'v1', kind: 'Node', name: node.metadata.name, uid: node.metadata.uid },
                  ],
                }
              : {}),
          },
        };
      },
    });
  }

  /**
   * Waits for the Nodes, lists the StaticRoutes, subscribes to kernel notifications and converges the table once.
   * Rejects (and cleans up) when the API or the kernel cannot be reached, or `signal` aborts.
   */
  static async start(options: RouteAgentOptions): Promise<NodeRouteAgent> {
    limitYoungGeneration();
    const agent = new NodeRouteAgent(options);
    try {
      const { nodes, config, logger } = options;
      agent.unsubscribeNodes = nodes.onChange((change) => agent.onNodeChange(change));
      await Promise.all([nodes.whenSynced(options.signal), agent.apiEndpoints.start()]);
      if (!nodes.own()) {
        logger.warn(
          { node: config.nodeName },
          'no Node object with this name: nodeSelectors see no labels on this node',
        );
      }
      await agent.relistObjects();
      agent.listed = true;
      // After the list: the first write removes entries of objects deleted while the agent was away.
      agent.report.start();
      // With our protocol, a link matters to the monitor only if it carries an address or one of our routes.
      agent.monitor = RouteMonitor.start((event) => agent.onTableEvent(event), { protocol: config.routeProtocol });
      agent.watchAdapter('monitor', agent.monitor);
      if (options.gatewayProbes ?? true) await agent.openProber();
      await agent.reconcile();
      // After a burst (a full pass, a few hundred objects planned) and a quiet second: one memory-reducing collection,
      // so that the process gives back what the burst made the heap grow to.
      agent.stopCompaction = compactAfterBursts({
        requests: () => agent.work,
        burst: BURST_WORK,
        quietMs: 1_000,
        onCompacted: (durationMs) => logger.debug({ durationMs }, 'heap compacted after a burst'),
      });
      agent.periodicTimer = setInterval(() => void agent.periodicPass(), options.config.reconcileIntervalMs);
      agent.periodicTimer.unref();
      return agent;
    } catch (error) {
      await agent.stop();
      throw error;
    }
  }

  /**
   * Records the latest version of an object from a watch event, and plans its routes at once when what decides them
   * changed (spec, deletion, seed annotation). An older copy than the one known is ignored.
   */
  upsert(object: KubeObject): void {
    this.remember(object as unknown as StaticRouteObject, false);
  }

  /** Forgets a deleted object and removes at once any route only it wanted. */
  forget(name: string): void {
    this.listing?.forgotten.add(name);
    this.objects.delete(name);
    this.report.delete(name);
    this.setChecked(name, undefined);
    this.applyTargets();
    const keys = this.claims.delete(name);
    if (keys.length === 0) return;
    for (const key of keys) this.dirtyKeys.add(key);
    this.schedulePump();
  }

  /**
   * A handler's request: records `object` (unless a newer copy is known) and resolves with the outcome of a pass that
   * started after this call and planned every destination of the object, and of every object contesting them.
   */
  settle(object: KubeObject): Promise<ReconcileResult> {
    const route = object as unknown as StaticRouteObject;
    this.remember(route, true);
    const name = route.metadata.name;
    this.dirtyObjects.add(name);
    for (const key of this.claims.keysOf(name)) this.dirtyKeys.add(key);
    return this.request(this.incrementalWaiters);
  }

  /** A full reconcile, now or right after the pass in progress. Resolves with a result computed after this call. */
  reconcile(): Promise<ReconcileResult> {
    return this.request(this.fullWaiters);
  }

  private remember(object: StaticRouteObject, preferKnown: boolean): void {
    const name = object.metadata.name;
    const known = this.objects.get(name);
    if (known && known.metadata.uid === object.metadata.uid) {
      const newer = isNewerVersion(object.metadata.resourceVersion, known.metadata.resourceVersion);
      const older = isNewerVersion(known.metadata.resourceVersion, object.metadata.resourceVersion);
      // A handler's copy (often the framework's write response) equal to the watch's: keep the watch's, which the
      // framework's cache holds anyway. An older copy never replaces a newer one.
      if (older || (preferKnown && !newer)) return;
    }
    this.listing?.upserted.add(name);
    this.objects.set(name, object);
    const changed = this.claims.set(name, claimFingerprint(object), () => NodeRouteAgent.destinationsOf(object));
    if (!changed) return;
    for (const key of changed) this.dirtyKeys.add(key);
    this.dirtyObjects.add(name);
    this.schedulePump();
  }

  private request(queue: Waiter[]): Promise<ReconcileResult> {
    if (this.stopped) return Promise.reject(new Error('the route agent is stopped'));
    if (!this.listed) return Promise.reject(new Error('the route agent has not listed the StaticRoutes yet'));
    return new Promise<ReconcileResult>((resolve, reject) => {
      queue.push({ resolve, reject });
      this.schedulePump();
    });
  }

  /** Runs the pending work soon: after the current tick, so that a burst of events makes one pass. */
  private schedulePump(): void {
    if (!this.listed || this.stopped || this.pumping || this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  /** One pass after the other until nothing is pending; a full pass serves the incremental requests too. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.stopped) {
          const error = new Error('the route agent is stopped');
          for (const waiter of [...this.fullWaiters.splice(0), ...this.incrementalWaiters.splice(0)]) {
            waiter.reject(error);
          }
          return;
        }
        if (this.fullWaiters.length > 0) {
          const waiters = [...this.fullWaiters.splice(0), ...this.incrementalWaiters.splice(0)];
          this.dirtyKeys = new Set();
          this.dirtyObjects = new Set();
          await this.run(waiters, () => this.fullPass());
        } else if (this.dirtyKeys.size > 0 || this.dirtyObjects.size > 0 || this.incrementalWaiters.length > 0) {
          const waiters = this.incrementalWaiters.splice(0);
          const keys = this.dirtyKeys;
          const names = this.dirtyObjects;
          this.dirtyKeys = new Set();
          this.dirtyObjects = new Set();
          await this.run(waiters, () => this.incrementalPass(keys, names));
        } else {
          return;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async run(waiters: Waiter[], pass: () => Promise<ReconcileResult>): Promise<void> {
    try {
      const result = await pass();
      for (const waiter of waiters) waiter.resolve(result);
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
      // Nobody waits for a pass started by a watch event; the full pass repairs whatever it left undone.
      if (waiters.length === 0) {
        this.options.logger.warn({ error: describeFailure(error) }, 'applying a change failed; reconciling fully');
      }
      this.scheduleReconcile(this.options.driftDebounceMs ?? 100);
    }
  }

  private scheduleReconcile(delayMs: number): void {
    if (this.stopped || !this.listed || this.driftTimer) return;
    this.driftTimer = setTimeout(() => {
      this.driftTimer = undefined;
      this.reconcile().catch((error: unknown) =>
        this.options.logger.warn({ error: describeFailure(error) }, 'reconcile failed'),
      );
    }, delayMs);
    this.driftTimer.unref();
  }

  private onTableEvent(event: TableEvent): void {
    if (event.kind === 'route-added' || event.kind === 'route-deleted') this.view.notified(event.kind, event.route);
    const change: TableChange = event.kind === 'overflow' ? { kind: 'overflow' } : event;
    if (!changeNeedsReconcile(change, this.planned ? this.wanted : undefined, this.options.config.routeProtocol)) {
      return;
    }
    this.options.logger.debug({ change: event.kind }, 'routing table changed: reconciling');
    this.scheduleReconcile(this.options.driftDebounceMs ?? 100);
  }

  private onNodeChange(change: NodeChange): void {
    if (change.type === 'synced') return;
    // Nodes are updated often (heartbeats, conditions); only their labels, arrival and departure matter here.
    const unchanged =
      change.type === 'upsert' &&
      change.previous !== undefined &&
      sameLabels(change.previous.metadata.labels, change.node.metadata.labels);
    if (!unchanged && change.own) this.scheduleReconcile(0);
  }

  /**
   * Lists the StaticRoutes and merges them into the watch-fed view: the list catches up with events the watch may
   * have missed. A copy at the version already known is dropped (the known one is shared with the framework's
   * cache), and what the watch reported while the list ran is newer than the list and kept.
   *
   * The list is served from the API server's watch cache (`resourceVersion=0`), not read from etcd: every node lists
   * every StaticRoute each period, which as quorum reads was the largest read load on etcd and the API server at 20
   * nodes and 2,000 objects. Such a list can be behind the watch; older copies never replace newer ones, and objects
   * known at a newer version than the list are not taken as deleted (`goneAfterList`).
   */
  private async relistObjects(): Promise<void> {
    const listing: Listing = { upserted: new Set(), forgotten: new Set() };
    this.listing = listing;
    try {
      const list = await this.options.api.list<KubeObject>(STATIC_ROUTES, { resourceVersion: '0' });
      const names = new Set<string>();
      for (const item of list.items) {
        const object = item as unknown as StaticRouteObject;
        const { name } = object.metadata;
        names.add(name);
        if (listing.upserted.has(name)) continue;
        // Deleted while the list ran (a namesake created meanwhile comes with its own watch event).
        if (listing.forgotten.has(name)) continue;
        this.remember(object, true);
      }
      const known = new Map([...this.objects].map(([name, object]) => [name, object.metadata.resourceVersion]));
      for (const name of goneAfterList(known, names, list.metadata?.resourceVersion, listing.upserted)) {
        this.forget(name);
      }
    } finally {
      if (this.listing === listing) this.listing = undefined;
    }
  }

  /**
   * The safety net: re-list, then a full reconcile. A failed (or timed-out) LIST does not skip the reconcile: the
   * watch-fed view is still there. Failures of the LIST are logged once per outage.
   */
  private async periodicPass(): Promise<void> {
    await this.apiEndpoints.resolveServer();
    try {
      await this.relistObjects();
      this.logListOutage(this.listOutage.succeeded(Date.now()));
    } catch (error) {
      const log = this.listOutage.failed(describeFailure(error), Date.now());
      if (log) this.logListOutage(log);
      else this.options.logger.debug({ error: describeFailure(error) }, 'cannot list StaticRoutes (still)');
    }
    try {
      await this.reconcile();
    } catch (error) {
      this.options.logger.warn({ error: describeFailure(error) }, 'periodic reconcile failed');
    }
  }

  private logListOutage(log: OutageLog | undefined): void {
    if (!log) return;
    if (log.kind === 'began') {
      this.options.logger.warn(
        { error: log.error },
        'cannot list StaticRoutes: reconciling from the watched objects until the list works again',
      );
    } else {
      this.options.logger.info(
        { failures: log.failures, durationMs: log.durationMs, lastError: log.lastError },
        'listing StaticRoutes works again',
      );
    }
  }

  private policy(nodeAddresses: SafetyPolicy['nodeAddresses']): SafetyPolicy {
    const { config } = this.options;
    return {
      nodeAddresses,
      apiServerAddresses: [...config.apiServerAddresses, ...this.apiEndpoints.addresses],
      protectedCidrs: config.protectedCidrs,
      allowDefaultRoute: config.allowDefaultRoute,
      allowCoveringCidrs: config.allowCoveringCidrs,
    };
  }

  /** What the desired-state computation sees of gateway health: the prober's verdicts and the installed next hops. */
  private healthView(): GatewayHealthView {
    const protocol = this.options.config.routeProtocol;
    return {
      checkByDefault: this.options.config.gatewayHealthCheck,
      stateOf: (gateway) => this.prober?.state(gateway) ?? 'Unknown',
      installed: (key) => {
        const route = this.view
          .routesAt([key])
          .find(
            (item) =>
              item.protocol === protocol && item.type === RTN_UNICAST && item.metric === defaultMetric(item.family),
          );
        return route && route.gateways.length > 0 ? route.gateways : undefined;
      },
    };
  }

  /**
   * Opens the prober. Without it (e.g. no raw socket allowed) routes are planned as before, every gateway Unknown:
   * health checking is lost, never routing.
   */
  private async openProber(): Promise<void> {
    const { logger, metrics } = this.options;
    try {
      this.prober = await GatewayProber.open({
        logger: logger.child({ component: 'gateway-prober' }),
        onChange: (gateway, state, reason) => this.onGatewayChange(gateway, state, reason),
      });
      const prober = this.prober;
      metrics?.probeStats(() => prober.stats());
    } catch (error) {
      logger.warn(
        { error: describeFailure(error) },
        'cannot probe gateways: unreachable gateways will not be withdrawn from ECMP routes',
      );
    }
  }

  /** A gateway changed state: re-plans, at once and incrementally, every object that checks it. */
  private onGatewayChange(gateway: string, state: GatewayState, reason: string): void {
    const { logger, metrics } = this.options;
    metrics?.gatewayState(gateway, state, true);
    const affected: string[] = [];
    for (const [name, gateways] of this.checkedByObject) if (gateways.includes(gateway)) affected.push(name);
    const log = state === 'Unreachable' ? logger.warn.bind(logger) : logger.info.bind(logger);
    log({ gateway, state, reason, staticRoutes: affected.length }, `gateway ${gateway} is ${state}`);
    // status.gateways shows every transition, also one that changes no entry (Unknown -> Reachable at start).
    this.report.refreshSummary();
    if (affected.length === 0 || this.stopped) return;
    for (const name of affected) {
      this.dirtyObjects.add(name);
      for (const key of this.claims.keysOf(name)) this.dirtyKeys.add(key);
    }
    this.schedulePump();
  }

  /** Records which gateways `name` checks on this node (undefined: none), keeping the per-gateway counts. */
  private setChecked(name: string, gateways: readonly string[] | undefined): void {
    const previous = this.checkedByObject.get(name);
    if (previous === gateways) return;
    for (const gateway of previous ?? []) {
      const count = (this.checkers.get(gateway) ?? 0) - 1;
      if (count <= 0) {
        this.checkers.delete(gateway);
        this.targetsChanged = true;
      } else this.checkers.set(gateway, count);
    }
    for (const gateway of gateways ?? []) {
      const count = this.checkers.get(gateway) ?? 0;
      if (count === 0) this.targetsChanged = true;
      this.checkers.set(gateway, count + 1);
    }
    if (gateways && gateways.length > 0) this.checkedByObject.set(name, gateways);
    else this.checkedByObject.delete(name);
  }

  /** Records the checked gateways of the assessed objects and hands the prober its new targets, if they changed. */
  private recordChecked(state: DesiredState, names: Iterable<string>): void {
    for (const name of names) this.setChecked(name, state.assessments.get(name)?.checkedGateways);
    this.applyTargets();
  }

  private applyTargets(): void {
    if (!this.targetsChanged) return;
    this.targetsChanged = false;
    if (!this.prober) return;
    const before = new Set(this.prober.snapshot().keys());
    this.prober.setTargets(this.checkers.keys());
    this.report.refreshSummary();
    for (const gateway of before) if (!this.checkers.has(gateway)) this.options.metrics?.gatewayForgotten(gateway);
  }

  private nodeView(): { name: string; labels: Labels } {
    const { config, nodes } = this.options;
    return { name: config.nodeName, labels: nodes.own()?.metadata.labels ?? {} };
  }

  /** Records what the kernel said about each operation, and what it means for the destinations. */
  private absorb(applied: OperationOutcome[], plan: RoutePlan, desired: ReadonlyMap<string, DesiredRoute>): Absorbed {
    const failures = new Map<string, string>();
    const undeleted = new Map<string, string>();
    let recheck = false;
    for (const outcome of applied) {
      if (outcome.ok) {
        this.view.applied(outcome.operation);
        continue;
      }
      const key = operationKey(outcome.operation);
      if (RECHECK_ERRORS.has(outcome.errno)) recheck = true;
      if (outcome.operation.op === 'delete' && !desired.has(key)) undeleted.set(key, outcome.error);
      else if (!failures.has(key)) failures.set(key, outcome.error);
    }
    for (const { route, by } of plan.blocked) {
      failures.set(route.key, `a route the operator does not manage holds the destination: ${describeKernelRoute(by)}`);
    }
    return { failures, undeleted, recheck };
  }

  /**
   * Plans the destinations the changed objects claim or claimed, from every object claiming them, against the
   * in-memory table. Falls back to a full pass when the kernel contradicts the in-memory table.
   */
  private async incrementalPass(keys: ReadonlySet<string>, names: ReadonlySet<string>): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    const scope = affectedScope(this.claims, keys, names);
    const objects: StaticRouteObject[] = [];
    for (const name of scope.objects) {
      const object = this.objects.get(name);
      if (object) objects.push(object);
    }
    const state = computeDesiredState(objects, this.nodeView(), this.policy(this.addresses), this.healthView());
    this.recordChecked(state, scope.assessed);
    const desired = new Map<string, DesiredRoute>();
    for (const key of scope.keys) {
      const route = state.routes.get(key);
      if (route) desired.set(key, route);
    }
    // Before the kernel is touched: the echo of our own changes must not look like drift.
    for (const key of scope.keys) {
      const route = desired.get(key);
      if (route) this.want(key, route);
      else this.wanted.delete(key);
    }
    const plan = planRouteChanges(desired, this.view.routesAt(scope.keys), { protocol: config.routeProtocol });
    const applied = await this.table.apply(plan.operations);
    const { failures, undeleted, recheck } = this.absorb(applied, plan, desired);
    if (recheck) {
      logger.debug('the kernel contradicts the in-memory table: reconciling fully');
      return this.fullPass();
    }
    this.incrementalPasses++;
    this.work += scope.assessed.size;
    if (plan.operations.length > 0) {
      logger.debug(
        { operations: plan.operations.length, failed: failures.size + undeleted.size, objects: scope.assessed.size },
        'routes applied',
      );
    }
    const outcomes = this.outcomesOf(state, scope.assessed, failures);
    this.reportOutcomes(
      [...scope.assessed].flatMap((name) => this.objects.get(name) ?? []),
      outcomes,
      undeleted,
    );
    return { outcomes, undeleted, operations: plan.operations.length };
  }

  private want(key: string, route: DesiredRoute): void {
    let shape = this.wantedShapes.get(route.gateways);
    if (!shape) {
      shape = { gateways: route.gateways };
      this.wantedShapes.set(route.gateways, shape);
    }
    this.wanted.set(key, shape);
  }

  private outcomesOf(
    state: DesiredState,
    names: Iterable<string>,
    failures: ReadonlyMap<string, string>,
  ): Map<string, NodeOutcome> {
    const outcomes = new Map<string, NodeOutcome>();
    for (const name of names) {
      const assessment = state.assessments.get(name);
      if (assessment) outcomes.set(name, objectOutcome(assessment, failures));
    }
    return outcomes;
  }

  /** Reads the addresses and the whole table, and converges it to every object's routes. */
  private async fullPass(): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    const objects = [...this.objects.values()];
    const node = this.nodeView();
    let result: ReconcileResult | undefined;
    let counts: RouteCounts | undefined;
    // A second pass re-reads the table when an add met an unexpected route (EEXIST) or a reply was lost: the kernel
    // then says whether the route we meant is there (nothing left to do) or a foreign one holds the destination.
    for (let pass = 0; pass < 2; pass++) {
      this.addresses = await this.table.listAddresses();
      // The table first: a route whose gateways are all Unreachable keeps the next hops it has (effectiveGateways).
      let current: KernelRoute[] | undefined = await this.table.listRoutes();
      this.view.replaceAll(current);
      const state = computeDesiredState(objects, node, this.policy(this.addresses), this.healthView());
      this.recordChecked(state, [...state.assessments.keys(), ...this.checkedByObject.keys()]);
      this.wanted.clear();
      for (const [key, route] of state.routes) this.want(key, route);
      this.planned = true;
      const plan = planRouteChanges(state.routes, current, { protocol: config.routeProtocol });
      current = undefined;
      const applied = await this.table.apply(plan.operations);
      const { failures, undeleted, recheck } = this.absorb(applied, plan, state.routes);
      counts = countRoutes(state, failures, undeleted);
      result = {
        outcomes: this.outcomesOf(state, state.assessments.keys(), failures),
        undeleted,
        operations: plan.operations.length,
      };
      if (plan.operations.length > 0) {
        logger.info(
          { operations: plan.operations.length, failed: failures.size + undeleted.size, unchanged: plan.unchanged },
          'routing table reconciled',
        );
      }
      if (!recheck) break;
    }
    this.reconciles++;
    if (counts) this.options.metrics?.fullPassSucceeded(counts);
    this.work += BURST_WORK;
    this.reportOutcomes(objects, (result as ReconcileResult).outcomes, (result as ReconcileResult).undeleted);
    return result as ReconcileResult;
  }

  /**
   * Puts the outcomes into this node's report (written coalesced; nothing waits for it). An object being deleted is
   * reported `Removed` once none of its destinations is left to remove, which is what the aggregator releases its
   * finalizer on.
   */
  private reportOutcomes(
    objects: StaticRouteObject[],
    outcomes: Map<string, NodeOutcome>,
    undeleted: ReadonlyMap<string, string>,
  ): void {
    for (const object of objects) {
      const { name, uid, generation, deletionTimestamp } = object.metadata;
      if (deletionTimestamp) {
        const stuck = new Map(
          NodeRouteAgent.destinationsOf(object).flatMap((destination) => {
            const error = undeleted.get(destination);
            return error === undefined ? [] : [[destination, error] as const];
          }),
        );
        this.report.set(name, entryForDeletion(uid ?? '', generation, stuck));
        continue;
      }
      const outcome = outcomes.get(name);
      if (outcome) this.report.set(name, entryFromOutcome(uid ?? '', generation, outcome));
    }
  }

  /**
   * Whether this node can program routes (the route channel's socket is open) and sees drift (the monitor's is), for
   * `/readyz`; and whether one of them has been down for longer than a restart would take to fix, for `/healthz`.
   */
  kernelProbe(now = Date.now()): ProbeVerdict {
    return probeVerdict({ channel: this.table.health, monitor: this.monitor?.health }, now);
  }

  /** Logs the adapter's failures and recoveries, counts its events, and re-plans after the channel came back. */
  private watchAdapter(component: 'channel' | 'monitor', adapter: RouteTable | RouteMonitor): void {
    const { logger, metrics } = this.options;
    if (metrics) this.unwatch.push(metrics.watch(component, adapter));
    this.unwatch.push(
      adapter.subscribe((event: AdapterEvent) => {
        if (event.type !== 'health') return;
        if (!event.health.healthy) {
          logger.warn(
            { component, error: event.health.lastError },
            'netlink socket failed: reopening it (this node cannot program routes or see drift meanwhile)',
          );
          return;
        }
        logger.info({ component, reopens: event.health.reopens }, 'netlink socket reopened');
        // Replies lost with the old socket have unknown outcomes: the kernel says what is there now. (The monitor
        // asks for that itself, with an overflow event.)
        if (component === 'channel') this.scheduleReconcile(0);
      }),
    );
  }

  /** Destinations of `object` (normalized), empty when its spec is invalid. */
  static destinationsOf(object: KubeObject | StaticRouteObject): string[] {
    const parsed = parseRouteSpec(object.spec);
    return parsed.ok ? parsed.spec.destinations.map((prefix: Prefix) => formatPrefix(prefix)) : [];
  }

  /** Stops timers and notifications; waits for the report to be written (at most 5 s). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.driftTimer);
    this.stopCompaction?.();
    clearInterval(this.periodicTimer);
    for (const unwatch of this.unwatch.splice(0)) unwatch();
    this.monitor?.stop();
    this.unsubscribeNodes?.();
    this.options.metrics?.probeStats(undefined);
    await this.prober?.close().catch(() => undefined);
    await this.apiEndpoints.stop();
    const error = new Error('the route agent is stopped');
    for (const waiter of [...this.fullWaiters.splice(0), ...this.incrementalWaiters.splice(0)]) waiter.reject(error);
    while (this.pumping) await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.race([this.report.flush(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.report.stop();
    this.table.close();
  }
}
