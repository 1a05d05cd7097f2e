/**
 * The StaticRoute operator on opkit, node scope: every node's instance handles every StaticRoute for its own node.
 *
 * The handlers are thin: the node's {@link NodeRouteAgent} applies every change as soon as the watch delivers it
 * (planning only the destinations the object touches), and the change handlers wait for a pass that covered their
 * object and translate its outcome for the framework (a kernel failure is a TemporaryError, so the framework retries
 * with backoff; refusals and conflicts are reported in status and Events, not retried). Routes therefore do not wait
 * for the framework's finalizer write, which precedes the first handler and which the nodes make one after the other.
 * The framework keeps one finalizer per node, so an object is released only when every node removed its routes.
 */
import {
  OnCleanup,
  OnCreate,
  OnDelete,
  OnEvent,
  OnResume,
  OnStartup,
  OnUpdate,
  Operator,
  PermanentError,
  TemporaryError,
  type ActivityContext,
  type EventContext,
  type HandlerContext,
  type KubeObject,
} from 'opkit';
import { readConfig, type OperatorConfig } from '../logic/config.js';
import { kopfFinalizerIndex, KOPF_FINALIZER } from '../logic/migration.js';
import {
  STATIC_ROUTE_GROUP,
  STATIC_ROUTE_KIND,
  STATIC_ROUTE_PLURAL,
  STATIC_ROUTE_VERSION,
  type StaticRouteSpec,
} from '../logic/spec.js';
import { isApiStatus, STATIC_ROUTES } from './resource.js';
import { NodeRouteAgent } from './route-agent.js';

/** Prefix of this operator's finalizers and annotations (`staticroute.opkit.dev/...`). */
export const PERSISTENCE_PREFIX = 'staticroute.opkit.dev';

type Context = HandlerContext<StaticRouteSpec>;

@Operator({
  group: STATIC_ROUTE_GROUP,
  version: STATIC_ROUTE_VERSION,
  plural: STATIC_ROUTE_PLURAL,
  kind: STATIC_ROUTE_KIND,
  namespaced: false,
  scope: 'node',
  instanceStatusField: 'nodes',
  persistencePrefix: PERSISTENCE_PREFIX,
  name: 'staticroute',
  // Every node handles every object: one HandlerSucceeded Event per node per change was 2,565 Events for 200 objects
  // on 20 nodes. The outcome is in `status.nodes.<node>`; the agent posts Events when it changes (Failed, Conflict,
  // Refused, Applied again).
  successEvents: false,
})
export class StaticRouteOperator {
  private agent: NodeRouteAgent | undefined;
  private config: OperatorConfig | undefined;

  /**
   * Reads the configuration, waits for the framework's first list of Nodes, lists the StaticRoutes, and converges the
   * routing table before watching.
   */
  @OnStartup()
  async start(ctx: ActivityContext): Promise<void> {
    if (!ctx.nodes) throw new PermanentError('the StaticRoute operator runs in node scope only (no Nodes view)');
    this.config = readConfig({ ...process.env, NODE_NAME: process.env.NODE_NAME || ctx.instanceId });
    ctx.logger.info(
      {
        node: this.config.nodeName,
        protocol: this.config.routeProtocol,
        allowDefaultRoute: this.config.allowDefaultRoute,
        reconcileIntervalMs: this.config.reconcileIntervalMs,
      },
      'starting the route agent',
    );
    this.agent = await NodeRouteAgent.start({
      config: this.config,
      api: ctx.api,
      // The agent outlives this handler: it must not log as the startup handler.
      logger: ctx.operatorLogger.child({ component: 'route-agent' }),
      events: ctx.events,
      nodes: ctx.nodes,
      signal: ctx.signal,
    });
  }

  @OnCleanup()
  async stop(): Promise<void> {
    await this.agent?.stop();
  }

  @OnCreate({ id: 'routes' })
  async create(ctx: Context): Promise<void> {
    await this.apply(ctx);
  }

  @OnUpdate({ id: 'routes' })
  async update(ctx: Context): Promise<void> {
    await this.apply(ctx);
  }

  @OnResume({ id: 'routes' })
  async resume(ctx: Context): Promise<void> {
    await this.apply(ctx);
  }

  /** Removes the routes only this object wanted (a route another object wants stays), then releases this node. */
  @OnDelete({ id: 'routes' })
  async remove(ctx: Context): Promise<void> {
    const agent = this.requireAgent();
    await dropKopfFinalizer(ctx);
    const result = await agent.settle(ctx.body);
    const stuck = NodeRouteAgent.destinationsOf(ctx.body).filter((destination) => result.undeleted.has(destination));
    if (stuck.length > 0) {
      throw new TemporaryError(
        `cannot remove routes: ${stuck.map((d) => `${d}: ${result.undeleted.get(d)}`).join('; ')}`,
      );
    }
  }

  /**
   * Every watch event: keep the agent's view current (a change of what decides the routes is applied at once) and the
   * shared status summary right.
   */
  @OnEvent()
  observe(ctx: EventContext): void {
    const agent = this.agent;
    if (!agent) return;
    if (ctx.type === 'delete') {
      agent.forget(ctx.name);
      return;
    }
    agent.upsert(ctx.body);
    agent.refreshSummary(ctx.body);
    const { deletionTimestamp, finalizers } = ctx.body.metadata;
    if (
      deletionTimestamp &&
      kopfFinalizerIndex(finalizers) !== -1 &&
      !finalizers?.some((f) => f.startsWith(`${PERSISTENCE_PREFIX}/`))
    ) {
      // Deleted before any of our instances saw it (e.g. while the seed was being replaced): no delete handler
      // will run, so release the seed's finalizer here once this node holds no route for it.
      void this.releaseSeedFinalizer(ctx, agent);
    }
  }

  private async releaseSeedFinalizer(ctx: EventContext, agent: NodeRouteAgent): Promise<void> {
    try {
      await agent.settle(ctx.body);
      await dropKopfFinalizer(ctx);
    } catch (error) {
      ctx.logger.warn({ err: error }, "cannot release the seed operator's finalizer");
    }
  }

  private requireAgent(): NodeRouteAgent {
    if (!this.agent) throw new TemporaryError('the route agent is not started yet');
    return this.agent;
  }

  private async apply(ctx: Context): Promise<void> {
    const agent = this.requireAgent();
    await dropKopfFinalizer(ctx);
    const result = await agent.settle(ctx.body);
    const outcome = result.outcomes.get(ctx.name);
    if (outcome?.state === 'Failed') {
      // Kernel failures (e.g. an unreachable gateway) are retried with the framework's backoff; the safe
      // destinations of the object and every other object are already applied.
      throw new TemporaryError(outcome.message);
    }
  }
}

/**
 * Removes the seed operator's Kopf finalizer: nothing else would, and the object could never be deleted. Our own
 * per-node finalizers protect the object from here on. A JSON patch with a `test` makes the removal exact even when
 * several nodes try at once (the losers get 422 and ignore it).
 */
async function dropKopfFinalizer(ctx: Context | EventContext): Promise<void> {
  const finalizers = (ctx.body as KubeObject).metadata.finalizers;
  const index = kopfFinalizerIndex(finalizers);
  if (index === -1) return;
  try {
    await ctx.api.patch(
      STATIC_ROUTES,
      ctx.name,
      [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: KOPF_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ],
      { type: 'json' },
    );
    ctx.logger.info("removed the seed operator's Kopf finalizer");
  } catch (error) {
    if (!isApiStatus(error, 422) && !isApiStatus(error, 404) && !isApiStatus(error, 409)) throw error;
  }
}
