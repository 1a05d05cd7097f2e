/**
 * Leader election on a coordination.k8s.io/v1 Lease, in the manner of client-go's `leaderelection` package: one of
 * several replicas holds the Lease and does the work; the others stand by and take over when it stops or dies.
 *
 * ```
 *   idle --acquire()--> candidate --won the lease--> leading --renew deadline passed / lease taken--> lost
 *                           |                           |--stop()--> stopped (lease released if still ours)
 *                           |--stop() / signal--> stopped
 * ```
 *
 * - A candidate reads the Lease every retry period (jittered). It writes itself in when nobody holds it, when its
 *   holder did not renew it for the lease duration *as observed on this process's clock* (see `core/lease.ts`), or
 *   when it names this identity already. A missing Lease is created.
 * - Every write carries the `resourceVersion` it was decided on (a merge patch with `metadata.resourceVersion` is
 *   conditional: 409 when someone wrote in between), so two candidates never both win the same round.
 * - The leader renews every retry period, optimistically with its last copy (one request), reading the Lease again
 *   only after a conflict. It gives leadership up once the renew deadline passed since the last renewal that went
 *   through, even when a request hangs, or as soon as it sees another holder.
 * - `stop()` releases the Lease (no holder, 1 s duration) when the last copy still names this identity, so a
 *   standby takes over at its next attempt instead of after the lease duration.
 *
 * Guarantees: see `core/lease.ts` (a leader stops considering itself leader `leaseDuration - renewDeadline` before
 * anyone else may take over). Caveat: this assumes clocks that run at the same rate and a process that is not frozen
 * (a paused VM or a stopped process cannot notice that its deadline passed); work must stop promptly on `lost`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import {
  acquiredRecord,
  acquireRetryDelayMs,
  leaseState,
  mayAcquire,
  observeLease,
  releasedRecord,
  renewalTimeLeftMs,
  resolveLeaseTiming,
  type LeaseObservation,
  type LeaseSpec,
  type LeaseTiming,
} from '../core/lease.js';
import { sleep, untilAborted } from './abort.js';
import { ApiError, type KubeApi, type KubeObject, type ResourceRef } from './types.js';
import { permission, type PermissionDeclaration } from '../manifests/permissions.js';

/** The coordination.k8s.io/v1 Leases resource. */
export const LEASES: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true };

/** A Lease object. */
export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

/** Where a {@link LeaderElector} is (see the module comment for the transitions). */
export type LeaderElectionPhase = 'idle' | 'candidate' | 'leading' | 'lost' | 'stopped';

/** What a {@link LeaderElector} reports to `onTransition` (logs, metrics). */
export type LeadershipTransition =
  /** This identity now holds the Lease. */
  | { type: 'leading' }
  /** This identity held the Lease and no longer does (renew deadline passed, or another holder seen). */
  | { type: 'lost'; reason: string }
  /** The leader stepped down on `stop()` and released the Lease. */
  | { type: 'released' }
  /** The Lease names another holder than last observed (`undefined`: nobody). */
  | { type: 'holder'; holder: string | undefined };

/** Options of {@link LeaderElector}. Timing defaults are client-go's (15 s, 10 s, 2 s). */
export interface LeaderElectorOptions extends Partial<LeaseTiming> {
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease; every replica of one operator uses the same. */
  name: string;
  /** This candidate's identity, unique per process. Defaults to {@link defaultIdentity}. */
  identity?: string;
  logger?: Logger;
  /** Called on every transition, synchronously; must not throw. */
  onTransition?: (transition: LeadershipTransition) => void;
  /** Monotonic clock in ms, for the decisions. Defaults to `performance.now`. */
  now?: () => number;
  /** Uniform randoms in [0, 1) for the acquire jitter. Defaults to `Math.random`. */
  random?: () => number;
}

/** `<host name>_<10 random hex digits>`: readable in the Lease, and unique even for two processes on one host. */
export function defaultIdentity(prefix: string = hostname()): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** The outcome of one read-decide-write round. */
type Round = { held: true } | { held: false; holder: string | undefined } | { held: false; conflict: true };

/**
 * Campaigns for and holds one Lease.
 *
 * @example
 * ```ts
 * const elector = new LeaderElector(api, { namespace: 'kube-system', name: 'my-operator' });
 * await elector.acquire(signal);                       // resolves once this process leads
 * void elector.lost.then((reason) => stopWorking(reason));
 * // ... on shutdown, after the work stopped:
 * await elector.stop();                                 // releases the Lease: a standby takes over at once
 * ```
 */
export class LeaderElector {
  /** This candidate's identity, as written to `spec.holderIdentity`. */
  readonly identity: string;
  /** Resolves with the reason when leadership is lost (never when it ends by `stop()`). */
  readonly lost: Promise<string>;
  private readonly timing: LeaseTiming;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly stopController = new AbortController();
  private resolveLost!: (reason: string) => void;
  private currentPhase: LeaderElectionPhase = 'idle';
  /** The last copy of the Lease read or written. */
  private lease: Lease | undefined;
  private observation: LeaseObservation | undefined;
  private reportedHolder: string | undefined;
  private lastRenewalSentAt = 0;
  private failing = false;
  private renewing: Promise<void> | undefined;
  private inflight: Promise<unknown> | undefined;
  private stopping: Promise<void> | undefined;

  /**
   * The requests an election sends, as RBAC permissions: it reads its Lease (`get`), creates it when missing
   * (`create`: RBAC cannot limit a create by name) and renews, takes over and releases it with patches (`patch`).
   */
  static permissions(lease: Pick<LeaderElectorOptions, 'namespace' | 'name'>): PermissionDeclaration[] {
    return [
      permission(LEASES, ['get', 'patch'], { namespace: lease.namespace, resourceNames: [lease.name] }),
      permission(LEASES, ['create'], { namespace: lease.namespace }),
    ];
  }

  constructor(
    private readonly api: KubeApi,
    private readonly options: LeaderElectorOptions,
  ) {
    this.timing = resolveLeaseTiming(options);
    this.identity = options.identity ?? defaultIdentity();
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.lost = new Promise((resolve) => (this.resolveLost = resolve));
  }

  /** Where this elector is. */
  get phase(): LeaderElectionPhase {
    return this.currentPhase;
  }

  /** This identity holds the Lease (and has not passed its renew deadline). */
  get leading(): boolean {
    return this.currentPhase === 'leading';
  }

  /** The holder named by the last copy of the Lease read or written (undefined: nobody, or not read yet). */
  get holder(): string | undefined {
    return this.lease?.spec?.holderIdentity || undefined;
  }

  /**
   * Campaigns until this identity holds the Lease, then keeps renewing it in the background until {@link stop} or
   * until it is {@link lost}. Resolves once leading; rejects when `signal` aborts or `stop()` is called first.
   * Call it once.
   */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.currentPhase !== 'idle') throw new Error(`acquire() called in phase ${this.currentPhase}`);
    this.currentPhase = 'candidate';
    const abort = signal ? AbortSignal.any([signal, this.stopController.signal]) : this.stopController.signal;
    for (;;) {
      // A request that hangs must not hold up a stop: the round goes on alone (`stop()` waits for it, bounded).
      const round = await untilAborted(this.guardedRound('acquire', abort), abort);
      if (round?.held) break;
      await sleep(acquireRetryDelayMs(this.timing.retryPeriodSeconds, this.random()), abort);
    }
    this.currentPhase = 'leading';
    this.options.logger?.info({ lease: this.leaseName, identity: this.identity }, 'leader election: leading');
    this.report({ type: 'leading' });
    this.renewing = this.renewUntilLost();
  }

  /**
   * Stops campaigning or renewing. When `release` (default) and the last copy of the Lease names this identity,
   * writes it free so that a standby takes over at its next attempt. Never throws; idempotent.
   */
  stop(options: { release?: boolean } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.release ?? true);
    return this.stopping;
  }

  private get leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private async shutdown(release: boolean): Promise<void> {
    const wasLeading = this.currentPhase === 'leading';
    if (this.currentPhase !== 'lost') this.currentPhase = 'stopped';
    this.stopController.abort(new Error('leader election stopped'));
    await this.renewing;
    const deadlineMs = this.timing.renewDeadlineSeconds * 1000;
    // A write still under way may yet make us the holder: wait for it (bounded) so that the release covers it.
    if (this.inflight) await raceTimeout(this.inflight, deadlineMs);
    if (!release || this.holder !== this.identity) return;
    const released = await raceTimeout(this.release(), deadlineMs);
    if (released === true) {
      this.options.logger?.info({ lease: this.leaseName }, 'leader election: lease released');
      if (wasLeading) this.report({ type: 'released' });
    }
  }

  /** Writes the Lease free if it still names us; true when it did. */
  private async release(): Promise<boolean> {
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const lease: Lease | undefined = attempt === 0 ? this.lease : await this.read();
        if (!lease?.spec || lease.spec.holderIdentity !== this.identity) return false;
        try {
          this.lease = await this.write(lease, releasedRecord(lease.spec, new Date()));
          return true;
        } catch (error) {
          if (!isConflict(error)) throw error;
        }
      }
    } catch (error) {
      this.options.logger?.warn({ err: error, lease: this.leaseName }, 'leader election: cannot release the lease');
    }
    return false;
  }

  /** The leader's loop: renew every retry period; give up at the renew deadline or when another holder shows. */
  private async renewUntilLost(): Promise<void> {
    const abort = this.stopController.signal;
    const retryMs = this.timing.retryPeriodSeconds * 1000;
    const deadline = this.timing.renewDeadlineSeconds;
    for (;;) {
      // Sleep no further than the deadline, so that the loss is noticed when it happens, not a period later.
      await sleep(Math.min(retryMs, renewalTimeLeftMs(this.lastRenewalSentAt, deadline, this.now())), abort);
      if (abort.aborted) return;
      const left = renewalTimeLeftMs(this.lastRenewalSentAt, deadline, this.now());
      if (left === 0) return this.lose(`no renewal went through within ${deadline} s`);
      const round = await raceTimeout(this.guardedRound('renew', abort), left, abort);
      if (abort.aborted) return;
      if (round === 'timeout') return this.lose(`a renewal did not complete within ${deadline} s`);
      if (round && !round.held && !('conflict' in round)) {
        return this.lose(`the lease is held by ${round.holder ?? 'nobody'} now`);
      }
    }
  }

  private lose(reason: string): void {
    if (this.currentPhase !== 'leading') return;
    this.currentPhase = 'lost';
    this.options.logger?.error({ lease: this.leaseName, identity: this.identity, reason }, 'leader election: lost');
    this.report({ type: 'lost', reason });
    this.resolveLost(reason);
  }

  /** One round, with errors logged (undefined then); the round is remembered so that `stop()` can wait for it. */
  private async guardedRound(kind: 'acquire' | 'renew', abort: AbortSignal): Promise<Round | undefined> {
    const round = this.round();
    this.inflight = round.catch(() => undefined);
    try {
      const result = await round;
      if (this.failing) this.options.logger?.info({ lease: this.leaseName }, `leader election: ${kind} works again`);
      this.failing = false;
      return result;
    } catch (error) {
      if (abort.aborted) return undefined;
      // A standby retries every period for as long as the API is away: say it once, then at debug level.
      const level = kind === 'renew' || !this.failing ? 'warn' : 'debug';
      this.options.logger?.[level]({ err: error, lease: this.leaseName }, `leader election: ${kind} failed`);
      this.failing = true;
      return undefined;
    }
  }

  /** Read (unless renewing with the last copy), decide, write. */
  private async round(): Promise<Round> {
    const optimistic = this.currentPhase === 'leading' && this.lease !== undefined;
    const lease = optimistic ? this.lease : await this.read();
    if (!lease) return this.create();
    const result = await this.tryWrite(lease);
    if (!('conflict' in result) || !optimistic) return result;
    // Our copy was stale (someone wrote in between): decide again on a fresh one.
    const fresh = await this.read();
    return fresh ? this.tryWrite(fresh) : this.create();
  }

  private async tryWrite(lease: Lease): Promise<Round> {
    const spec = lease.spec ?? {};
    const now = this.now();
    this.observe(lease, now);
    const state = leaseState(
      this.observation as LeaseObservation,
      this.identity,
      now,
      this.timing.leaseDurationSeconds,
    );
    if (!mayAcquire(state)) return { held: false, holder: spec.holderIdentity || undefined };
    const sentAt = this.now();
    try {
      const written = await this.write(
        lease,
        acquiredRecord(spec, this.identity, this.timing.leaseDurationSeconds, new Date()),
      );
      this.accept(written, sentAt);
      return { held: true };
    } catch (error) {
      if (isConflict(error)) return { held: false, conflict: true };
      throw error;
    }
  }

  private async create(): Promise<Round> {
    const { namespace, name } = this.options;
    const sentAt = this.now();
    try {
      const created = await this.api.create<Lease>(
        LEASES,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: acquiredRecord(undefined, this.identity, this.timing.leaseDurationSeconds, new Date()),
        },
        namespace,
      );
      this.accept(created, sentAt);
      return { held: true };
    } catch (error) {
      // Another candidate created it first: the next round reads it.
      if (isConflict(error)) return { held: false, conflict: true };
      throw error;
    }
  }

  private async read(): Promise<Lease | undefined> {
    try {
      const lease = await this.api.get<Lease>(LEASES, this.options.name, this.options.namespace);
      this.lease = lease;
      return lease;
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** A conditional write: the merge patch carries the resourceVersion it was decided on (409 if it moved). */
  private write(lease: Lease, spec: LeaseSpec): Promise<Lease> {
    const patch = { metadata: { resourceVersion: lease.metadata.resourceVersion }, spec };
    return this.api.patch<Lease>(LEASES, this.options.name, patch, {
      namespace: this.options.namespace,
      type: 'merge',
    });
  }

  /** Our own write went through: our record, observed at the time it was sent. */
  private accept(lease: Lease, sentAt: number): void {
    this.lease = lease;
    this.observation = { record: { ...(lease.spec ?? {}) }, observedAtMs: sentAt };
    this.lastRenewalSentAt = sentAt;
    this.noteHolder(this.identity);
  }

  private observe(lease: Lease, now: number): void {
    this.observation = observeLease(this.observation, lease.spec ?? {}, now);
    this.noteHolder(lease.spec?.holderIdentity || undefined);
  }

  private noteHolder(holder: string | undefined): void {
    if (holder === this.reportedHolder) return;
    this.reportedHolder = holder;
    if (holder !== this.identity) {
      this.options.logger?.info({ lease: this.leaseName, holder: holder ?? null }, 'leader election: lease holder');
    }
    this.report({ type: 'holder', holder });
  }

  private report(transition: LeadershipTransition): void {
    try {
      this.options.onTransition?.(transition);
    } catch (error) {
      this.options.logger?.error({ err: error }, 'leader election: a transition listener threw');
    }
  }
}

function isConflict(error: unknown): boolean {
  return error instanceof ApiError && error.statusCode === 409;
}

/**
 * Settles like `promise`, or resolves `'timeout'` after `ms` or when `signal` aborts, whichever comes first (the
 * promise goes on; its result is then ignored).
 */
async function raceTimeout<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    onAbort = () => resolve('timeout');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
