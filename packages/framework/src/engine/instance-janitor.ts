/**
 * Node scope: releasing what dead instances hold.
 *
 * Every instance watches core/v1 Nodes (the runtime's one {@link NodeWatch}, shared with handlers). When a Node is deleted, and after every (re)list of Nodes (to catch nodes
 * that went away while this instance was down), the survivors sweep: for every object of every node-scoped
 * operator, finalizers and status entries of instances without a Node are removed. All survivors do it; the writes
 * are idempotent and guarded (`test` ops on the exact finalizer; merge patch deleting one status key), so concurrent
 * sweeps never remove anything else and the object is released as soon as the last live instance let go.
 *
 * Guarantees / race-freedom: candidates are computed from the object cache, then confirmed against a fresh list of
 * Nodes taken after that snapshot. A finalizer in the snapshot was added by an instance whose Node existed at that
 * time, so it appears in the fresh list unless it was deleted since: a new node's finalizer is never mistaken for a
 * dead one.
 * Caveat: the instance id must be the Node name (the CLI's default is `$NODE_NAME`).
 */
import type { Logger } from 'pino';
import { deadInstanceFinalizers, deadStatusEntries } from '../core/instances.js';
import { instanceEntryRemoval, mergePatches } from '../core/status.js';
import type { KubeApi, KubeObject } from '../kube/types.js';
import type { OperatorController } from './controller.js';
import { NODES, type NodeWatch } from './node-watch.js';

/** Options of {@link InstanceJanitor}. */
export interface InstanceJanitorOptions {
  api: KubeApi;
  controllers: OperatorController[];
  /** The runtime's Nodes watch (started and stopped by the runtime). */
  nodes: NodeWatch;
  instanceId: string;
  logger: Logger;
  /** Delay that batches bursts of Node events into one sweep. Defaults to 500 ms. */
  debounceMs?: number;
}

/** Follows the Nodes watch and sweeps dead instances' finalizers and status entries. */
export class InstanceJanitor {
  private unsubscribe: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sweeping: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Completed sweeps (for tests and logs). */
  sweeps = 0;

  constructor(private readonly options: InstanceJanitorOptions) {}

  /** Starts following Node deletions and relists (and sweeps once soon if the Nodes were listed already). */
  start(): void {
    this.unsubscribe ??= this.options.nodes.subscribe((change) => {
      if (change.type === 'delete' || change.type === 'synced') this.requestSweep();
    });
    if (this.options.nodes.synced) this.requestSweep();
  }

  /** Asks for a sweep soon (debounced; a sweep in progress is followed by one more). */
  requestSweep(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runSweep(), this.options.debounceMs ?? 500);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    await this.sweeping;
  }

  private async runSweep(): Promise<void> {
    if (this.sweeping) {
      this.again = true;
      return;
    }
    this.sweeping = this.sweep()
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'dead-instance sweep failed; retrying later');
        this.again = true;
      })
      .finally(() => {
        this.sweeping = undefined;
        this.sweeps += 1;
        if (this.again && !this.stopped) {
          this.again = false;
          this.requestSweep();
        }
      });
    await this.sweeping;
  }

  private async sweep(): Promise<void> {
    if (!this.options.nodes.synced) return;
    const cachedLive = this.liveIds(this.options.nodes.list());
    const candidates = this.options.controllers
      .filter((controller) => controller.synced)
      .flatMap((controller) =>
        controller
          .objects()
          .map((object) => ({ controller, object }))
          .filter(({ object }) => this.deadIn(controller, object, cachedLive).any),
      );
    if (candidates.length === 0) return;
    const fresh = await this.options.api.list<KubeObject>(NODES);
    const live = this.liveIds(fresh.items);
    for (const { controller, object } of candidates) {
      const dead = this.deadIn(controller, object, live);
      if (!dead.any) continue;
      this.options.logger.info(
        { object: object.metadata.name, finalizers: dead.finalizers, statusEntries: dead.statusEntries },
        'releasing finalizers and status entries of instances whose Node is gone',
      );
      let current: KubeObject | 'gone' = object;
      if (dead.finalizers.length > 0) {
        current = await controller.writer.patchMetadata(object, { removeFinalizers: dead.finalizers });
      }
      if (current !== 'gone' && dead.statusEntries.length > 0) {
        const field = controller.definition.instanceStatusField;
        const body = dead.statusEntries
          .map((id) => instanceEntryRemoval(field, id))
          .reduce((all, one) => mergePatches(all, one), {} as Record<string, unknown>);
        await controller.writer.patchStatus(current, body as { status: Record<string, unknown> });
      }
    }
  }

  private liveIds(nodes: readonly KubeObject[]): Set<string> {
    const ids = new Set(nodes.map((node) => node.metadata.name));
    // Never sweep ourselves, even when this instance's id is not (yet) a Node name.
    ids.add(this.options.instanceId);
    return ids;
  }

  private deadIn(
    controller: OperatorController,
    object: KubeObject,
    live: Set<string>,
  ): { finalizers: string[]; statusEntries: string[]; any: boolean } {
    const { prefix, instanceStatusField } = controller.definition;
    const finalizers = deadInstanceFinalizers(object.metadata.finalizers, prefix, live);
    const statusEntries = deadStatusEntries(object.status, instanceStatusField, live);
    return { finalizers, statusEntries, any: finalizers.length > 0 || statusEntries.length > 0 };
  }
}
