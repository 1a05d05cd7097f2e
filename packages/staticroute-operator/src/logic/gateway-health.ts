/**
 * Gateway health without I/O: the hysteresis that turns probe rounds into a gateway state, and the choice of next
 * hops a route gets from its gateways' states.
 *
 * The prober (`adapters/gateway-prober.ts`) runs one round per gateway every `intervalMs` and feeds each round's
 * result to a {@link GatewayHealthTracker}; the agent asks {@link effectiveGateways} which configured gateways to
 * install. Hysteresis is what keeps a route from flapping: a single lost probe never changes a state, only
 * `fallAfter` failed rounds in a row (or `riseAfter` good ones) do.
 *
 * Guarantees:
 * - A gateway starts Unknown, and Unknown counts as usable: a gateway is only left out after it was seen failing.
 * - A route never loses its last next hop because of health: when every configured gateway is Unreachable the route
 *   keeps the set it has (unless the object opts into withdrawal).
 */
import { canonicalAddress } from './ip.js';

/** What the node knows of a gateway: not (yet) decided, answering its neighbour probes, or not answering them. */
export type GatewayState = 'Unknown' | 'Reachable' | 'Unreachable';

/** How often gateways are probed and how many rounds in a row change their state. */
export interface GatewayHealthThresholds {
  /** Time between the starts of two probe rounds of one gateway, in ms. Defaults to 2000. */
  intervalMs: number;
  /** Failed rounds in a row that make a gateway Unreachable. Defaults to 3. */
  fallAfter: number;
  /** Good rounds in a row that make a gateway Reachable. Defaults to 2. */
  riseAfter: number;
}

/**
 * The defaults: a dead gateway is Unreachable after 3 failed rounds of 2 s (within ~10 s of its failure, counting the
 * round in progress and the kernel's own probe time), a recovered one Reachable after 2 good rounds (within ~6 s).
 */
export const DEFAULT_GATEWAY_HEALTH: GatewayHealthThresholds = Object.freeze({
  intervalMs: 2000,
  fallAfter: 3,
  riseAfter: 2,
});

/** The thresholds with defaults filled in; counts below 1 and intervals below 100 ms are raised to those minimums. */
export function gatewayHealthThresholds(partial: Partial<GatewayHealthThresholds> = {}): GatewayHealthThresholds {
  const pick = (value: number | undefined, fallback: number, min: number): number =>
    value === undefined || !Number.isFinite(value) ? fallback : Math.max(min, Math.floor(value));
  return {
    intervalMs: pick(partial.intervalMs, DEFAULT_GATEWAY_HEALTH.intervalMs, 100),
    fallAfter: pick(partial.fallAfter, DEFAULT_GATEWAY_HEALTH.fallAfter, 1),
    riseAfter: pick(partial.riseAfter, DEFAULT_GATEWAY_HEALTH.riseAfter, 1),
  };
}

interface Track {
  state: GatewayState;
  since?: number;
  /** Rounds in a row with the same result as the last one: positive good, negative failed. */
  streak: number;
}

/** Hysteresis per gateway: feed it each round's result; it tells when the state changes. */
export class GatewayHealthTracker {
  readonly thresholds: GatewayHealthThresholds;
  private readonly tracks = new Map<string, Track>();

  constructor(thresholds?: Partial<GatewayHealthThresholds>) {
    this.thresholds = gatewayHealthThresholds(thresholds);
  }

  /** Records one round; returns the new state when it changed, else undefined. Starts Unknown; the first
   *  `riseAfter` good rounds make it Reachable, the first `fallAfter` failed rounds Unreachable. */
  observe(gateway: string, ok: boolean, now: number): GatewayState | undefined {
    let track = this.tracks.get(gateway);
    if (track === undefined) {
      track = { state: 'Unknown', streak: 0 };
      this.tracks.set(gateway, track);
    }
    if (ok) track.streak = track.streak > 0 ? track.streak + 1 : 1;
    else track.streak = track.streak < 0 ? track.streak - 1 : -1;
    const next: GatewayState | undefined =
      track.streak >= this.thresholds.riseAfter
        ? 'Reachable'
        : -track.streak >= this.thresholds.fallAfter
          ? 'Unreachable'
          : undefined;
    if (next === undefined || next === track.state) return undefined;
    track.state = next;
    track.since = now;
    return next;
  }

  /** The gateway's state; Unknown for a gateway never observed (or forgotten). */
  state(gateway: string): GatewayState {
    return this.tracks.get(gateway)?.state ?? 'Unknown';
  }

  /** When (ms timestamp) the gateway last changed state; undefined while it never did. */
  since(gateway: string): number | undefined {
    return this.tracks.get(gateway)?.since;
  }

  /** Rounds in a row with the same result: positive good, negative failed, 0 never observed. */
  streak(gateway: string): number {
    return this.tracks.get(gateway)?.streak ?? 0;
  }

  /** Drops what is known of the gateway: it is Unknown again, as if never observed. */
  forget(gateway: string): void {
    this.tracks.delete(gateway);
  }

  /** The gateways observed and not forgotten. */
  gateways(): string[] {
    return [...this.tracks.keys()];
  }
}

/** The next hops a route gets from its gateways' states; see {@link effectiveGateways}. */
export interface EffectiveGateways {
  /** Next hops to install (sorted as given). Empty = remove the route (only with withdrawWhenAllDown). */
  gateways: string[];
  /** Configured gateways left out because Unreachable. */
  withdrawn: string[];
  /** Unreachable gateways still installed (all were down and the route keeps its last set). */
  keptUnreachable: string[];
}

/**
 * Which of a route's configured gateways to install. Unknown counts as usable. Unreachable ones are left out while
 * at least one configured gateway is not Unreachable. When all are Unreachable: with `withdrawWhenAllDown` the route
 * is removed (gateways []); otherwise the route keeps its last set (`installed` when it is a non-empty subset of
 * `configured`, else all of `configured`), so a route never flaps while everything is down. A single-gateway route
 * is the "all down" case with one gateway (kept unless the object opts into withdrawal).
 *
 * Addresses are compared in canonical form (`fd00::1` and `fd00:0::1` are one gateway); the result uses the spellings
 * of `configured`, in its order, without repeats.
 */
export function effectiveGateways(
  configured: readonly string[],
  stateOf: (gateway: string) => GatewayState,
  opts: { withdrawWhenAllDown: boolean; installed?: readonly string[] },
): EffectiveGateways {
  const key = (address: string): string => canonicalAddress(address) ?? address;
  const seen = new Set<string>();
  const unique = configured.filter((gateway) => {
    const k = key(gateway);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const usable = unique.filter((gateway) => stateOf(gateway) !== 'Unreachable');
  if (usable.length > 0) {
    return { gateways: usable, withdrawn: unique.filter((g) => !usable.includes(g)), keptUnreachable: [] };
  }
  if (opts.withdrawWhenAllDown) return { gateways: [], withdrawn: unique, keptUnreachable: [] };
  const installed = new Set((opts.installed ?? []).map(key));
  const isSubset = installed.size > 0 && [...installed].every((k) => seen.has(k));
  const kept = isSubset ? unique.filter((gateway) => installed.has(key(gateway))) : unique;
  return { gateways: kept, withdrawn: unique.filter((g) => !kept.includes(g)), keptUnreachable: kept };
}
