/**
 * The node-local route manager: keeps this node's routing table equal to what all StaticRoutes ask of it.
 *
 * Level-based: every reconcile reads the kernel's table and the node's addresses, computes the desired routes from
 * every known StaticRoute, plans and applies the difference. Nothing about "what was installed before" is stored:
 * old state is whatever the kernel holds with our protocol, so a gateway edit, a restart, a lost event or a route
 * deleted by hand all converge the same way (the seed's issue #23 cannot happen).
 *
 * Triggers: handlers (create/update/resume/delete), kernel notifications that mean drift (debounced), changes of
 * this node's labels, and a periodic full pass that also re-lists the StaticRoutes from the API.
 * Reconciles never overlap; requests made while one runs are served by one more run after it.
 *
 * Nodes (this node's labels for `nodeSelector`, every node's labels for the selected-node count) come from the
 * framework's Nodes view (`ctx.nodes`), and Events go through the framework's recorder (`ctx.events`): the agent runs
 * no watch and posts no Event of its own.
 */
import type { EventPublisher, KubeApi, KubeObject, Logger, NodeCache, NodeChange } from 'opkit';
import { computeDesiredState, type DesiredRoute } from '../logic/desired.js';
import { changeNeedsReconcile, type TableChange } from '../logic/drift.js';
import type { OperatorConfig } from '../logic/config.js';
import { describeKernelRoute, operationKey, planRouteChanges } from '../logic/plan.js';
import type { SafetyPolicy } from '../logic/safety.js';
import { parseRouteSpec, type StaticRouteObject } from '../logic/spec.js';
import { formatPrefix, type Prefix } from '../logic/ip.js';
import { objectOutcome, type NodeOutcome } from '../logic/status.js';
import { RouteMonitor, type TableEvent } from '../adapters/route-monitor.js';
import { RouteTable } from '../adapters/route-table.js';
import { STATIC_ROUTES } from './resource.js';
import { StatusWriter } from './status-writer.js';

/** What one reconcile found and did. */
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
  /** The framework's Event recorder (`ctx.events` of the startup handler). */
  events: EventPublisher;
  /** The framework's Nodes view (`ctx.nodes`); the agent waits for its first list before the first reconcile. */
  nodes: NodeCache;
  /** Aborts the start (the startup handler's `ctx.signal`). */
  signal?: AbortSignal;
  /** Delay that batches bursts of kernel notifications into one reconcile. Defaults to 100 ms. */
  driftDebounceMs?: number;
}

type Labels = Readonly<Record<string, string>>;

/** Every node's labels, by node name (the StatusWriter counts the nodes an object selects from it). */
function labelsByNode(nodes: readonly KubeObject[]): ReadonlyMap<string, Labels> {
  return new Map(nodes.map((node) => [node.metadata.name, node.metadata.labels ?? {}]));
}

function sameLabels(a: Labels | undefined, b: Labels | undefined): boolean {
  const left = Object.entries(a ?? {});
  return left.length === Object.keys(b ?? {}).length && left.every(([key, value]) => b?.[key] === value);
}

const RECHECK_ERRORS = new Set(['EEXIST', 'UNKNOWN']);

export class NodeRouteAgent {
  private readonly objects = new Map<string, StaticRouteObject>();
  private readonly reported = new Map<string, string>();
  private table: RouteTable;
  private monitor: RouteMonitor | undefined;
  private unsubscribeNodes: (() => void) | undefined;
  private readonly status: StatusWriter;
  private desired: ReadonlyMap<string, DesiredRoute> | undefined;
  private running: Promise<ReconcileResult> | undefined;
  private queued: Promise<ReconcileResult> | undefined;
  private driftTimer: ReturnType<typeof setTimeout> | undefined;
  private periodicTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  /**
   * Set once the StaticRoutes were listed. Before that the view is incomplete, and a reconcile would remove the routes
   * of every object not seen yet: nothing may trigger one (e.g. the first Node list) until then.
   */
  private listed = false;
  /** Completed reconciles (for logs and tests). */
  reconciles = 0;

  private constructor(private readonly options: RouteAgentOptions) {
    const { config, api, logger, nodes } = options;
    this.table = RouteTable.open({ protocol: config.routeProtocol });
    this.status = new StatusWriter(api, config.nodeName, logger, () => labelsByNode(nodes.list()));
  }

  /**
   * Waits for the Nodes, lists the StaticRoutes, subscribes to kernel notifications and converges the table once.
   * Rejects (and cleans up) when the API or the kernel cannot be reached, or `signal` aborts.
   */
  static async start(options: RouteAgentOptions): Promise<NodeRouteAgent> {
    const agent = new NodeRouteAgent(options);
    try {
      const { nodes, config, logger } = options;
      agent.unsubscribeNodes = nodes.onChange((change) => agent.onNodeChange(change));
      await nodes.whenSynced(options.signal);
      if (!nodes.own()) {
        logger.warn(
          { node: config.nodeName },
          'no Node object with this name: nodeSelectors see no labels on this node',
        );
      }
      await agent.relistObjects();
      agent.listed = true;
      agent.monitor = RouteMonitor.start((event) => agent.onTableEvent(event));
      await agent.reconcile();
      agent.periodicTimer = setInterval(() => void agent.periodicPass(), options.config.reconcileIntervalMs);
      agent.periodicTimer.unref();
      return agent;
    } catch (error) {
      await agent.stop();
      throw error;
    }
  }

  /** Records the latest version of an object (from a handler or a watch event). */
  upsert(object: KubeObject): void {
    this.objects.set(object.metadata.name, object as unknown as StaticRouteObject);
  }

  /** Forgets a deleted object and reconciles soon (removing any route only it wanted). */
  forget(name: string): void {
    this.objects.delete(name);
    this.reported.delete(name);
    this.scheduleReconcile(0);
  }

  /** Re-checks the shared status summary of an object after a watch event. */
  refreshSummary(object: KubeObject): void {
    if (this.stopped || object.metadata.deletionTimestamp) return;
    this.status.refresh(object as unknown as StaticRouteObject);
  }

  /**
   * Reconciles now, or right after the run in progress. Resolves with a result computed after this call.
   */
  reconcile(): Promise<ReconcileResult> {
    if (this.stopped) return Promise.reject(new Error('the route agent is stopped'));
    if (!this.listed) return Promise.reject(new Error('the route agent has not listed the StaticRoutes yet'));
    if (!this.running) {
      this.running = this.reconcileOnce().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.reconcile();
      });
    return this.queued;
  }

  private scheduleReconcile(delayMs: number): void {
    if (this.stopped || !this.listed || this.driftTimer) return;
    this.driftTimer = setTimeout(() => {
      this.driftTimer = undefined;
      this.reconcile().catch((error: unknown) => this.options.logger.warn({ err: error }, 'reconcile failed'));
    }, delayMs);
    this.driftTimer.unref();
  }

  private onTableEvent(event: TableEvent): void {
    const change: TableChange = event.kind === 'overflow' ? { kind: 'overflow' } : event;
    if (!changeNeedsReconcile(change, this.desired, this.options.config.routeProtocol)) return;
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
    if (!unchanged) this.onNodesChanged(change.own);
  }

  private onNodesChanged(ownLabelsChanged: boolean): void {
    if (ownLabelsChanged) this.scheduleReconcile(0);
    // Another node's labels change the selected-node count of some objects.
    for (const object of this.objects.values()) this.refreshSummary(object as unknown as KubeObject);
  }

  private async relistObjects(): Promise<void> {
    const list = await this.options.api.list<KubeObject>(STATIC_ROUTES);
    this.objects.clear();
    for (const item of list.items) this.upsert(item);
  }

  private async periodicPass(): Promise<void> {
    try {
      await this.relistObjects();
      await this.reconcile();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'periodic reconcile failed');
    }
  }

  private policy(nodeAddresses: SafetyPolicy['nodeAddresses']): SafetyPolicy {
    const { config } = this.options;
    return {
      nodeAddresses,
      apiServerAddresses: config.apiServerAddresses,
      protectedCidrs: config.protectedCidrs,
      allowDefaultRoute: config.allowDefaultRoute,
    };
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    const objects = [...this.objects.values()];
    const node = { name: config.nodeName, labels: this.options.nodes.own()?.metadata.labels ?? {} };
    let result: ReconcileResult | undefined;
    // A second pass re-reads the table when an add met an unexpected route (EEXIST) or a reply was lost: the kernel
    // then says whether the route we meant is there (nothing left to do) or a foreign one holds the destination.
    for (let pass = 0; pass < 2; pass++) {
      const addresses = await this.table.listAddresses();
      const state = computeDesiredState(objects, node, this.policy(addresses));
      this.desired = state.routes;
      const current = await this.table.listRoutes();
      const plan = planRouteChanges(state.routes, current, { protocol: config.routeProtocol });
      const applied = await this.table.apply(plan.operations);
      const failures = new Map<string, string>();
      const undeleted = new Map<string, string>();
      let recheck = false;
      for (const outcome of applied) {
        if (outcome.ok) continue;
        const key = operationKey(outcome.operation);
        if (RECHECK_ERRORS.has(outcome.errno)) recheck = true;
        if (outcome.operation.op === 'delete' && !state.routes.has(key)) undeleted.set(key, outcome.error);
        else if (!failures.has(key)) failures.set(key, outcome.error);
      }
      for (const { route, by } of plan.blocked) {
        failures.set(
          route.key,
          `a route the operator does not manage holds the destination: ${describeKernelRoute(by)}`,
        );
      }
      const outcomes = new Map<string, NodeOutcome>();
      for (const [name, assessment] of state.assessments) outcomes.set(name, objectOutcome(assessment, failures));
      result = { outcomes, undeleted, operations: plan.operations.length };
      if (plan.operations.length > 0) {
        logger.info(
          { operations: plan.operations.length, failed: failures.size + undeleted.size, unchanged: plan.unchanged },
          'routing table reconciled',
        );
      }
      if (!recheck) break;
    }
    this.reconciles++;
    this.report(objects, (result as ReconcileResult).outcomes);
    return result as ReconcileResult;
  }

  /** Writes status entries and posts Events for objects whose outcome on this node changed. */
  private report(objects: StaticRouteObject[], outcomes: Map<string, NodeOutcome>): void {
    for (const object of objects) {
      const outcome = outcomes.get(object.metadata.name);
      if (!outcome || object.metadata.deletionTimestamp) continue;
      const fingerprint = `${object.metadata.generation}\n${outcome.state}\n${outcome.message}`;
      const previous = this.reported.get(object.metadata.name);
      this.status.report(object, outcome);
      if (previous === fingerprint) continue;
      this.reported.set(object.metadata.name, fingerprint);
      const previousState = previous?.split('\n')[1];
      // Node-prefixed, like the framework's own node-scope Events: every node reports on the same object.
      const message = `${this.options.config.nodeName}: ${outcome.message}`;
      const target = object as unknown as KubeObject;
      if (outcome.state === 'Failed' || outcome.state === 'Refused' || outcome.state === 'Conflict') {
        this.options.events.record(target, 'Warning', outcome.state, message);
      } else if (outcome.state === 'Applied' && previousState !== undefined && previousState !== 'Applied') {
        this.options.events.record(target, 'Normal', 'Applied', message);
      }
    }
  }

  /** Destinations of `object` (normalized), empty when its spec is invalid. */
  static destinationsOf(object: KubeObject): string[] {
    const parsed = parseRouteSpec(object.spec);
    return parsed.ok ? parsed.spec.destinations.map((prefix: Prefix) => formatPrefix(prefix)) : [];
  }

  /**
   * Stops timers and notifications; waits for queued status writes (at most 5 s). Queued Events are flushed by the
   * framework after the cleanup handlers.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.driftTimer);
    clearInterval(this.periodicTimer);
    this.monitor?.stop();
    this.unsubscribeNodes?.();
    await this.running?.catch(() => undefined);
    await Promise.race([this.status.flush(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.status.stop();
    this.table.close();
  }
}
