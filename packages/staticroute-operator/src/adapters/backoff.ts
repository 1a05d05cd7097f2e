/**
 * When to try again to open a netlink socket that failed: exponential, capped, jittered.
 *
 * Capped so that a node whose sockets failed for a long time (a kernel short of memory, a file descriptor limit) is
 * back within `maxMs` of the cause going away; jittered (downwards only, so `maxMs` stays a ceiling) so that the
 * agents of many nodes that failed together do not retry in lock-step.
 */

/** A reopen policy. */
export interface ReopenPolicy {
  /** Delay before the first attempt after a failure. */
  initialMs: number;
  /** Ceiling of any delay. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
  /** Fraction of the delay that is randomized: the delay lies in `[base * (1 - jitter), base]`. */
  jitter: number;
}

/**
 * 100 ms, 200 ms, 400 ms, ... up to 30 s, half of it random. The first attempt comes quickly: a socket that failed is
 * usually replaceable at once, and until then this node cannot program routes.
 */
export const DEFAULT_REOPEN: Readonly<ReopenPolicy> = Object.freeze({
  initialMs: 100,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.5,
});

/** Fills a partial policy from the defaults and rejects values that would make a busy loop (a zero delay) or
 * never retry. */
export function resolveReopenPolicy(partial: Partial<ReopenPolicy> | undefined): ReopenPolicy {
  const policy: ReopenPolicy = { ...DEFAULT_REOPEN };
  for (const key of ['initialMs', 'maxMs', 'factor', 'jitter'] as const) {
    const value = partial?.[key];
    if (value !== undefined) policy[key] = value;
  }
  const valid =
    Number.isFinite(policy.initialMs) &&
    policy.initialMs > 0 &&
    Number.isFinite(policy.maxMs) &&
    policy.maxMs >= policy.initialMs &&
    policy.factor >= 1 &&
    policy.jitter >= 0 &&
    policy.jitter <= 1;
  if (!valid) throw new Error(`invalid reopen policy ${JSON.stringify(policy)}`);
  return policy;
}

/**
 * The delay before attempt number `attempt` (1 = the first attempt after the failure).
 *
 * @param random - a number in [0, 1); injectable so that tests can pin the jitter.
 */
export function reopenDelay(policy: ReopenPolicy, attempt: number, random: () => number = Math.random): number {
  // Bounded exponent: a node that retried for days must not compute Infinity (or NaN once jittered).
  const exponent = Math.min(Math.max(0, attempt - 1), 64);
  const base = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, exponent));
  return Math.round(base * (1 - policy.jitter * random()));
}

/** What a {@link Reopener} does at each attempt. */
export interface ReopenSteps {
  /** True once the owner is closed: no attempt is made or scheduled any more. */
  stopped(): boolean;
  /** Opens the socket; throws when it cannot (the next attempt is then scheduled with a longer delay). */
  open(): void;
  /** An attempt failed. */
  failed(error: unknown): void;
  /** An attempt succeeded (the backoff starts over for the next failure). */
  opened(): void;
}

/**
 * Reopens a failed socket with backoff: one pending attempt at a time, the delay growing with each failed attempt and
 * starting over after a success. Its timer does not keep the process alive (an idle adapter must not; requests
 * waiting for the socket have timers of their own).
 */
export class Reopener {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;

  constructor(
    private readonly policy: ReopenPolicy,
    private readonly steps: ReopenSteps,
  ) {}

  /** Schedules the next attempt unless one is pending or the owner stopped. */
  schedule(): void {
    if (this.steps.stopped() || this.timer) return;
    this.attempt++;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.steps.stopped()) return;
        try {
          this.steps.open();
        } catch (error) {
          this.steps.failed(error);
          this.schedule();
          return;
        }
        this.attempt = 0;
        this.steps.opened();
      },
      reopenDelay(this.policy, this.attempt),
    );
    this.timer.unref();
  }

  /** Drops a pending attempt (on close). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
