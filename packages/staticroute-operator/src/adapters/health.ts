/**
 * Health and observable events of the netlink adapters (the route channel and the route monitor), and what the
 * probes should answer from them.
 *
 * An adapter is healthy while its socket is open. A failed socket is reopened with backoff (see backoff.ts); until
 * then the node cannot program routes (channel) or does not see drift (monitor), which is what `/readyz` must say.
 */

/** The health of one adapter. */
export interface AdapterHealth {
  /** True while the socket is open and usable. */
  readonly healthy: boolean;
  /** Why the socket failed last (kept after a recovery, for logs and status pages); undefined if it never failed. */
  readonly lastError: string | undefined;
  /** When `healthy` last changed (ms since the epoch); when the adapter opened if it never changed. */
  readonly since: number;
  /** Sockets opened to replace failed ones so far. */
  readonly reopens: number;
}

/** Netlink errors, by what they mean for the adapter. */
export type NetlinkErrorKind =
  /** ENOBUFS: the receive buffer overflowed and replies or notifications were dropped; the socket stays usable. */
  | 'overflow'
  /** The socket failed or was closed under the adapter: it is being reopened. */
  | 'socket'
  /** An attempt to reopen the socket failed; another follows with backoff. */
  | 'reopen'
  /** No reply (ACK or end of dump) within the timeout. */
  | 'timeout'
  /** A datagram could not be sent. */
  | 'send'
  /** The kernel answered a dump with an error. */
  | 'dump'
  /** A dump was still interrupted (NLM_F_DUMP_INTR) after every retry: the caller got an error. */
  | 'dump-interrupted';

/** Outcomes of route requests, by operation and errno name (`ok` for success). */
export type OperationCounts = Record<'add' | 'replace' | 'delete', Record<string, number>>;

/** Why the monitor asked for a full re-read of the addresses and the table. */
export type ResyncReason = 'link' | 'address' | 'overflow';

/** What an adapter reports to its subscribers. */
export type AdapterEvent =
  | { type: 'health'; health: AdapterHealth }
  | { type: 'error'; kind: NetlinkErrorKind; message: string }
  | { type: 'reopened' }
  /** A dump came back interrupted (NLM_F_DUMP_INTR) and was run again. */
  | { type: 'dump-retried' }
  /** Route table: outcomes of one `apply`. */
  | { type: 'operations'; counts: OperationCounts }
  /** Route monitor: it emitted a change that makes the agent re-read the addresses and the whole table. */
  | { type: 'resync'; reason: ResyncReason };

/** A subscriber to an adapter's events. */
export type AdapterListener = (event: AdapterEvent) => void;

/** What the agent and the metrics need of an adapter. */
export interface ObservableAdapter {
  readonly health: AdapterHealth;
  /** Calls `listener` for every event from now on; returns the unsubscribe function. */
  subscribe(listener: AdapterListener): () => void;
}

/** Subscribers and the health state of one adapter. */
export class AdapterState implements ObservableAdapter {
  private readonly listeners = new Set<AdapterListener>();
  private current: AdapterHealth;

  constructor(now = Date.now()) {
    this.current = { healthy: true, lastError: undefined, since: now, reopens: 0 };
  }

  get health(): AdapterHealth {
    return this.current;
  }

  subscribe(listener: AdapterListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: AdapterEvent): void {
    for (const listener of [...this.listeners]) {
      // A subscriber's bug must not break the socket's error handling, which runs in the socket's callbacks.
      try {
        listener(event);
      } catch {
        // Ignored on purpose: the adapter has nowhere better to report it.
      }
    }
  }

  error(kind: NetlinkErrorKind, error: unknown): void {
    this.emit({ type: 'error', kind, message: messageOf(error) });
  }

  /** The socket failed: unhealthy until {@link reopened}. `lastError` changes on every failure, the event on the first. */
  failed(error: unknown, now = Date.now()): void {
    const wasHealthy = this.current.healthy;
    this.current = {
      ...this.current,
      healthy: false,
      lastError: messageOf(error),
      since: wasHealthy ? now : this.current.since,
    };
    if (wasHealthy) this.emit({ type: 'health', health: this.current });
  }

  /** A new socket replaces the failed one. */
  reopened(now = Date.now()): void {
    this.current = { ...this.current, healthy: true, since: now, reopens: this.current.reopens + 1 };
    this.emit({ type: 'reopened' });
    this.emit({ type: 'health', health: this.current });
  }
}

/** The message of anything thrown or emitted. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What the probes answer about the kernel side. */
export interface ProbeVerdict {
  /** `/readyz`: every adapter is healthy, so this node programs routes and sees drift. */
  ready: boolean;
  /** `/healthz`: no adapter has been unhealthy for longer than the grace period. */
  live: boolean;
  /** Why not ready (or not live), for logs; undefined when both hold. */
  reason: string | undefined;
}

/** Options of {@link probeVerdict}. */
export interface ProbeOptions {
  /**
   * How long an adapter may stay unhealthy (reopening with backoff) before liveness fails and the kubelet restarts
   * the agent. Defaults to 120 000 ms: several reopen attempts at the backoff's ceiling (30 s), so that a failure
   * the adapter heals itself never restarts the pod, while one it cannot heal does.
   */
  livenessGraceMs?: number;
}

/**
 * Readiness and liveness from the adapters' health. Undefined entries (an adapter not started yet) count as
 * healthy: the startup's own readiness covers that time.
 */
export function probeVerdict(
  adapters: Readonly<Record<string, AdapterHealth | undefined>>,
  now: number,
  options: ProbeOptions = {},
): ProbeVerdict {
  const grace = options.livenessGraceMs ?? 120_000;
  const unhealthy = Object.entries(adapters).filter(
    (entry): entry is [string, AdapterHealth] => entry[1] !== undefined && !entry[1].healthy,
  );
  if (unhealthy.length === 0) return { ready: true, live: true, reason: undefined };
  const live = unhealthy.every(([, health]) => now - health.since <= grace);
  const reason = unhealthy
    .map(([name, health]) => `netlink ${name} down since ${new Date(health.since).toISOString()}: ${health.lastError}`)
    .join('; ');
  return { ready: false, live, reason };
}
