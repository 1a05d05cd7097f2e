/**
 * The coalescing report writer: one object per instance (e.g. a per-node report named after the node), written by
 * that instance alone.
 *
 * This is how a DaemonSet scales (the design Cilium's per-node objects and kubelet's per-node Lease follow): an agent
 * never writes a shared object. Its outcomes for every object it handles go into its own report, as entries of a map
 * under `status.<entriesField>`, and a single aggregator turns the reports into whatever users read.
 *
 * Guarantees:
 * - One writer per report, so no write ever conflicts: entries are sent as a JSON merge patch of the changed keys
 *   only (each entry replaced whole: keys an entry lost are sent as null), and removed entries as null.
 * - Coalesced: no write when nothing changed; at most one write per `minIntervalMs` however many entries change
 *   (a burst of 200 changes is one or a few writes, not 200). Callers never wait for a write.
 * - Self-healing: the first write and every heartbeat re-read the stored report and write the difference, so a report
 *   deleted or edited by someone else (or left over from before a restart, with entries of objects gone meanwhile)
 *   is brought back to exactly the desired entries within one heartbeat. A missing report is created.
 * - Failed writes are retried with capped, jittered exponential backoff; the entries changed meanwhile are folded in.
 *   An outage is logged once when it begins and once when it ends.
 * Caveat: entries live in one object, which etcd limits to about 1.5 MB: keep entries small (hundreds of bytes at
 * most) and omit what the reader can derive.
 */
import type { Logger } from 'pino';
import { backoffDelay, resolveBackoff, type BackoffPolicy } from '../core/backoff.js';
import { replacementPatch, sameJson } from '../core/merge-patch.js';
import { ApiError, type KubeApi, type KubeObject, type ResourceRef } from '../kube/types.js';
import { permission, type PermissionDeclaration } from '../manifests/permissions.js';

/** The report object without its status: what a create sends besides the entries. */
export interface ReportTemplate {
  apiVersion: string;
  kind: string;
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
}

/** Options of {@link ReportWriter}. */
export interface ReportWriterOptions<E> {
  api: KubeApi;
  /** The report's resource (usually a cluster-scoped custom resource without a status subresource). */
  resource: ResourceRef;
  /** The report's name: this instance's (e.g. the node name). */
  name: string;
  /** The report's namespace, for a namespaced resource. */
  namespace?: string;
  /** The object a create sends (metadata.name is set by the writer). Called at each create, e.g. for owner references. */
  template: () => ReportTemplate;
  /** Key of the entries map under `status`. */
  entriesField: string;
  /** Fields computed from all entries, written under `status` with every write (e.g. counts for printer columns). */
  summarize?: (entries: ReadonlyMap<string, E>) => Record<string, unknown>;
  /** Key under `status` holding the time of the last write (refreshed by the heartbeat). Defaults to `heartbeatTime`. */
  heartbeatField?: string;
  /** Minimum time between two writes. Defaults to 1000 ms. */
  minIntervalMs?: number;
  /** Interval of the heartbeat (a re-read and a write of the time), 0 for none. Defaults to 60 s. */
  heartbeatMs?: number;
  /** Backoff of failed writes. Defaults to 500 ms doubling to 30 s, 50 % jitter. */
  backoff?: Partial<BackoffPolicy>;
  logger: Logger;
  /** Called after every write attempt (for metrics). */
  onWrite?: (outcome: 'ok' | 'error') => void;
}

const DEFAULT_WRITE_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** What the stored report's status looks like to the writer. */
type StoredStatus = Record<string, unknown> | undefined;

/** Writes one instance's report, coalescing changes (see the module comment). */
export class ReportWriter<E> {
  private readonly desired = new Map<string, E>();
  /** The entries as last written (or read back); undefined when the stored report must be re-read first. */
  private written: Map<string, E> | undefined;
  private readonly dirty = new Set<string>();
  private readonly minIntervalMs: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatField: string;
  private readonly backoff: BackoffPolicy;
  private lastWriteAt = 0;
  private failures = 0;
  private writing = false;
  private heartbeatDue = false;
  /** `summarize`'s output as last written (JSON); undefined before the first write. */
  private writtenSummary: string | undefined;
  /** Set by {@link refreshSummary}: the next write looks whether the summary changed. */
  private summaryCheck = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private started = false;
  private stopped = false;
  private outageSince: number | undefined;
  private idleWaiters: Array<() => void> = [];
  /** Writes that went through (for tests and logs). */
  writes = 0;

  /**
   * The requests a writer sends, as RBAC permissions: it reads the report back (`get`: the first write and every
   * heartbeat), creates it when missing (`create`) and writes entries with merge patches (`patch`).
   */
  static permissions(report: { resource: ResourceRef; namespace?: string }): PermissionDeclaration[] {
    const namespace = report.resource.namespaced ? report.namespace : undefined;
    return [permission(report.resource, ['get', 'create', 'patch'], namespace === undefined ? {} : { namespace })];
  }

  constructor(private readonly options: ReportWriterOptions<E>) {
    this.minIntervalMs = options.minIntervalMs ?? 1_000;
    this.heartbeatMs = options.heartbeatMs ?? 60_000;
    this.heartbeatField = options.heartbeatField ?? 'heartbeatTime';
    this.backoff = resolveBackoff(options.backoff, DEFAULT_WRITE_BACKOFF);
  }

  /** The entry last set for `key`. */
  get(key: string): E | undefined {
    return this.desired.get(key);
  }

  /** Keys of every entry set. */
  keys(): IterableIterator<string> {
    return this.desired.keys();
  }

  /** Sets the entry of `key` (a write follows within `minIntervalMs` when it differs from the stored one). */
  set(key: string, entry: E): void {
    if (sameJson(this.desired.get(key), entry)) return;
    this.desired.set(key, entry);
    this.markDirty(key);
  }

  /** Removes the entry of `key`. */
  delete(key: string): void {
    if (!this.desired.delete(key)) return;
    this.markDirty(key);
  }

  /**
   * Says that what `summarize` returns may have changed although no entry did (it reads state of its own, e.g. a
   * per-instance health view): the summary is compared with the one last written and written, coalesced like entry
   * changes, only when it differs.
   */
  refreshSummary(): void {
    this.summaryCheck = true;
    this.schedule();
  }

  /** Starts writing: the stored report is read and brought to the desired entries at once, then kept so. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
    if (this.heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => {
        this.heartbeatDue = true;
        // The heartbeat re-reads the report: whatever someone else did to it is repaired.
        this.written = undefined;
        this.schedule();
      }, this.heartbeatMs);
      this.heartbeatTimer.unref();
    }
  }

  /** True while the stored report may differ from the desired entries. */
  get pending(): boolean {
    return this.writing || this.written === undefined || this.summaryCheck || this.changedKeys().length > 0;
  }

  /** Resolves once the stored report holds the desired entries (or the writer stops). */
  async flush(): Promise<void> {
    while (this.pending && !this.stopped) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** Stops writing (a write on the wire completes). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeatTimer);
    this.wakeIdle();
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    this.schedule();
  }

  private changedKeys(): string[] {
    if (this.written === undefined) return [...this.dirty];
    const written = this.written;
    return [...this.dirty].filter((key) => !sameJson(written.get(key), this.desired.get(key)));
  }

  /** Plans the next write: after `minIntervalMs` since the last one, or the backoff after a failure. */
  private schedule(delayMs?: number): void {
    if (!this.started || this.stopped || this.writing || this.timer) return;
    const wait =
      delayMs ??
      (this.failures > 0
        ? backoffDelay(this.backoff, this.failures)
        : Math.max(0, this.lastWriteAt + this.minIntervalMs - Date.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, wait);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    if (this.stopped || this.writing) return;
    const changed = this.changedKeys();
    this.summaryCheck = false;
    const summary = this.options.summarize?.(this.desired) ?? {};
    const summaryJson = JSON.stringify(summary);
    if (
      this.written !== undefined &&
      changed.length === 0 &&
      !this.heartbeatDue &&
      summaryJson === this.writtenSummary
    ) {
      this.dirty.clear();
      this.wakeIdle();
      return;
    }
    this.writing = true;
    // What this write sends: the values as they are now. Changes made while it is on the wire stay dirty.
    const snapshot = new Map<string, E | undefined>();
    try {
      if (this.written === undefined) {
        for (const key of this.desired.keys()) snapshot.set(key, this.desired.get(key));
        await this.sync(snapshot, summary);
      } else {
        for (const key of changed) snapshot.set(key, this.desired.get(key));
        await this.patchEntries(this.written, snapshot, summary);
      }
      this.writtenSummary = summaryJson;
      this.writes++;
      this.lastWriteAt = Date.now();
      this.heartbeatDue = false;
      for (const [key, value] of snapshot) {
        if (sameJson(this.desired.get(key), value)) this.dirty.delete(key);
      }
      this.recovered();
      this.options.onWrite?.('ok');
    } catch (error) {
      this.options.onWrite?.('error');
      const syncing = this.written === undefined;
      if (!syncing && error instanceof ApiError && error.statusCode === 404) {
        // Deleted by someone else meanwhile: re-read (and create) at once.
        this.written = undefined;
      } else {
        // A create that met a namesake (409) re-reads at the next attempt; everything else waits for the backoff.
        this.written = undefined;
        this.failed(error);
      }
    } finally {
      this.writing = false;
    }
    if (this.pending) this.schedule(this.failures === 0 && this.written === undefined ? 0 : undefined);
    else this.wakeIdle();
  }

  /** Re-reads the stored report and writes exactly the difference (or creates it). */
  private async sync(snapshot: ReadonlyMap<string, E | undefined>, summary: Record<string, unknown>): Promise<void> {
    const { api, resource, name, namespace, entriesField } = this.options;
    let stored: KubeObject | undefined;
    try {
      stored = await api.get<KubeObject>(resource, name, namespace);
    } catch (error) {
      if (!(error instanceof ApiError && error.statusCode === 404)) throw error;
    }
    const entries = new Map<string, E>();
    for (const [key, value] of snapshot) if (value !== undefined) entries.set(key, value);
    if (!stored) {
      const template = this.options.template();
      const body = {
        ...template,
        metadata: { ...template.metadata, name, ...(namespace ? { namespace } : {}) },
        status: { ...this.statusFields(summary), [entriesField]: Object.fromEntries(entries) },
      };
      await api.create(resource, body, namespace);
      this.written = entries;
      return;
    }
    const storedEntries = ((stored.status as StoredStatus)?.[entriesField] ?? {}) as Record<string, E>;
    const written = new Map(Object.entries(storedEntries));
    // Entries stored but no longer desired are removed by the patch too.
    const all = new Map(snapshot);
    for (const key of written.keys()) if (!all.has(key)) all.set(key, this.desired.get(key));
    await this.patchEntries(written, all, summary);
  }

  /** Sends the entries of `changes` as a merge patch relative to `written`, and records them as written. */
  private async patchEntries(
    written: Map<string, E>,
    changes: ReadonlyMap<string, E | undefined>,
    summary: Record<string, unknown>,
  ): Promise<void> {
    const { api, resource, name, namespace, entriesField } = this.options;
    const entries: Record<string, unknown> = {};
    for (const [key, value] of changes) entries[key] = replacementPatch(written.get(key), value);
    await api.patch(
      resource,
      name,
      { status: { ...this.statusFields(summary), [entriesField]: entries } },
      { type: 'merge', ...(namespace ? { namespace } : {}) },
    );
    for (const [key, value] of changes) {
      if (value === undefined) written.delete(key);
      else written.set(key, value);
    }
    this.written = written;
  }

  private statusFields(summary: Record<string, unknown>): Record<string, unknown> {
    return {
      ...summary,
      [this.heartbeatField]: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
  }

  private failed(error: unknown): void {
    this.failures++;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.options.logger.warn(
        { err: error instanceof Error ? error.message : String(error), report: this.options.name },
        'cannot write the report: retrying with backoff',
      );
    } else {
      this.options.logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'report write failed');
    }
  }

  private recovered(): void {
    if (this.outageSince !== undefined) {
      this.options.logger.info(
        { failures: this.failures, durationMs: Date.now() - this.outageSince },
        'report writes work again',
      );
    }
    this.outageSince = undefined;
    this.failures = 0;
  }

  private wakeIdle(): void {
    if (this.pending && !this.stopped) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
