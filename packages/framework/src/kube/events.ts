/**
 * Kubernetes Events (core/v1) for handler outcomes, posted without ever getting in a handler's way.
 *
 * - Fire and forget: `record()` only queues; one background loop posts, in order. Errors are logged, never thrown.
 * - Deduplicated like kubectl shows them ("x5 over 3m"): the same (target uid, type, reason, message) within the
 *   window patches the existing Event's `count` and `lastTimestamp` instead of creating another object. Repeats still
 *   waiting in the queue are merged there without any extra request.
 * - Rate-limited per target object (token bucket); a record without a token is dropped and counted.
 * - Cluster-scoped targets get their Events in namespace `default`, as kubectl and client-go do.
 * - 404 on a dedupe patch (the Event expired, by default after 1 h) creates a new Event; 409 on create (name taken)
 *   retries once with a new name.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { KeyedTokenBucket } from './rate-limit.js';
import { ApiError, type KubeApi, type KubeObject, type ResourceRef } from './types.js';

const EVENTS: ResourceRef = { group: '', version: 'v1', plural: 'events', namespaced: true };

/** Event type, as Kubernetes defines it. */
export type EventType = 'Normal' | 'Warning';

/** What happened to one `record()` call. */
export type EventOutcome = 'created' | 'deduplicated' | 'dropped' | 'failed';

/** Options for {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** `source.component` and `reportingComponent`, e.g. `staticroute-operator`. */
  component: string;
  /** `source.host` and `reportingInstance`, e.g. the node name. Defaults to the host name. */
  instance?: string;
  logger?: Logger;
  /** Events allowed at once per target object. Defaults to 25 (client-go's spam filter). */
  burst?: number;
  /** Tokens regained per second per target object. Defaults to 1/300 (one per 5 minutes, as client-go). */
  refillPerSecond?: number;
  /** Repeats within this window update one Event. Defaults to 10 minutes. */
  dedupeWindowMs?: number;
  /** Records waiting to be posted, at most; beyond, records are dropped. Defaults to 1000. */
  maxQueue?: number;
  /** Clock in ms; injectable for tests. Defaults to Date.now. */
  now?: () => number;
  /** Called with each record's outcome (for metrics). */
  onOutcome?: (outcome: EventOutcome) => void;
}

/** The object an Event is about. `apiVersion` and `kind` should be set (watch events carry them). */
export type EventTarget = KubeObject & { apiVersion?: string; kind?: string };

/** What a queued record keeps of its target: the `involvedObject` reference, not the whole object. */
interface TargetRef {
  apiVersion: string | undefined;
  kind: string | undefined;
  metadata: { name: string; namespace: string | undefined; uid: string; resourceVersion: string };
}

interface PendingRecord {
  key: string;
  target: TargetRef;
  type: EventType;
  reason: string;
  message: string;
  at: number;
  repeats: number;
}

interface PostedEvent {
  name: string;
  namespace: string;
  count: number;
  lastAt: number;
}

/** The dedupe identity of a record: same target object (by uid), type, reason and message. */
export function eventDedupeKey(targetUid: string, type: EventType, reason: string, message: string): string {
  return JSON.stringify([targetUid, type, reason, message]);
}

/** Posts deduplicated, rate-limited core/v1 Events. */
export class EventRecorder {
  private readonly queue: PendingRecord[] = [];
  private readonly posted = new Map<string, PostedEvent>();
  private readonly limiter: KeyedTokenBucket;
  private readonly now: () => number;
  private readonly instance: string;
  private draining: Promise<void> | undefined;
  private droppedCount = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly opts: EventRecorderOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.instance = opts.instance ?? hostname();
    this.limiter = new KeyedTokenBucket({
      burst: opts.burst ?? 25,
      refillPerSecond: opts.refillPerSecond ?? 1 / 300,
      now: this.now,
    });
  }

  /** Records dropped so far (rate limit or full queue). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Queues an Event about `target`. Never throws, never waits. */
  record(target: EventTarget, type: EventType, reason: string, message: string): void {
    try {
      const uid = target.metadata.uid;
      const key = eventDedupeKey(uid, type, reason, message);
      const at = this.now();
      const waiting = this.queue.find((item) => item.key === key);
      if (waiting) {
        // Same record still queued: fold it in for free, no request and no token spent.
        waiting.repeats += 1;
        waiting.at = at;
        return;
      }
      if (this.queue.length >= (this.opts.maxQueue ?? 1000) || !this.limiter.take(uid)) {
        this.droppedCount += 1;
        this.outcome('dropped');
        this.opts.logger?.debug({ reason, object: target.metadata.name }, 'event dropped by rate limit');
        return;
      }
      // Only the reference: a burst of records (every object of a large initial list) must not keep a whole copy
      // of each object alive until its Event is posted.
      const { name, namespace, resourceVersion } = target.metadata;
      const ref: TargetRef = {
        apiVersion: target.apiVersion,
        kind: target.kind,
        metadata: { name, namespace, uid, resourceVersion },
      };
      this.queue.push({ key, target: ref, type, reason, message, at, repeats: 1 });
      this.draining ??= this.drain().finally(() => (this.draining = undefined));
    } catch (err) {
      this.opts.logger?.warn({ err }, 'cannot record event');
    }
  }

  /**
   * Resolves when every queued record was posted (or failed). Call on shutdown.
   *
   * @param timeoutMs - Resolve after this long even if records are still queued (an unreachable API server must not
   *   hold up shutdown past its grace period). Defaults to waiting until drained.
   */
  async flush(timeoutMs?: number): Promise<void> {
    const drained = (async () => {
      while (this.draining) await this.draining;
    })();
    if (timeoutMs === undefined) return drained;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    try {
      await Promise.race([drained, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private outcome(outcome: EventOutcome): void {
    try {
      this.opts.onOutcome?.(outcome);
    } catch {
      // Metrics must not break event posting.
    }
  }

  private async drain(): Promise<void> {
    // Yield first so that a burst of record() calls in one tick can coalesce before the first request.
    await Promise.resolve();
    // Take the record off the queue before posting: a repeat arriving meanwhile must queue anew (and patch the count
    // afterwards), not be folded into a request already on the wire.
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      try {
        await this.post(item);
      } catch (err) {
        this.outcome('failed');
        this.opts.logger?.warn({ err, reason: item.reason, object: item.target.metadata.name }, 'cannot post event');
      }
    }
  }

  private async post(item: PendingRecord): Promise<void> {
    const window = this.opts.dedupeWindowMs ?? 600_000;
    this.forgetExpired(item.at, window);
    const previous = this.posted.get(item.key);
    if (previous && item.at - previous.lastAt <= window) {
      const count = previous.count + item.repeats;
      try {
        await this.api.patch(
          EVENTS,
          previous.name,
          { count, lastTimestamp: timestamp(item.at) },
          {
            namespace: previous.namespace,
          },
        );
        previous.count = count;
        previous.lastAt = item.at;
        this.outcome('deduplicated');
        return;
      } catch (err) {
        // The Event expired (event TTL) or was deleted: start a new one.
        if (!(err instanceof ApiError && err.statusCode === 404)) throw err;
        this.posted.delete(item.key);
      }
    }
    const namespace = item.target.metadata.namespace || 'default';
    for (let attempt = 0; ; attempt += 1) {
      const name = eventName(item.target.metadata.name, item.at);
      try {
        await this.api.create(EVENTS, this.body(item, name, namespace), namespace);
        this.posted.set(item.key, { name, namespace, count: item.repeats, lastAt: item.at });
        this.outcome('created');
        return;
      } catch (err) {
        if (!(err instanceof ApiError && err.statusCode === 409) || attempt > 0) throw err;
      }
    }
  }

  private body(item: PendingRecord, name: string, namespace: string): Record<string, unknown> {
    const { target } = item;
    const when = timestamp(item.at);
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: target.metadata.name,
        namespace: target.metadata.namespace,
        uid: target.metadata.uid,
        resourceVersion: target.metadata.resourceVersion,
      },
      type: item.type,
      reason: item.reason,
      // The API refuses messages over 1 KiB on Events; a truncated message beats a lost Event.
      message: truncate(item.message, 1024),
      count: item.repeats,
      firstTimestamp: when,
      lastTimestamp: when,
      source: { component: this.opts.component, host: this.instance },
      reportingComponent: this.opts.component,
      reportingInstance: truncate(this.instance, 128),
    };
  }

  /** Bounded memory: forget Events outside the window, and the oldest beyond 4096 (client-go's cache size). */
  private forgetExpired(now: number, window: number): void {
    for (const [key, entry] of this.posted) {
      if (now - entry.lastAt > window) this.posted.delete(key);
    }
    while (this.posted.size >= 4096) this.posted.delete(this.posted.keys().next().value as string);
  }
}

/** `<object name>.<16 hex digits>`, within the 253-character name limit. */
function eventName(objectName: string, at: number): string {
  const suffix = (at.toString(16) + randomBytes(4).toString('hex')).slice(-16).padStart(16, '0');
  return `${objectName.slice(0, 253 - 17)}.${suffix}`;
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - 3) + '...';
}
