/**
 * The node agent on opkit (node scope): every node's instance keeps that node's routing table in line with every
 * StaticRoute and reports the outcome in its own node report.
 *
 * It declares no change handlers on purpose: the agent is level-based (old state comes from the kernel, see
 * {@link NodeRouteAgent}), so it needs neither a diff-base nor progress, and it must never write a StaticRoute — no
 * finalizer, no status: at hundreds of nodes, per-node writes on a shared object cost O(N) writes per change and
 * O(N^2) watch traffic. The watch feeds the agent through `@OnEvent`; the aggregator (src/aggregator) holds the one
 * finalizer and writes the status from the nodes' reports.
 */
import {
  OnCleanup,
  OnEvent,
  OnStartup,
  Operator,
  PermanentError,
  type ActivityContext,
  type EventContext,
  type Runnable,
} from 'opkit';
import type { Registry } from 'prom-client';
import { nodeRouteMetrics } from '../adapters/metrics.js';
import { readConfig, type OperatorConfig } from '../logic/config.js';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_KIND, STATIC_ROUTE_PLURAL, STATIC_ROUTE_VERSION } from '../logic/spec.js';
import { NodeRouteAgent } from './route-agent.js';

/** Prefix of the framework's keys for this operator (no annotation or finalizer is written under it any more). */
export const PERSISTENCE_PREFIX = 'staticroute.opkit.dev';

@Operator({
  group: STATIC_ROUTE_GROUP,
  version: STATIC_ROUTE_VERSION,
  plural: STATIC_ROUTE_PLURAL,
  kind: STATIC_ROUTE_KIND,
  namespaced: false,
  scope: 'node',
  persistencePrefix: PERSISTENCE_PREFIX,
  name: 'staticroute-agent',
  successEvents: false,
})
export class StaticRouteAgent {
  /** The runtime's metrics registry (main.ts sets it, and passes it as `metricsRegistry`); no metrics without it. */
  static metricsRegistry: Registry | undefined;
  /** The running agent (one per process), for the probes ({@link kernelProbes}). */
  static current: NodeRouteAgent | undefined;
  private agent: NodeRouteAgent | undefined;
  private config: OperatorConfig | undefined;

  /**
   * Reads the configuration, waits for the framework's first list of this Node, lists the StaticRoutes, and
   * converges the routing table before watching.
   */
  @OnStartup()
  async start(ctx: ActivityContext): Promise<void> {
    if (!ctx.nodes) throw new PermanentError('the StaticRoute agent runs in node scope only (no Nodes view)');
    this.config = readConfig({ ...process.env, NODE_NAME: process.env.NODE_NAME || ctx.instanceId });
    ctx.logger.info(
      {
        node: this.config.nodeName,
        protocol: this.config.routeProtocol,
        allowDefaultRoute: this.config.allowDefaultRoute,
        reconcileIntervalMs: this.config.reconcileIntervalMs,
        gatewayHealthCheck: this.config.gatewayHealthCheck ? 'Enabled' : 'Disabled',
      },
      'starting the route agent',
    );
    this.agent = await NodeRouteAgent.start({
      config: this.config,
      api: ctx.api,
      // The agent outlives this handler: it must not log as the startup handler.
      logger: ctx.operatorLogger.child({ component: 'route-agent' }),
      nodes: ctx.nodes,
      reportHeartbeatMs: this.config.reportHeartbeatMs,
      signal: ctx.signal,
      ...(StaticRouteAgent.metricsRegistry
        ? { metrics: nodeRouteMetrics(StaticRouteAgent.metricsRegistry, this.config.nodeName) }
        : {}),
    });
    StaticRouteAgent.current = this.agent;
  }

  @OnCleanup()
  async stop(): Promise<void> {
    if (StaticRouteAgent.current === this.agent) StaticRouteAgent.current = undefined;
    await this.agent?.stop();
  }

  /** Every watch event: a change of what decides the routes is applied at once. */
  @OnEvent()
  observe(ctx: EventContext): void {
    const agent = this.agent;
    if (!agent) return;
    if (ctx.type === 'delete') agent.forget(ctx.name);
    else agent.upsert(ctx.body);
  }
}

/**
 * The kernel side in the probes (main.ts passes it in `runnables`): `/readyz` fails while this node cannot program
 * routes or see drift (a netlink socket is down and being reopened), `/healthz` once that lasted beyond the grace
 * period, so that the kubelet restarts an agent whose sockets do not come back.
 */
export const kernelProbes: Runnable = {
  name: 'kernel-probes',
  start: () => undefined,
  stop: async () => undefined,
  isReady: () => StaticRouteAgent.current?.kernelProbe().ready ?? true,
  isHealthy: () => StaticRouteAgent.current?.kernelProbe().live ?? true,
};
