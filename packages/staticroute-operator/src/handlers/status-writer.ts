/**
 * Writes this node's entry in `status.nodes` and keeps the shared summary (`status.ready`, conditions) right.
 *
 * Guarantees:
 * - The entry is written with a merge patch of `status.nodes.<node>` only, so nodes never overwrite each other.
 * - The summary is written only by a check, and only when it is wrong: a check computes it from one copy of the
 *   object and writes it with that copy's resourceVersion as precondition, so a summary that is written always
 *   reflects every entry present then. A 409 ends the check: the newer write's own watch event brings the next one.
 * - A check follows this node's own entry write (from the copy the write returned) and every watch event of the
 *   object, which also covers writes by others that do not recompute the summary (a removed node's entry, a Node's
 *   labels). Not every node writes: the node ranked first (by name among all Nodes) checks after a short settling
 *   delay, the n-th n steps later (capped), by which time the first one's fix usually arrived and cancels the check.
 *   Events arriving meanwhile only update the copy the check will use, so the entries of nodes reporting within the
 *   delay cost one summary write; an event showing that someone else wrote the summary (while entries keep changing,
 *   it is not right for long) starts a later node's turn again, so that it only writes when nobody before it does.
 * So N nodes reporting on an object cost N entry writes and at most N summary writes (fewer when they report close
 *   together), by one node. Writing the summary right after each entry instead made the N writers contend (each loser
 *   re-reading and writing again): with 20 nodes and 500 objects the per-object status had not converged after 300 s.
 * - A node whose Node watch is not streaming (reconnecting after an outage or a cut) writes no summary: its Node list
 *   may still hold a Node deleted meanwhile, and two nodes counting different Node sets would keep correcting each
 *   other's `ready` (measured: 15-30 s of flipping after a 60 s cut followed by a Node removal).
 * Caveat: the selected-node count comes from this instance's Node list, which can lag others' for a moment.
 */
import type { KubeApi, KubeObject, Logger } from 'opkit';
import { selectorMatches } from '../logic/label-selector.js';
import { parseRouteSpec, type StaticRouteObject } from '../logic/spec.js';
import {
  sameSummary,
  summarizeStatus,
  type NodeOutcome,
  type NodeStatusEntry,
  type StatusCondition,
  type StatusSummary,
} from '../logic/status.js';
import { describeFailure, Outage, type OutageLog } from '../logic/outage.js';
import { isNewerVersion } from '../logic/resource-version.js';
import { isApiStatus, STATIC_ROUTES } from './resource.js';

interface StatusShape {
  nodes?: Record<string, NodeStatusEntry | null>;
  ready?: string;
  conditions?: StatusCondition[];
}

interface Job {
  object: StaticRouteObject;
  outcome?: NodeOutcome;
}

/** This node's entry for an outcome (the time is now). */
function entryOf(outcome: NodeOutcome, generation: number | undefined): NodeStatusEntry {
  return {
    state: outcome.state,
    message: outcome.message,
    observedGeneration: generation,
    lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    routes: outcome.routes,
  };
}

/** Whether a stored entry says what `entry` says (its time aside). */
function sameEntry(stored: NodeStatusEntry, entry: NodeStatusEntry): boolean {
  return (
    stored.state === entry.state &&
    stored.message === entry.message &&
    stored.observedGeneration === entry.observedGeneration &&
    stored.routes === entry.routes
  );
}

/** The summary as stored on `object`. */
function currentSummary(object: StaticRouteObject): StatusSummary {
  const status = (object.status ?? {}) as StatusShape;
  return { ready: status.ready ?? '', conditions: status.conditions ?? [] };
}

/** Delay of every summary check, so that entries reported close together cost one summary write. */
const REFRESH_SETTLE_MS = 1_000;
/** Delay of a summary check per rank of this node (see the module comment). */
const REFRESH_STEP_MS = 1_500;
/** Ranks beyond this one wait as long as it. */
const MAX_REFRESH_RANK = 8;
/** First delay before a failed write is tried again; doubled per consecutive failure of that object, up to the cap. */
const RETRY_INITIAL_MS = 500;
const RETRY_MAX_MS = 10_000;

/** Tuning of {@link StatusWriter}. */
export interface StatusWriterOptions {
  /** Objects written in parallel. Defaults to 4. */
  concurrency?: number;
  /** Delay of a summary check per rank of this node among all nodes. Defaults to 1.5 s. */
  refreshStepMs?: number;
  /** Delay of every summary check, before the rank's. Defaults to 1 s. */
  refreshSettleMs?: number;
  /**
   * Whether this node's Node list follows the cluster right now (its watch is streaming). While it does not, this
   * node writes no summary (the selected-node count could be stale) and checks again at its next turn. Defaults to
   * always.
   */
  nodeViewCurrent?: () => boolean;
}

export class StatusWriter {
  private readonly jobs = new Map<string, Job>();
  private readonly active = new Set<string>();
  /** Summary checks waiting for this node's turn, with the latest copy of their object. */
  private readonly refreshes = new Map<string, { object: StaticRouteObject; timer: ReturnType<typeof setTimeout> }>();
  /**
   * Per object, the outcome this node last reported, for which generation, and the resourceVersion its entry was
   * last written (or found) at: what an overwritten entry is restored from.
   */
  private readonly own = new Map<
    string,
    { generation: number | undefined; outcome: NodeOutcome; version: string | undefined }
  >();
  /**
   * Writes that failed (API server restarting, overloaded), waiting to be tried again with backoff, and the count of
   * consecutive failures per object. Without this, entries written during an outage waited for the agent's next full
   * pass (up to a minute) although the API was back within seconds.
   */
  private readonly retries = new Map<string, { job: Job; timer: ReturnType<typeof setTimeout> }>();
  private readonly failures = new Map<string, number>();
  private readonly idle: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly refreshStepMs: number;
  private readonly refreshSettleMs: number;
  private readonly nodeViewCurrent: () => boolean;
  private stopped = false;
  private readonly outage = new Outage();

  constructor(
    private readonly api: KubeApi,
    private readonly nodeName: string,
    private readonly logger: Logger,
    /** Labels of every known node, to count the nodes an object selects. */
    private readonly nodes: () => ReadonlyMap<string, Readonly<Record<string, string>>>,
    options: StatusWriterOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
    this.refreshStepMs = options.refreshStepMs ?? REFRESH_STEP_MS;
    this.refreshSettleMs = options.refreshSettleMs ?? REFRESH_SETTLE_MS;
    this.nodeViewCurrent = options.nodeViewCurrent ?? (() => true);
  }

  /** Queues this node's outcome for `object` (and a summary check). The latest call per object wins. */
  report(object: StaticRouteObject, outcome: NodeOutcome): void {
    this.own.set(object.metadata.name, { generation: object.metadata.generation, outcome, version: undefined });
    // The entry write re-checks the summary from a copy at least as new as any pending check's.
    this.cancelRefresh(object.metadata.name);
    this.enqueue(object.metadata.name, { object, outcome });
  }

  /** Forgets a deleted object. */
  forget(name: string): void {
    this.own.delete(name);
    this.cancelRefresh(name);
  }

  /**
   * Whether `object`, newer than this node's last write of its entry, shows that entry overwritten or removed by
   * someone else (a user writing status, a tool): the entry is this node's, so it is written again at once instead
   * of waiting for the next full pass. Copies not newer than that write are ignored: they may predate it.
   */
  private entryOverwritten(object: StaticRouteObject): NodeOutcome | undefined {
    const name = object.metadata.name;
    const own = this.own.get(name);
    if (!own || own.version === undefined || own.generation !== object.metadata.generation) return undefined;
    if (this.jobs.has(name) || this.active.has(name) || this.retries.has(name)) return undefined;
    if (!isNewerVersion(object.metadata.resourceVersion, own.version)) return undefined;
    const stored = ((object.status ?? {}) as StatusShape).nodes?.[this.nodeName] ?? undefined;
    return stored && sameEntry(stored, entryOf(own.outcome, own.generation)) ? undefined : own.outcome;
  }

  /**
   * After a watch event: writes this node's entry again when someone else overwrote it (see `entryOverwritten`);
   * otherwise re-checks the summary: nothing when it is right, else a write at this node's turn, from the latest copy
   * seen by then (a later event showing it fixed cancels the check).
   */
  refresh(object: StaticRouteObject): void {
    const name = object.metadata.name;
    if (this.stopped) return;
    const overwritten = object.metadata.deletionTimestamp ? undefined : this.entryOverwritten(object);
    if (overwritten) {
      this.cancelRefresh(name);
      this.enqueue(name, { object, outcome: overwritten });
      return;
    }
    const queued = this.jobs.get(name);
    if (queued) {
      // A queued write checks the summary anyway; let it start from the newest copy.
      if (isNewerVersion(object.metadata.resourceVersion, queued.object.metadata.resourceVersion)) {
        queued.object = object;
      }
      this.cancelRefresh(name);
      return;
    }
    if (object.metadata.deletionTimestamp || this.summaryIsRight(object)) {
      this.cancelRefresh(name);
      return;
    }
    const pending = this.refreshes.get(name);
    if (pending) {
      if (!isNewerVersion(object.metadata.resourceVersion, pending.object.metadata.resourceVersion)) return;
      const summaryWritten = !sameSummary(currentSummary(pending.object), currentSummary(object));
      pending.object = object;
      if (summaryWritten && this.rank() > 0) {
        // Someone (normally the first node in rank) is keeping the summary up while entries keep changing: this node
        // waits a whole turn again instead of adding a write that would meet a 409.
        clearTimeout(pending.timer);
        pending.timer = this.checkLater(name, this.refreshDelayMs());
      }
      return;
    }
    const delayMs = this.refreshDelayMs();
    if (delayMs === 0) {
      this.enqueueCheck(object);
      return;
    }
    this.refreshes.set(name, { object, timer: this.checkLater(name, delayMs) });
  }

  /** Defers a summary check to this node's next turn (unless one is waiting already). */
  private checkAtNextTurn(object: StaticRouteObject): void {
    const name = object.metadata.name;
    if (this.stopped || this.refreshes.has(name)) return;
    this.refreshes.set(name, { object, timer: this.checkLater(name, this.refreshDelayMs()) });
  }

  /** The timer of a summary check waiting for this node's turn. */
  private checkLater(name: string, delayMs: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      const due = this.refreshes.get(name);
      this.refreshes.delete(name);
      if (due) this.enqueueCheck(due.object);
      this.wakeIfIdle();
    }, delayMs);
    timer.unref();
    return timer;
  }

  /** True while entry or summary writes are queued or running. */
  get busy(): boolean {
    return this.jobs.size > 0 || this.active.size > 0;
  }

  /** Resolves when nothing is queued, waiting for its turn, or being written. */
  async flush(): Promise<void> {
    while (this.jobs.size > 0 || this.active.size > 0 || this.refreshes.size > 0) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
  }

  stop(): void {
    this.stopped = true;
    for (const name of [...this.refreshes.keys()]) this.cancelRefresh(name);
    for (const { timer } of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
    this.wakeIfIdle();
  }

  /** Queues a summary check only, keeping an entry write that is already queued. */
  private enqueueCheck(object: StaticRouteObject): void {
    const queued = this.jobs.get(object.metadata.name);
    this.enqueue(object.metadata.name, { object, outcome: queued?.outcome });
  }

  private cancelRefresh(name: string): void {
    const pending = this.refreshes.get(name);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.refreshes.delete(name);
    this.wakeIfIdle();
  }

  /** This node's rank by name among all known nodes (their count when it is not among them yet). */
  private rank(): number {
    const names = [...this.nodes().keys()].sort();
    const rank = names.indexOf(this.nodeName);
    return rank === -1 ? names.length : rank;
  }

  /** This node's turn for summary checks: the settling delay, then its rank in steps (capped). */
  private refreshDelayMs(): number {
    return this.refreshSettleMs + Math.min(this.rank(), MAX_REFRESH_RANK) * this.refreshStepMs;
  }

  private summaryIsRight(object: StaticRouteObject): boolean {
    const { summary, current } = this.summarize(object);
    return sameSummary(summary, current);
  }

  private wakeIfIdle(): void {
    if (this.stopped || (this.jobs.size === 0 && this.active.size === 0 && this.refreshes.size === 0)) {
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private enqueue(name: string, job: Job): void {
    if (this.stopped) return;
    const retry = this.retries.get(name);
    if (retry) {
      // The newer job supersedes the retry, but must not lose an entry the retry still owed.
      clearTimeout(retry.timer);
      this.retries.delete(name);
      job = { object: job.object, outcome: job.outcome ?? retry.job.outcome };
    }
    this.jobs.set(name, job);
    this.pump();
  }

  /**
   * Tries a failed write again after a capped, jittered exponential delay, unless a newer job for the object is
   * already queued (it carries the newest outcome, or takes over the failed one). A retry waiting for its time does not make the writer busy.
   */
  private scheduleRetry(name: string, job: Job): void {
    if (this.stopped) return;
    const queued = this.jobs.get(name);
    if (queued) {
      // A summary check queued while this write ran must not drop the entry it failed to write.
      queued.outcome ??= job.outcome;
      return;
    }
    const failures = (this.failures.get(name) ?? 0) + 1;
    this.failures.set(name, failures);
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** (failures - 1));
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    const timer = setTimeout(() => {
      const due = this.retries.get(name);
      if (!due) return;
      this.retries.delete(name);
      this.enqueue(name, due.job);
    }, delayMs);
    timer.unref();
    this.retries.set(name, { job, timer });
  }

  private pump(): void {
    for (const [name, job] of this.jobs) {
      if (this.active.size >= this.concurrency) return;
      if (this.active.has(name)) continue;
      this.jobs.delete(name);
      this.active.add(name);
      void this.write(job)
        .then(
          () => {
            this.failures.delete(name);
            this.logOutage(this.outage.succeeded(Date.now()));
          },
          (error: unknown) => {
            const log = this.outage.failed(describeFailure(error), Date.now());
            if (log) this.logOutage(log, name);
            else this.logger.debug({ error: describeFailure(error), object: name }, 'cannot write status (still)');
            this.scheduleRetry(name, job);
          },
        )
        .finally(() => {
          this.active.delete(name);
          this.wakeIfIdle();
          this.pump();
        });
    }
  }

  /**
   * Status writes fail together (the API server restarting or overloaded): one warning when they begin to fail, one
   * line when they work again. Each failed write is tried again with backoff (and by the agent's next full pass).
   */
  private logOutage(log: OutageLog | undefined, object?: string): void {
    if (!log) return;
    if (log.kind === 'began') {
      this.logger.warn({ error: log.error, object }, 'cannot write status: retrying with backoff');
    } else {
      this.logger.info(
        { failures: log.failures, durationMs: log.durationMs, lastError: log.lastError },
        'status writes work again',
      );
    }
  }

  /** The nodes `object` selects, or undefined when its selector cannot be evaluated (invalid spec). */
  private selectedNodes(object: StaticRouteObject): string[] | undefined {
    const parsed = parseRouteSpec(object.spec);
    if (!parsed.ok) return undefined;
    return [...this.nodes()]
      .filter(([, labels]) => selectorMatches(parsed.spec.nodeSelector, labels))
      .map(([name]) => name)
      .sort();
  }

  private summarize(object: StaticRouteObject): { summary: StatusSummary; current: StatusSummary } {
    const status = (object.status ?? {}) as StatusShape;
    const summary = summarizeStatus({
      generation: object.metadata.generation,
      entries: status.nodes ?? {},
      selectedNodes: this.selectedNodes(object),
      previousConditions: status.conditions,
      now: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    });
    return { summary, current: currentSummary(object) };
  }

  private async write(job: Job): Promise<void> {
    const { object, outcome } = job;
    if (object.metadata.deletionTimestamp) return;
    if (outcome) {
      const written = await this.writeEntry(object, outcome);
      if (written) this.refresh(written);
      return;
    }
    if (!this.nodeViewCurrent()) {
      // After a cut from the API server this node's Node list can still hold a Node deleted meanwhile: its summary
      // would contradict (and keep overwriting) the one written by nodes that follow the cluster.
      this.checkAtNextTurn(object);
      return;
    }
    const { summary, current } = this.summarize(object);
    if (sameSummary(summary, current)) return;
    try {
      await this.api.patch(
        STATIC_ROUTES,
        object.metadata.name,
        { metadata: { resourceVersion: object.metadata.resourceVersion }, status: summary },
        { type: 'merge', subresource: 'status' },
      );
    } catch (error) {
      // 404: the object is gone. 409: someone wrote since `object` was read; that write's event brings a new check.
      if (isApiStatus(error, 404) || isApiStatus(error, 409)) return;
      throw error;
    }
  }

  /** Notes the version at which this node's entry for `object` is known to be `outcome`. */
  private recordWritten(object: StaticRouteObject, outcome: NodeOutcome): void {
    const own = this.own.get(object.metadata.name);
    if (own?.outcome !== outcome) return;
    own.version = object.metadata.resourceVersion;
  }

  /** Writes this node's entry when it differs from the stored one; returns the object as written (or as known). */
  private async writeEntry(object: StaticRouteObject, outcome: NodeOutcome): Promise<StaticRouteObject | undefined> {
    const existing = ((object.status ?? {}) as StatusShape).nodes?.[this.nodeName] ?? undefined;
    const entry = entryOf(outcome, object.metadata.generation);
    if (existing && sameEntry(existing, entry)) {
      this.recordWritten(object, outcome);
      return object;
    }
    try {
      const written = (await this.api.patch<KubeObject>(
        STATIC_ROUTES,
        object.metadata.name,
        { status: { nodes: { [this.nodeName]: entry } } },
        { type: 'merge', subresource: 'status' },
      )) as unknown as StaticRouteObject;
      this.recordWritten(written, outcome);
      return written;
    } catch (error) {
      if (isApiStatus(error, 404)) return undefined;
      throw error;
    }
  }
}
