/**
 * Kubernetes Events for state changes the node-local reconcile finds outside any handler (a conflict that appears
 * because another object was created, a drift repair that fails, ...). Events about cluster-scoped objects go to
 * namespace `default`. Repeats of the same (object, reason, message) within ten minutes bump the count of the first
 * Event instead of creating new ones, and at most `burst` Events are posted per minute.
 *
 * Why not the framework's recorder: opkit gives handlers `ctx.events`, bound to the object being handled, and does
 * not export its EventRecorder for use outside handlers.
 */
import { randomBytes } from 'node:crypto';
import type { KubeApi, Logger, ResourceRef } from 'opkit';
import type { StaticRouteObject } from '../logic/spec.js';
import { STATIC_ROUTE_GROUP, STATIC_ROUTE_KIND, STATIC_ROUTE_VERSION } from '../logic/spec.js';

const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };
const NAMESPACE = 'default';
const DEDUPE_MS = 600_000;

interface Posted {
  name: string;
  count: number;
  at: number;
}

export class EventPoster {
  private readonly posted = new Map<string, Posted>();
  private recent: number[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: KubeApi,
    private readonly nodeName: string,
    private readonly logger: Logger,
    private readonly burstPerMinute = 30,
  ) {}

  /** Queues an Event; never throws (failures are logged). */
  record(object: StaticRouteObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = Date.now();
    this.recent = this.recent.filter((at) => now - at < 60_000);
    if (this.recent.length >= this.burstPerMinute) {
      this.logger.debug({ reason, object: object.metadata.name }, 'event dropped by the rate limit');
      return;
    }
    this.recent.push(now);
    this.chain = this.chain.then(() =>
      this.post(object, type, reason, message, now).catch((error: unknown) =>
        this.logger.warn({ err: error, reason, object: object.metadata.name }, 'cannot post event'),
      ),
    );
  }

  /** Resolves when queued Events were sent. */
  flush(): Promise<void> {
    return this.chain;
  }

  private async post(object: StaticRouteObject, type: string, reason: string, message: string, at: number) {
    const key = `${object.metadata.uid ?? object.metadata.name}\n${type}\n${reason}\n${message}`;
    const when = new Date(at).toISOString().replace(/\.\d+Z$/, 'Z');
    const previous = this.posted.get(key);
    if (previous && at - previous.at < DEDUPE_MS) {
      previous.count++;
      previous.at = at;
      try {
        await this.api.patch(
          EVENTS,
          previous.name,
          { count: previous.count, lastTimestamp: when },
          { namespace: NAMESPACE },
        );
        return;
      } catch {
        // Expired or deleted: post a new one below.
      }
    }
    for (const [stale, item] of this.posted) if (at - item.at >= DEDUPE_MS) this.posted.delete(stale);
    const name = `${object.metadata.name}.${randomBytes(8).toString('hex')}`;
    await this.api.create(
      EVENTS,
      {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: NAMESPACE },
        involvedObject: {
          apiVersion: `${STATIC_ROUTE_GROUP}/${STATIC_ROUTE_VERSION}`,
          kind: STATIC_ROUTE_KIND,
          name: object.metadata.name,
          uid: object.metadata.uid,
        },
        type,
        reason,
        message: `${this.nodeName}: ${message}`.slice(0, 1024),
        source: { component: 'k8s-staticroute-operator', host: this.nodeName },
        reportingComponent: 'k8s-staticroute-operator',
        reportingInstance: this.nodeName,
        firstTimestamp: when,
        lastTimestamp: when,
        count: 1,
      },
      NAMESPACE,
    );
    this.posted.set(key, { name, count: 1, at });
  }
}
