/**
 * The aggregator as its Deployment runs it (deploy/aggregator.yaml): two replicas, one leading through the Lease, and
 * every replica that exits started again (a Deployment's pod restarts). An aggregator that loses its Lease (its
 * renewals failed for the renew deadline, e.g. while the API server restarts) exits non-zero by design and comes back
 * as a standby; one that is SIGKILLed leaves its Lease to expire, then the standby takes over.
 */
import type { AggregatorProcess, E2eCluster } from '../../e2e/support/cluster.js';
import { parseLogs, type LogEntry } from './observe.js';
import { sleep } from './churn.js';

const LEASE = ['lease', 'k8s-staticroute-aggregator', '-n', 'static-routes'];

/** One exit of a supervised replica. */
export interface AggregatorExit {
  identity: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds since the supervisor started. */
  atMs: number;
}

export interface AggregatorSupervisorOptions {
  replicas?: number;
  /** Delay before an exited replica is started again (default 1 s). */
  restartDelayMs?: number;
  env?: Record<string, string>;
}

/** Keeps `replicas` aggregators running; see the module comment. */
export class AggregatorSupervisor {
  /** Every replica ever started, in start order. */
  readonly started: AggregatorProcess[] = [];
  readonly exits: AggregatorExit[] = [];
  private readonly live = new Set<AggregatorProcess>();
  private stopping = false;
  private readonly startedAt = Date.now();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly cluster: E2eCluster,
    private readonly options: AggregatorSupervisorOptions = {},
  ) {}

  /** Starts the replicas (resolves once each is alive). */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.replicas ?? 2 }, () => this.startOne()));
  }

  /** The replicas running now. */
  get running(): AggregatorProcess[] {
    return [...this.live];
  }

  /** Who holds the Lease (its identity), if anyone. */
  async holder(): Promise<string | undefined> {
    const result = await this.cluster.kubectl(['get', ...LEASE, '-o', 'jsonpath={.spec.holderIdentity}']);
    return result.code === 0 && result.stdout.trim() !== '' ? result.stdout.trim() : undefined;
  }

  /** The running replica that holds the Lease, if any. */
  async leader(): Promise<AggregatorProcess | undefined> {
    const holder = await this.holder();
    return this.running.find((aggregator) => aggregator.identity === holder);
  }

  /** SIGKILLs the leading replica (if one leads); resolves with its identity once it exited. */
  async killLeader(): Promise<string | undefined> {
    const leader = await this.leader();
    if (!leader) return undefined;
    const exited = new Promise((resolve) => leader.child.once('exit', resolve));
    leader.child.kill('SIGKILL');
    await exited;
    return leader.identity;
  }

  /** Stops supervising and stops every replica (gracefully). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.pending]);
    await Promise.all(this.running.map((aggregator) => aggregator.stop()));
  }

  /** Log lines of every replica that ever ran. */
  logs(): Map<string, LogEntry[]> {
    return new Map(this.started.map((aggregator) => [aggregator.identity, parseLogs(aggregator.logs())]));
  }

  private async startOne(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      try {
        const aggregator = await this.cluster.startAggregator(this.options.env ? { env: this.options.env } : {});
        this.started.push(aggregator);
        this.live.add(aggregator);
        aggregator.child.once('exit', (code, signal) => {
          this.live.delete(aggregator);
          this.exits.push({ identity: aggregator.identity, code, signal, atMs: Date.now() - this.startedAt });
          if (this.stopping) return;
          const restart = (async () => {
            await sleep(this.options.restartDelayMs ?? 1_000);
            await this.startOne();
          })();
          this.pending.add(restart);
          void restart.finally(() => this.pending.delete(restart));
        });
        return;
      } catch {
        // Not alive in time (e.g. the API server is down while it starts): the pod would be restarted. One that still
        // runs is stopped first, so that no more than `replicas` ever run.
        for (const aggregator of this.cluster.aggregators) {
          if (!this.started.includes(aggregator) && aggregator.child.exitCode === null)
            aggregator.child.kill('SIGKILL');
        }
        await sleep(this.options.restartDelayMs ?? 1_000);
      }
    }
  }
}
