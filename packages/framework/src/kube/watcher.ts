/**
 * The watch loop: list, then watch, forever, never silently.
 *
 * An explicit state machine (the kube-rs design), so that every way a watch can end is one visible transition:
 *
 * ```
 *   idle --start--> listing --listed--> watching --stream ended (server timeout)--> watching (resume from last RV)
 *                      ^                   |--410 Gone (HTTP or ERROR event)--> relisting --listed--> watching
 *                      |                   |--error / inactivity--> backoff --> watching (resume from last RV)
 *   relisting --list older than seen--> relisting (from etcd)
 *   relisting/listing --error--> backoff --> relisting
 *   any --stop()--> stopped
 * ```
 *
 * Lists are served by the API server's watch cache (`resourceVersion=0`), as client-go's reflector does: after an API
 * server restart every watch of every node gets 410 and relists at once, and quorum reads would all land on etcd. A
 * quorum read (from etcd) is used only when the cache cannot answer well: after its list turned out older than what the
 * watcher already saw, and after a 410 on a list (an expired continue token).
 *
 * Guarantees:
 * - Events are delivered strictly in order, one at a time, from a single loop.
 * - After a (re)list the store equals the list; the differences with what the store held are delivered as events
 *   (`delete` for objects that vanished while away, `upsert` for new or changed ones), then `synced`.
 * - Never back in time: a list older than the resourceVersion the watcher already reached is not applied (no deletes,
 *   no older copies); the watcher lists again from etcd instead.
 * - A duplicate delivery of an object at a resourceVersion already in the store is suppressed (reconnect overlap).
 * - Every object goes through the cache transform (default: drop `metadata.managedFields`) before it is stored or
 *   delivered; the store and the events never hold what the transform dropped.
 * - No stream stays open silently: the server ends every stream after its `timeoutSeconds` (by default 70 to 90 s,
 *   spread so that watches opened together do not end together), and the inactivity watchdog aborts a stream that
 *   received nothing for that long plus 30 s. A half-open connection (peer gone, no reset ever arrives) is found
 *   within two minutes; TCP keep-alive (see the API client) finds a peer that answers probes with a reset sooner.
 * - Bookmarks are requested: the watch cache sends one just before a stream's timeout (and every minute) when the
 *   collection's resourceVersion moved, so the next stream resumes from a recent version, inside the cache's window,
 *   instead of earning a 410 and a relist.
 * Caveats:
 * - `onEvent` runs synchronously inside the loop: it must not block. Exceptions it throws are logged and swallowed so
 *   that one bad consumer cannot stop the watch.
 * - Short streams cost one watch request per watcher about every 80 s, served from the watch cache; the price of
 *   finding dead connections without HTTP/2 pings (client-go's way, which plain HTTP/1.1 does not have).
 */
import type { Logger } from 'pino';
import { sleep, untilAborted } from './abort.js';
import { objectKey, resourceLabel } from './paths.js';
import { compareRelist, isListBehind } from './relist.js';
import { nextRetryDelay, type BackoffSettings } from './retry.js';
import { keepsIdentity, stripManagedFields, type CacheTransform } from './transform.js';
import { ApiError, type KubeApi, type KubeList, type KubeObject, type ResourceRef, type WatchEvent } from './types.js';

/** What the watcher tells its consumer. */
export type WatcherEvent<T> = { type: 'upsert'; object: T } | { type: 'delete'; object: T } | { type: 'synced' };

/** The watcher's states (see the module comment for the transitions). */
export type WatcherState = 'idle' | 'listing' | 'watching' | 'backoff' | 'relisting' | 'stopped';

/** Options for {@link Watcher}. */
export interface WatcherOptions {
  ref: ResourceRef;
  /** Watch one namespace only. Defaults to all namespaces (or the cluster scope). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** List page size. Defaults to 500. */
  pageSize?: number;
  /**
   * Server-side watch timeout in seconds; the stream then ends and the watcher resumes. Defaults to a random value
   * from 70 to 90 per stream, so that watches opened together (after an API server restart) do not end together.
   */
  timeoutSeconds?: number;
  /** Abort a stream that received nothing for this long. Defaults to the stream's timeout plus 30 000. */
  inactivityTimeoutMs?: number;
  /** Backoff between failed attempts (full jitter). Defaults to 500 ms initial, 30 s max. */
  backoff?: BackoffSettings;
  logger?: Logger;
  /** Called on every reconnect or relist, with the reason (bounded set, usable as a metric label). */
  onRestart?: (reason: WatchRestartReason) => void;
  /** Source of uniform randoms for the jitter; for tests. Defaults to Math.random. */
  random?: () => number;
  /**
   * Applied to every listed and watched object before it is stored and delivered (see {@link CacheTransform} for
   * what it must keep). Defaults to {@link stripManagedFields}; pass `(object) => object` to keep every field.
   */
  transform?: CacheTransform;
}

/** Why the watcher reconnected or relisted. */
export type WatchRestartReason =
  | 'stream-ended' // the server closed the stream normally (timeoutSeconds); resumed without relisting
  | 'gone' // 410 Gone: the resourceVersion was compacted away; relisted
  | 'list-expired' // 410 on a list continue token; the list restarted (from etcd)
  | 'stale-list' // the watch cache's list was older than what the watcher had seen; listed again from etcd
  | 'inactivity' // watchdog: nothing received for inactivityTimeoutMs
  | 'throttled' // 429 or 503 from the server (Retry-After honoured)
  | 'http-error' // any other HTTP error
  | 'connection-error'; // transport error: reset, refused, TLS, truncated stream

/**
 * Default server-side timeout of a stream: from 70 to 90 s. With the watchdog's 30 s on top, a half-open connection
 * is found within two minutes.
 */
const DEFAULT_TIMEOUT_SECONDS = { min: 70, spread: 20 };
/** How much longer than its timeout a stream may stay silent: the server's closing bytes may be late. */
const WATCHDOG_SLACK_MS = 30_000;

/** Thrown into the watch stream by the watchdog. */
class InactivityError extends Error {
  constructor(ms: number) {
    super(`watch stream received nothing for ${ms} ms`);
    this.name = 'InactivityError';
  }
}

/**
 * A list+watch loop over one resource, with a reflector store.
 *
 * @example
 * ```ts
 * const watcher = new Watcher(api, { ref: { group: '', version: 'v1', plural: 'nodes' } });
 * watcher.start((event) => { if (event.type === 'delete') cleanUpAfter(event.object); });
 * // ...
 * await watcher.stop();
 * ```
 */
export class Watcher<T extends KubeObject = KubeObject> {
  private readonly options: WatcherOptions;
  private readonly label: string;
  private readonly transform: CacheTransform;
  private transformFailures = 0;
  private items = new Map<string, T>();
  private currentState: WatcherState = 'idle';
  private resourceVersionSeen = '';
  private everSynced = false;
  private listFromEtcd = false;
  private streamTimeoutSeconds: number;
  private restartCount = 0;
  private consecutiveFailures = 0;
  private activityAt = 0;
  private progressAt = 0;
  private backoffUntil = 0;
  private stopping = false;
  private readonly stopController = new AbortController();
  private streamController: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private onEvent: (event: WatcherEvent<T>) => void = () => undefined;

  constructor(
    private readonly api: KubeApi,
    options: WatcherOptions,
  ) {
    this.options = options;
    this.label = resourceLabel(options.ref);
    this.transform = options.transform ?? stripManagedFields;
    this.streamTimeoutSeconds = this.nextStreamTimeout();
  }

  /** The reflector cache: the last object seen per key (`namespace/name` or `name`). */
  get store(): ReadonlyMap<string, T> {
    return this.items;
  }
  /** True once the first complete list was delivered (stays true across relists). */
  get synced(): boolean {
    return this.everSynced;
  }
  /** When the last bytes (list page or watch event) arrived, ms since the epoch; 0 before any. */
  get lastActivityAt(): number {
    return this.activityAt;
  }
  /** Reconnects and relists so far (every reason, including normal server timeouts). */
  get restarts(): number {
    return this.restartCount;
  }
  /** The current {@link WatcherState}. */
  get state(): WatcherState {
    return this.currentState;
  }
  /** The resourceVersion the next watch resumes from ('' before the first list). */
  get resourceVersion(): string {
    return this.resourceVersionSeen;
  }
  /** How long the current (or next) stream may stay silent before the watchdog restarts it, in ms. */
  get watchdogMs(): number {
    return this.options.inactivityTimeoutMs ?? this.streamTimeoutSeconds * 1000 + WATCHDOG_SLACK_MS;
  }

  /**
   * Liveness: the loop is running and making progress. Progress is any transition or received data; a loop stuck
   * anywhere longer than the watchdog plus the longest backoff is dead. An API server that is down does not make the
   * watcher unhealthy (it keeps backing off), so a liveness probe does not restart every pod during an outage.
   */
  healthy(now: number = Date.now()): boolean {
    if (this.currentState === 'idle' || this.currentState === 'stopped') return false;
    if (this.currentState === 'backoff') return now < this.backoffUntil + 60_000;
    // Watching is bounded by the watchdog, listing by the request timeout (60 s): beyond either, the loop is stuck.
    return now - this.progressAt < Math.max(this.longestWatchdogMs(), 120_000) + 60_000;
  }

  /** Starts the loop. Events arrive through `onEvent`, in order. Calling start twice is an error. */
  start(onEvent: (event: WatcherEvent<T>) => void): void {
    if (this.loop) throw new Error(`watcher for ${this.label} already started`);
    this.onEvent = onEvent;
    this.progressAt = Date.now();
    this.loop = this.run().catch((err: unknown) => {
      // run() handles every error itself; reaching here is a bug, and it must be loud.
      this.options.logger?.error({ err, resource: this.label }, 'watch loop crashed');
      this.transition('stopped');
    });
  }

  /** Stops the loop and closes the stream; resolves when no more events will be delivered. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopController.abort(new Error('watcher stopped'));
    this.streamController?.abort(new Error('watcher stopped'));
    await this.loop;
    this.transition('stopped');
  }

  private longestWatchdogMs(): number {
    const { min, spread } = DEFAULT_TIMEOUT_SECONDS;
    return this.options.inactivityTimeoutMs ?? (this.options.timeoutSeconds ?? min + spread) * 1000 + WATCHDOG_SLACK_MS;
  }

  private nextStreamTimeout(): number {
    if (this.options.timeoutSeconds !== undefined) return this.options.timeoutSeconds;
    const random = this.options.random ?? Math.random;
    return DEFAULT_TIMEOUT_SECONDS.min + Math.floor(random() * DEFAULT_TIMEOUT_SECONDS.spread);
  }

  private transition(next: WatcherState): void {
    this.currentState = next;
    this.progressAt = Date.now();
  }

  private touch(): void {
    this.activityAt = Date.now();
    this.progressAt = this.activityAt;
  }

  private restarted(reason: WatchRestartReason, err?: unknown): void {
    this.restartCount += 1;
    const level = reason === 'stream-ended' ? 'debug' : 'info';
    // A restart is an expected, retried condition: one line with the server's answer, no stack trace (a stack says
    // nothing about a 429 or a reset connection). Only errors of unknown origin keep theirs.
    const cause =
      err instanceof ApiError || isTransportError(err) ? { error: describeTransient(err) } : err ? { err } : {};
    this.options.logger?.[level]({ resource: this.label, reason, ...cause }, 'watch restarting');
    try {
      this.options.onRestart?.(reason);
    } catch {
      // A metrics callback must not break the loop.
    }
  }

  private emit(event: WatcherEvent<T>): void {
    try {
      this.onEvent(event);
    } catch (err) {
      this.options.logger?.error({ err, resource: this.label, event: event.type }, 'watch event consumer threw');
    }
  }

  private async run(): Promise<void> {
    let next: 'list' | 'watch' = 'list';
    while (!this.stopping) {
      if (next === 'list') {
        this.transition(this.everSynced ? 'relisting' : 'listing');
        try {
          if (!(await this.listAndCompare())) {
            // Too old to use; the next list reads etcd, which cannot be behind. No backoff: nothing failed.
            this.restarted('stale-list');
            continue;
          }
          this.consecutiveFailures = 0;
          next = 'watch';
        } catch (err) {
          if (this.stopping) break;
          this.restarted(reasonFor(err), err);
          await this.backoff(err);
        }
        continue;
      }
      this.transition('watching');
      const started = Date.now();
      let received = 0;
      this.streamTimeoutSeconds = this.nextStreamTimeout();
      try {
        await this.watchOnce(() => (received += 1));
        // A server that ends streams at once without sending anything must not turn this loop into a hot spin.
        const tooShort = received === 0 && Date.now() - started < (this.streamTimeoutSeconds * 1000) / 2;
        this.restarted('stream-ended');
        if (tooShort) await this.backoff(undefined);
        else this.consecutiveFailures = 0;
      } catch (err) {
        if (this.stopping) break;
        if (received > 0) this.consecutiveFailures = 0;
        const reason = reasonFor(err);
        this.restarted(reason, err);
        if (reason === 'gone') next = 'list';
        else await this.backoff(err);
      }
    }
  }

  /**
   * Lists every page, then reconciles the store with the result and emits the differences and `synced`. Resolves
   * false, having changed nothing, when the watch cache answered with a list older than what the watcher already saw;
   * the next call then reads etcd.
   */
  private async listAndCompare(): Promise<boolean> {
    const { ref, namespace, labelSelector, fieldSelector } = this.options;
    let limit: number | undefined = this.options.pageSize ?? 500;
    let expiries = 0;
    let items: T[] = [];
    let cont: string | undefined;
    let listVersion = '';
    for (;;) {
      let page: KubeList<T>;
      // '0': any version the watch cache holds (it ignores the page size then). Unset: a quorum read from etcd.
      // Continuation pages carry the version in their token.
      const resourceVersion = cont === undefined && !this.listFromEtcd ? '0' : undefined;
      try {
        // KubeApi.list takes no signal; racing it against stop() keeps shutdown from waiting on a dead API server.
        page = await untilAborted(
          this.api.list<T>(ref, { namespace, labelSelector, fieldSelector, limit, continue: cont, resourceVersion }),
          this.stopController.signal,
        );
      } catch (err) {
        if (cont === undefined || !isGone(err)) throw err;
        // The continue token outlived etcd compaction: start the list over, from etcd (as client-go does after a 410
        // on a list). If that keeps happening, fall back to one unpaginated list, which cannot expire halfway.
        this.restarted('list-expired', err);
        this.listFromEtcd = true;
        expiries += 1;
        if (expiries >= 3) limit = undefined;
        items = [];
        cont = undefined;
        continue;
      }
      if (this.stopping) return true;
      this.touch();
      for (const item of page.items) items.push(this.transformed(withTypeMeta(item, page)));
      // The page's items are now in `items` (transformed copies when the transform copies); drop the page's
      // reference so the untransformed originals can be collected while the next page is fetched.
      page.items = [];
      if (!page.metadata.continue) {
        listVersion = page.metadata.resourceVersion;
        break;
      }
      cont = page.metadata.continue;
    }
    if (!this.listFromEtcd && isListBehind(listVersion, this.resourceVersionSeen)) {
      this.options.logger?.info(
        { resource: this.label, listVersion, seenVersion: this.resourceVersionSeen },
        'the watch cache answered with a list older than what the watch saw; listing from etcd',
      );
      this.listFromEtcd = true;
      return false;
    }
    this.listFromEtcd = false;
    this.resourceVersionSeen = listVersion;
    const { deletes, upserts, store } = compareRelist(this.items, items, listVersion);
    this.items = store;
    for (const object of deletes) this.emit({ type: 'delete', object });
    for (const object of upserts) this.emit({ type: 'upsert', object });
    this.everSynced = true;
    this.emit({ type: 'synced' });
    return true;
  }

  /** One watch stream from the last resourceVersion, guarded by the inactivity watchdog. */
  private async watchOnce(onReceived: () => void): Promise<void> {
    const controller = new AbortController();
    this.streamController = controller;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (watchdog) clearTimeout(watchdog);
      const silenceMs = this.watchdogMs;
      watchdog = setTimeout(() => controller.abort(new InactivityError(silenceMs)), silenceMs);
    };
    arm();
    try {
      await this.api.watch<T>(
        this.options.ref,
        {
          resourceVersion: this.resourceVersionSeen,
          allowWatchBookmarks: true,
          timeoutSeconds: this.streamTimeoutSeconds,
          namespace: this.options.namespace,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
        },
        (event) => {
          if (this.stopping) return;
          arm();
          this.touch();
          onReceived();
          this.apply(event);
        },
        controller.signal,
      );
    } finally {
      clearTimeout(watchdog);
      this.streamController = undefined;
    }
  }

  /**
   * The cached form of an object. A transform that throws or loses the object's identity is a bug in the operator;
   * the watch must go on, so the object is kept as received and the error logged (the first few times only: one
   * faulty transform would otherwise log once per event).
   */
  private transformed(object: T): T {
    let result: unknown;
    let error: unknown;
    let threw = false;
    try {
      result = this.transform(object);
    } catch (err) {
      threw = true;
      error = err;
    }
    if (!threw && keepsIdentity(object, result)) return result as T;
    this.transformFailures += 1;
    if (this.transformFailures <= 3) {
      this.options.logger?.error(
        { err: error, resource: this.label, object: objectKey(object), failures: this.transformFailures },
        threw
          ? 'cache transform threw; caching the object untransformed'
          : 'cache transform changed the identity of an object (name, uid, resourceVersion, finalizers...); ' +
              'caching it untransformed',
      );
    }
    return object;
  }

  /** Applies one watch event to the store and forwards it. Throws to end the stream on ERROR events. */
  private apply(event: WatchEvent<T>): void {
    const object =
      event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED'
        ? this.transformed(event.object)
        : event.object;
    switch (event.type) {
      case 'BOOKMARK':
        if (object?.metadata?.resourceVersion) this.resourceVersionSeen = object.metadata.resourceVersion;
        return;
      case 'ERROR': {
        const status = object as unknown as { code?: number; message?: string; reason?: string };
        throw new ApiError(status.code ?? 500, `watch error: ${status.message ?? 'unknown'}`, status.reason);
      }
      case 'ADDED':
      case 'MODIFIED': {
        const key = objectKey(object);
        const before = this.items.get(key);
        this.resourceVersionSeen = object.metadata.resourceVersion;
        if (
          before &&
          before.metadata.uid === object.metadata.uid &&
          before.metadata.resourceVersion === object.metadata.resourceVersion
        ) {
          return;
        }
        this.items.set(key, object);
        this.emit({ type: 'upsert', object });
        return;
      }
      case 'DELETED': {
        this.resourceVersionSeen = object.metadata.resourceVersion;
        this.items.delete(objectKey(object));
        this.emit({ type: 'delete', object });
        return;
      }
      default:
        this.options.logger?.warn(
          { resource: this.label, type: (event as { type: unknown }).type },
          'unknown watch event',
        );
    }
  }

  /** Waits before the next attempt: Retry-After when the server sent one, else full-jitter backoff. */
  private async backoff(err: unknown): Promise<void> {
    if (this.stopping) return;
    this.transition('backoff');
    const retryAfter = err instanceof ApiError ? err.retryAfterSeconds : undefined;
    const delay = nextRetryDelay(this.consecutiveFailures, retryAfter, this.options.backoff, this.options.random);
    this.consecutiveFailures += 1;
    this.backoffUntil = Date.now() + delay;
    await sleep(delay, this.stopController.signal);
  }
}

/** Whether an error means "your resourceVersion is too old": HTTP 410 or an ERROR event with code 410. */
export function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.statusCode === 410;
}

function reasonFor(err: unknown): WatchRestartReason {
  if (err instanceof InactivityError) return 'inactivity';
  if (err instanceof ApiError) {
    if (err.statusCode === 410) return 'gone';
    if (err.statusCode === 429 || err.statusCode === 503) return 'throttled';
    return 'http-error';
  }
  return 'connection-error';
}

/** List items of built-in types come without apiVersion/kind; watch events carry them. Make both look alike. */
function withTypeMeta<T extends KubeObject>(item: T, page: KubeList<T>): T {
  const list = page as KubeList<T> & { apiVersion?: string; kind?: string };
  if (item.kind && item.apiVersion) return item;
  const kind = item.kind ?? (list.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined);
  return { ...item, apiVersion: item.apiVersion ?? list.apiVersion, kind };
}

/** Transport failures (reset, refused, timeouts, TLS): plain Errors with a Node.js error code. */
function isTransportError(err: unknown): err is Error & { code?: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** What a log line needs of an expected failure: the message and, for API errors, the status and reason. */
function describeTransient(err: unknown): Record<string, unknown> {
  if (err instanceof ApiError) {
    return { message: err.message, statusCode: err.statusCode, ...(err.reason ? { reason: err.reason } : {}) };
  }
  const error = err as Error & { code?: string };
  return { message: error.message, code: error.code };
}
