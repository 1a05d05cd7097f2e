/**
 * Writes this node's entry in `status.nodes` and keeps the shared summary (`status.ready`, conditions) right.
 *
 * Guarantees:
 * - The entry is written with a merge patch of `status.nodes.<node>` only, so nodes never overwrite each other.
 * - The summary is written only with a resourceVersion precondition and computed from the object at exactly that
 *   version, so a successful summary write always reflects every entry present then. After the last entry write,
 *   its writer (or whoever wrote right after it, from the same state) leaves the correct summary; a 409 means a newer
 *   write happened and the summary is recomputed from a fresh read (bounded attempts). Nodes finishing at the same
 *   moment therefore converge without a coordinator.
 * - Every watch event of the object also re-checks the summary (see `refresh`), which covers writes by others that
 *   do not recompute it (the framework's, a removed node's entry).
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

const MAX_SUMMARY_ATTEMPTS = 6;

export class StatusWriter {
  private readonly jobs = new Map<string, Job>();
  private readonly active = new Set<string>();
  private readonly idle: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly api: KubeApi,
    private readonly nodeName: string,
    private readonly logger: Logger,
    /** Labels of every known node, to count the nodes an object selects. */
    private readonly nodes: () => ReadonlyMap<string, Readonly<Record<string, string>>>,
    private readonly concurrency = 4,
  ) {}

  /** Queues this node's outcome for `object` (and a summary check). The latest call per object wins. */
  report(object: StaticRouteObject, outcome: NodeOutcome): void {
    this.enqueue(object.metadata.name, { object, outcome });
  }

  /** Queues a summary check only (after a watch event), unless an entry write is already queued. */
  refresh(object: StaticRouteObject): void {
    const queued = this.jobs.get(object.metadata.name);
    this.enqueue(object.metadata.name, { object, outcome: queued?.outcome });
  }

  /** Resolves when nothing is queued or being written. */
  async flush(): Promise<void> {
    while (this.jobs.size > 0 || this.active.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  stop(): void {
    this.stopped = true;
  }

  private enqueue(name: string, job: Job): void {
    if (this.stopped) return;
    this.jobs.set(name, job);
    this.pump();
  }

  private pump(): void {
    for (const [name, job] of this.jobs) {
      if (this.active.size >= this.concurrency) return;
      if (this.active.has(name)) continue;
      this.jobs.delete(name);
      this.active.add(name);
      void this.write(job)
        .catch((error: unknown) => this.logger.warn({ err: error, object: name }, 'cannot write status'))
        .finally(() => {
          this.active.delete(name);
          if (this.jobs.size === 0 && this.active.size === 0) for (const resolve of this.idle.splice(0)) resolve();
          this.pump();
        });
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
    return { summary, current: { ready: status.ready ?? '', conditions: status.conditions ?? [] } };
  }

  private async write(job: Job): Promise<void> {
    let object: StaticRouteObject | undefined = job.object;
    if (object.metadata.deletionTimestamp) return;
    if (job.outcome) object = await this.writeEntry(object, job.outcome);
    for (let attempt = 0; object && attempt < MAX_SUMMARY_ATTEMPTS; attempt++) {
      if (object.metadata.deletionTimestamp) return;
      const { summary, current } = this.summarize(object);
      if (sameSummary(summary, current)) return;
      try {
        await this.api.patch(
          STATIC_ROUTES,
          object.metadata.name,
          { metadata: { resourceVersion: object.metadata.resourceVersion }, status: summary },
          { type: 'merge', subresource: 'status' },
        );
        return;
      } catch (error) {
        if (isApiStatus(error, 404)) return;
        if (!isApiStatus(error, 409)) throw error;
        // Someone wrote since `object` was read: recompute from what is there now.
        object = await this.read(object.metadata.name);
      }
    }
  }

  private async read(name: string): Promise<StaticRouteObject | undefined> {
    try {
      return (await this.api.get<KubeObject>(STATIC_ROUTES, name)) as unknown as StaticRouteObject;
    } catch (error) {
      if (isApiStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /** Writes this node's entry when it differs from the stored one; returns the object as written (or as known). */
  private async writeEntry(object: StaticRouteObject, outcome: NodeOutcome): Promise<StaticRouteObject | undefined> {
    const existing = ((object.status ?? {}) as StatusShape).nodes?.[this.nodeName] ?? undefined;
    const entry: NodeStatusEntry = {
      state: outcome.state,
      message: outcome.message,
      observedGeneration: object.metadata.generation,
      lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      routes: outcome.routes,
    };
    if (
      existing &&
      existing.state === entry.state &&
      existing.message === entry.message &&
      existing.observedGeneration === entry.observedGeneration &&
      existing.routes === entry.routes
    ) {
      return object;
    }
    try {
      const written = await this.api.patch<KubeObject>(
        STATIC_ROUTES,
        object.metadata.name,
        { status: { nodes: { [this.nodeName]: entry } } },
        { type: 'merge', subresource: 'status' },
      );
      return written as unknown as StaticRouteObject;
    } catch (error) {
      if (isApiStatus(error, 404)) return undefined;
      throw error;
    }
  }
}
