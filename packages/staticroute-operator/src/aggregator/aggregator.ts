/**
 * The aggregator: the one writer of StaticRoutes. It watches StaticRoutes, Nodes (labels only) and the node reports
 * (a constant number of watches, whatever the node count), and for each StaticRoute writes the status summary, holds
 * the finalizer that keeps a deleted object until every node removed its routes, and posts one Event per transition.
 * It runs as a Deployment of two replicas; one is active (leader election), the other waits.
 *
 * Writes per changed StaticRoute, whatever the node count: the finalizer once when it is first seen, one status write
 * per settled change (a change's reports are awaited for a short settling delay, so the intermediate "0/N" is not
 * written when the nodes answer quickly), and the finalizer release. The decisions are pure (logic/aggregate.ts).
 */
import {
  ApiError,
  Reconciler,
  sameJson,
  type EventPublisher,
  type KubeApi,
  type KubeObject,
  type Logger,
  type OperatorMetrics,
  type ReconcileContext,
  type ReconcileResult,
  type SourceChange,
} from 'opkit';
import {
  aggregate,
  AGGREGATOR_FINALIZER,
  gatewayTransition,
  type AggregateDecision,
  type NodeReportView,
} from '../logic/aggregate.js';
import type { NodeReport, ReportEntry } from '../logic/report.js';
import { isNewerVersion } from '../logic/resource-version.js';
import type { StaticRouteObject } from '../logic/spec.js';
import type { StatusCondition } from '../logic/status.js';
import { NODE_REPORTS, NODES, STATIC_ROUTES } from '../resources.js';
import { UninstallGuard } from './uninstall-guard.js';

/** A change whose nodes keep reporting waits at most this many settling delays before a partial status is written. */
const SETTLE_CAP_FACTOR = 5;

/** Tuning of the aggregator (documented in docs/operator-guide.md). */
export interface AggregatorSettings {
  /** A node whose report is older than this counts as silent. Defaults to 3 heartbeats (180 s). */
  silentAfterMs?: number;
  /** A deletion waits this long for silent nodes, then is released with a Warning. Defaults to 120 s. */
  deletionGraceMs?: number;
  /** How long a change waits for the nodes' reports before a partial status is written. Defaults to 2 s. */
  settleMs?: number;
  /** StaticRoutes handled in parallel. Defaults to 8. */
  concurrency?: number;
}

/** What the aggregator needs from the runtime when it starts. */
export interface AggregatorStartContext {
  api: KubeApi;
  logger: Logger;
  events: EventPublisher;
  /** The runtime's metrics: the aggregator's watch restarts count in `opkit_watch_restarts_total`. */
  metrics?: Pick<OperatorMetrics, 'watchRestarts'>;
}

/** Nodes as the aggregator caches them: identity and labels only (a Node's heartbeats then trigger nothing). */
function nodeLabelsOnly(node: KubeObject): KubeObject {
  // The identity the watcher checks (generation, finalizers, deletion) stays; so does what decides selection: labels.
  const { name, uid, resourceVersion, generation, finalizers, labels, deletionTimestamp } = node.metadata;
  return {
    metadata: {
      name,
      uid,
      resourceVersion,
      ...(generation !== undefined ? { generation } : {}),
      ...(finalizers ? { finalizers } : {}),
      ...(labels ? { labels } : {}),
      ...(deletionTimestamp ? { deletionTimestamp } : {}),
    },
  };
}

function entriesOf(report: KubeObject | undefined): Record<string, ReportEntry | null> {
  return ((report as NodeReport | undefined)?.status?.staticRoutes ?? {}) as Record<string, ReportEntry | null>;
}

/** StaticRoutes whose entry differs between two copies of a report. */
function changedEntries(change: SourceChange): string[] {
  const before = change.type === 'upsert' ? entriesOf(change.previous) : {};
  const after = change.type === 'upsert' ? entriesOf(change.object) : {};
  if (change.type === 'delete') return Object.keys(entriesOf(change.object));
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((name) => !sameJson(before[name], after[name]));
}

/** The status fields the aggregator owns, as stored. */
function storedStatus(object: StaticRouteObject): Record<string, unknown> {
  const { ready, observedGeneration, conditions, notReady, unreachableGateways } = (object.status ?? {}) as Record<
    string,
    unknown
  >;
  return { ready, observedGeneration, conditions, notReady: notReady ?? [], unreachableGateways };
}

function findCondition(conditions: unknown, type: StatusCondition['type']): StatusCondition | undefined {
  return Array.isArray(conditions) ? (conditions as StatusCondition[]).find((item) => item.type === type) : undefined;
}

function readyCondition(conditions: unknown): StatusCondition | undefined {
  return findCondition(conditions, 'Ready');
}

export class Aggregator {
  readonly name = 'staticroute-aggregator';
  private readonly reconciler: Reconciler;
  private events: EventPublisher | undefined;
  private metrics: AggregatorStartContext['metrics'];
  private guard: UninstallGuard | undefined;
  private readonly silentAfterMs: number;
  private readonly deletionGraceMs: number;
  private readonly settleMs: number;
  /** Objects (by name) with a Warning posted and no recovery since: their return to Ready gets a Normal Event. */
  private readonly warned = new Set<string>();
  /** The copies returned by this aggregator's own writes, until the watch delivers them (see `freshest`). */
  private readonly written = new Map<string, StaticRouteObject>();
  /**
   * Per change (uid, generation, deletion): when it was first seen, when the count of nodes yet to report it last
   * moved, and that count. The settling delay counts from there.
   */
  private readonly firstSeen = new Map<string, { seenAt: number; progressAt: number; waiting: number }>();
  /** StaticRoute writes (for tests and logs). */
  writes = 0;

  constructor(settings: AggregatorSettings = {}) {
    this.silentAfterMs = settings.silentAfterMs ?? 180_000;
    this.deletionGraceMs = settings.deletionGraceMs ?? 120_000;
    this.settleMs = settings.settleMs ?? 2_000;
    this.reconciler = new Reconciler({
      name: 'staticroute-aggregator',
      primary: { resource: STATIC_ROUTES },
      secondary: {
        nodes: {
          resource: NODES,
          transform: nodeLabelsOnly as never,
          // A Node's arrival, departure or label change can change every object's selected nodes.
          map: (_change, view) => view.primary.keys(),
        },
        reports: { resource: NODE_REPORTS, map: changedEntries },
      },
      concurrency: settings.concurrency ?? 8,
      // A level-based safety net: grace periods, and anything a lost event left behind.
      resyncMs: 10 * 60_000,
      reconcile: (key, context) => this.reconcile(key, context),
      onWatchRestart: (source, reason) =>
        this.metrics?.watchRestarts.inc({ resource: source === 'primary' ? 'staticroutes' : source, reason }),
    });
  }

  async start(context: AggregatorStartContext): Promise<void> {
    this.events = context.events;
    this.metrics = context.metrics;
    const logger = context.logger.child({ component: 'aggregator' });
    this.reconciler.start({ api: context.api, logger });
    this.guard = new UninstallGuard({
      api: context.api,
      logger: logger.child({ component: 'uninstall' }),
      staticRoutesLeft: () => (this.reconciler.isReady() ? this.reconciler.primary.size : Number.POSITIVE_INFINITY),
    });
    await this.guard.start();
  }

  /** Stops; during an uninstall, lets it complete first (bounded), so that nothing is left Terminating. */
  async stop(): Promise<void> {
    await this.guard?.stop();
    await this.reconciler.stop();
  }

  isReady(): boolean {
    return this.reconciler.isReady();
  }

  isHealthy(): boolean {
    return this.reconciler.isHealthy();
  }

  private async reconcile(name: string, context: ReconcileContext): Promise<ReconcileResult | void> {
    let object = this.freshest(name, context.object as StaticRouteObject | undefined);
    if (!object) {
      for (const key of this.firstSeen.keys()) if (key.startsWith(`${name}\n`)) this.firstSeen.delete(key);
      this.warned.delete(name);
      return;
    }
    const now = Date.now();
    const decision = aggregate({
      object,
      nodes: this.liveNodes(context),
      reports: this.reportsFor(name, context),
      now,
      silentAfterMs: this.silentAfterMs,
      deletionGraceMs: this.deletionGraceMs,
    });
    const deleting = Boolean(object.metadata.deletionTimestamp);
    if (!deleting && decision.finalizer === 'add') {
      object = (await this.setFinalizers(context.api, object, decision, 'add')) ?? object;
    }
    if (deleting && decision.finalizer === 'release') {
      await this.setFinalizers(context.api, object, decision, 'release');
      if (decision.givenUp.length > 0) {
        this.events?.record(
          object as unknown as KubeObject,
          'Warning',
          'NodesNotConfirmed',
          `released after ${Math.round(this.deletionGraceMs / 1000)} s without confirmation from silent node(s): ${decision.givenUp.join(', ')}; their agents remove the routes when they come back`,
        );
      }
      return;
    }
    const settleLeft = this.settleLeft(object, decision, now);
    if (settleLeft > 0) return { requeueAfterMs: settleLeft };
    await this.writeStatus(context.api, object, decision);
    return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : undefined;
  }

  /**
   * Read-your-writes: the copy this aggregator last wrote, when it is newer than the watch's (a reconcile triggered by
   * a report can run before the watch delivers our own write; deciding from the older copy would write the finalizer or
   * the status a second time).
   */
  private freshest(name: string, cached: StaticRouteObject | undefined): StaticRouteObject | undefined {
    const mine = this.written.get(name);
    if (
      cached &&
      mine &&
      mine.metadata.uid === cached.metadata.uid &&
      isNewerVersion(mine.metadata.resourceVersion, cached.metadata.resourceVersion)
    ) {
      return mine;
    }
    this.written.delete(name);
    return cached;
  }

  private remember(written: KubeObject): StaticRouteObject {
    const object = written as unknown as StaticRouteObject;
    this.written.set(object.metadata.name, object);
    return object;
  }

  /**
   * Time left before a status showing nodes that have not reported this change yet may be written. Failures,
   * refusals and a complete summary are written at once.
   */
  private settleLeft(object: StaticRouteObject, decision: AggregateDecision, now: number): number {
    const { name, uid, generation, deletionTimestamp } = object.metadata;
    const key = `${name}\n${uid}\n${generation}\n${deletionTimestamp ?? ''}`;
    const waitingNodes = decision.status.notReady
      .filter((group) => group.state === 'Pending' || group.state === 'Removing')
      .reduce((sum, group) => sum + group.count, 0);
    let change = this.firstSeen.get(key);
    if (change === undefined) {
      for (const other of this.firstSeen.keys()) if (other.startsWith(`${name}\n`)) this.firstSeen.delete(other);
      change = { seenAt: now, progressAt: now, waiting: waitingNodes };
      this.firstSeen.set(key, change);
    } else if (change.waiting !== waitingNodes) {
      change.progressAt = now;
      change.waiting = waitingNodes;
    }
    if (waitingNodes === 0) return 0;
    // While nodes keep reporting (a burst on a large cluster takes the agents a while), wait for a quiet settling
    // delay rather than write every intermediate k/N; never longer than the cap, so that slow nodes show.
    const quietAt = change.progressAt + this.settleMs;
    const capAt = change.seenAt + this.settleMs * SETTLE_CAP_FACTOR;
    return Math.max(0, Math.min(quietAt, capAt) - now);
  }

  private liveNodes(context: ReconcileContext): Map<string, Readonly<Record<string, string>>> {
    const nodes = new Map<string, Readonly<Record<string, string>>>();
    for (const node of context.cache('nodes').values()) {
      if (!node.metadata.deletionTimestamp) nodes.set(node.metadata.name, node.metadata.labels ?? {});
    }
    return nodes;
  }

  private reportsFor(name: string, context: ReconcileContext): Map<string, NodeReportView> {
    const reports = new Map<string, NodeReportView>();
    for (const report of context.cache('reports').values()) {
      const status = (report as NodeReport).status;
      const heartbeat = status?.heartbeatTime ? Date.parse(status.heartbeatTime) : Number.NaN;
      reports.set(report.metadata.name, {
        entry: status?.staticRoutes?.[name] ?? undefined,
        heartbeatAt: Number.isNaN(heartbeat) ? undefined : heartbeat,
        ...(status?.gatewayHealthCheck ? { gatewayHealthCheck: status.gatewayHealthCheck } : {}),
      });
    }
    return reports;
  }

  /**
   * Adds the aggregator's finalizer (dropping those of earlier versions) or releases every finalizer this operator
   * ever held. A merge patch of the whole list with the object's resourceVersion as precondition: exact and
   * idempotent whatever happened to an earlier attempt (a lost response cannot duplicate or drop a finalizer).
   */
  private async setFinalizers(
    api: KubeApi,
    object: StaticRouteObject,
    decision: AggregateDecision,
    action: 'add' | 'release',
  ): Promise<StaticRouteObject | undefined> {
    const current = object.metadata.finalizers ?? [];
    const drop = new Set([...decision.legacyFinalizers, ...(action === 'release' ? [AGGREGATOR_FINALIZER] : [])]);
    const next = current.filter((name) => !drop.has(name));
    if (action === 'add' && !next.includes(AGGREGATOR_FINALIZER)) next.push(AGGREGATOR_FINALIZER);
    if (sameJson(next, current)) return undefined;
    try {
      const written = await api.patch<KubeObject>(
        STATIC_ROUTES,
        object.metadata.name,
        { metadata: { resourceVersion: object.metadata.resourceVersion, finalizers: next } },
        { type: 'merge' },
      );
      this.writes++;
      return this.remember(written);
    } catch (error) {
      // Gone: nothing to hold. A conflict: the copy was not the latest (e.g. a user's edit landed meanwhile); the
      // newer copy's watch event runs this key again, so it is not a failure to retry with backoff.
      if (error instanceof ApiError && (error.statusCode === 404 || error.statusCode === 409)) return undefined;
      throw error;
    }
  }

  /** Writes the summary when it differs from the stored one, and posts an Event when `Ready` changes reason. */
  private async writeStatus(api: KubeApi, object: StaticRouteObject, decision: AggregateDecision): Promise<void> {
    const stored = storedStatus(object);
    const legacyEntries = ((object.status ?? {}) as { nodes?: unknown }).nodes !== undefined;
    if (sameJson(stored, decision.status) && !legacyEntries) return;
    try {
      const written = await api.patch<KubeObject>(
        STATIC_ROUTES,
        object.metadata.name,
        // `nodes`: the per-node entries of the design before the aggregator, dropped on upgrade;
        // `unreachableGateways`: dropped once the object is no longer health-checked.
        {
          status: {
            ...decision.status,
            ...(legacyEntries ? { nodes: null } : {}),
            ...(stored.unreachableGateways !== undefined && decision.status.unreachableGateways === undefined
              ? { unreachableGateways: null }
              : {}),
          },
        },
        { type: 'merge', subresource: 'status' },
      );
      this.writes++;
      this.remember(written);
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return;
      throw error;
    }
    this.postTransition(object, readyCondition(stored.conditions), readyCondition(decision.status.conditions));
    const gatewayEvent = gatewayTransition(
      {
        condition: findCondition(stored.conditions, 'GatewaysReachable'),
        unreachable: stored.unreachableGateways as string[] | undefined,
      },
      {
        condition: findCondition(decision.status.conditions, 'GatewaysReachable'),
        unreachable: decision.status.unreachableGateways,
      },
    );
    if (gatewayEvent && this.events) {
      this.events.record(object as unknown as KubeObject, gatewayEvent.type, gatewayEvent.reason, gatewayEvent.message);
    }
  }

  private postTransition(
    object: StaticRouteObject,
    before: StatusCondition | undefined,
    after: StatusCondition | undefined,
  ): void {
    if (!after || !this.events || (before?.reason === after.reason && before?.status === after.status)) return;
    const target = object as unknown as KubeObject;
    const { name } = object.metadata;
    if (after.status === 'True') {
      // A recovery (from a failure, a refusal, a conflict, no node selected: a Warning was posted) is news, even when a
      // Pending status came between; reaching Ready after an ordinary change is not (no Event: at scale they would
      // outnumber the objects). A stored condition says the same after a failover.
      const warned =
        this.warned.delete(name) || (before !== undefined && !['Pending', 'Applied'].includes(before.reason));
      if (warned) this.events.record(target, 'Normal', 'Ready', after.message);
      return;
    }
    if (after.reason === 'Pending' || after.reason === 'Deleting') return;
    this.warned.add(name);
    this.events.record(target, 'Warning', after.reason, after.message);
  }
}
