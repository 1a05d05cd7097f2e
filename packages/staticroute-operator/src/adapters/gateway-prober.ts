/**
 * Gateway reachability through the kernel's neighbour subsystem (ARP for IPv4, NDP for IPv6): the node asks its own
 * kernel to re-check a gateway's neighbour entry and reads the verdict back, so the agent needs nothing beyond the
 * CAP_NET_ADMIN it already has (no raw socket, no ICMP, nothing sent by the agent itself on the wire).
 *
 * One round per gateway every `intervalMs` (default 2000), on the gateway's own timer:
 * 1. Route lookup (RTM_GETROUTE) for the gateway. Only a gateway on a connected subnet (the route to it has no next
 *    hop) is probed; any other stays Unknown with the reason "not on a connected subnet". Checked every round, so a
 *    link or address change takes effect at the next round.
 * 2. The entry is read (RTM_GETNEIGH) and the previous round judged: it succeeded when the kernel confirmed the entry
 *    during that round (an answer to a probe, or confirmation by traffic), or when the entry is PERMANENT / NOARP;
 *    it failed otherwise (FAILED, INCOMPLETE, absent, or a probe still unanswered at the round's end).
 * 3. The next round starts with one request: an entry with a link-layer address (REACHABLE, STALE, DELAY) is set to
 *    NUD_PROBE, and the kernel sends `ucast_solicit` (3) unicast solicitations `retrans_time` (1 s) apart, stopping
 *    at the first answer; an entry without one (absent, FAILED) gets NTF_USE, and the kernel resolves it with
 *    `mcast_solicit` (3) broadcast / multicast solicitations 1 s apart. An entry the kernel is already probing
 *    (PROBE, INCOMPLETE) is left to it.
 *
 * Measured on Linux 6.18 with the default neighbour parameters (veth pairs and a bridge, network namespaces):
 * an answered unicast probe confirms the entry within milliseconds; an unanswered one makes it FAILED 3 s later, and
 * NUD_PROBE is refused on a FAILED entry ("No link layer address given"), which is why those get NTF_USE. A round
 * of 2 s thus tolerates one lost solicitation; the hysteresis (gateway-health.ts) tolerates a lost round. A gateway
 * that stops answering is Unreachable after 3 failed rounds (6-8 s after it stopped; 6.1-7.9 s measured), a
 * recovered one Reachable after 2 good rounds (3.1-6.0 s measured; 6 s when it returns just after a resolution ran
 * out and the next one waits for the next round). A live gateway receives one unicast solicitation per round (33 a
 * minute measured, with the first broadcast); an address nobody answers 3 broadcasts per two rounds (48 a minute).
 *
 * Guarantees:
 * - Only gateways on connected subnets receive solicitations, and only the configured targets.
 * - No request carries a link-layer address: entries keep theirs. PERMANENT and NOARP entries are never written
 *   (they count as Reachable, unprobed); entries owned by someone else (NTF_EXT_LEARNED, or managed by the kernel:
 *   NTF_EXT_MANAGED, or any other NDA_FLAGS_EXT bit) are read only, Reachable while the kernel says REACHABLE: an
 *   administrative update without their flags would clear them.
 * Caveats:
 * - The netlink socket belongs to the network namespace of the process that opened it (the node's).
 * - A failed netlink request (no answer within `intervalMs / 2`) drops the round unjudged: the state stays as it
 *   is, since the failure says nothing about the gateway. A failed socket is reopened at the next round.
 * - Without CAP_NET_ADMIN the kernel refuses the probe requests (EPERM): every gateway then stays Unknown, saying
 *   so, rather than failing rounds that never probed (reading routes and entries needs no capability).
 */
import netlink from 'netlink';
import type { Logger } from 'opkit';
import { canonicalAddress } from '../logic/ip.js';
import { Outage } from '../logic/outage.js';
import { GatewayHealthTracker, type GatewayHealthThresholds, type GatewayState } from '../logic/gateway-health.js';
import {
  decodeNeighbour,
  decodeRouteLookup,
  encodeNeighbourGet,
  encodeNeighbourProbe,
  encodeRouteLookup,
  probeRequest,
  roundVerdict,
  RTM_NEWNEIGH,
  RTN_UNICAST,
  type NeighbourEntry,
} from './neighbour-codec.js';
import { errorCode, NLMSG_ERROR, NLMSG_HDRLEN, splitMessages, type RawMessage } from './netlink-codec.js';

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

const ENOENT = 2;
const EPERM = 1;
const NO_PERMISSION = 'not probed: neighbour requests need CAP_NET_ADMIN (EPERM)';

/** Options of {@link GatewayProber.open}. */
export interface GatewayProberOptions {
  /** Round interval and hysteresis; defaults in `DEFAULT_GATEWAY_HEALTH`. */
  thresholds?: Partial<GatewayHealthThresholds>;
  logger: Logger;
  /** Called on every state transition (after hysteresis), with a one-line reason (e.g. "neighbour FAILED 3 rounds"). */
  onChange: (gateway: string, state: GatewayState, reason: string) => void;
}

/** What the prober knows of one gateway, for the node's report. */
export interface GatewayHealthEntry {
  state: GatewayState;
  /** When the state last changed (ISO 8601). */
  since?: string;
  /**
   * Whether the gateway is being probed (false: not on a connected subnet, not an address, no CAP_NET_ADMIN, or an
   * entry the prober never writes: permanent, noarp, maintained by someone else).
   */
  probed: boolean;
  /** Why it is in its state, or why it is not probed. */
  reason?: string;
}

interface Target {
  readonly gateway: string;
  /** Canonical text of the address; undefined when the gateway is not an IP address. */
  readonly address: string | undefined;
  timer?: NodeJS.Timeout;
  running: boolean;
  /** The round in progress: when it started, and on which interface. */
  round?: { startedAt: number; ifindex: number };
  probed: boolean;
  reason?: string;
  /** Permanent/noarp/externally owned entries are judged without probing; they say so in their reason. */
  unprobedReason?: string;
}

interface Pending {
  resolve: (message: RawMessage) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** Probes the gateways of health-checked routes through the kernel's neighbour entries; see the file comment. */
export class GatewayProber {
  private readonly tracker: GatewayHealthTracker;
  private readonly targets = new Map<string, Target>();
  private readonly pending = new Map<number, Pending>();
  private socket: RawSocket | undefined;
  private pid = 0;
  private seq = 1;
  private closed = false;
  private warnedPermission = false;
  private failingRequests = 0;
  /** Netlink failures are logged when they begin and when they end, not once per gateway per round. */
  private readonly netlinkOutage = new Outage();
  private readonly counters = { rounds: 0, failedRounds: 0, nudges: 0 };

  private constructor(private readonly options: GatewayProberOptions) {
    this.tracker = new GatewayHealthTracker(options.thresholds);
  }

  /** Opens the prober's netlink socket (in the caller's network namespace); no gateway is probed before setTargets. */
  static async open(options: GatewayProberOptions): Promise<GatewayProber> {
    const prober = new GatewayProber(options);
    prober.connect();
    return Promise.resolve(prober);
  }

  /** The gateways to watch (all gateways of health-checked routes on this node); others are dropped. */
  setTargets(gateways: Iterable<string>): void {
    if (this.closed) return;
    const wanted = new Set(gateways);
    for (const [gateway, target] of this.targets) {
      if (wanted.has(gateway)) continue;
      clearTimeout(target.timer);
      this.targets.delete(gateway);
      this.tracker.forget(gateway);
    }
    for (const gateway of wanted) {
      if (this.targets.has(gateway)) continue;
      const target: Target = { gateway, address: canonicalAddress(gateway), running: false, probed: false };
      this.targets.set(gateway, target);
      if (target.address === undefined) target.reason = 'not an IP address';
      // Spread the first rounds a little so that many gateways added at once are not probed in one burst.
      else this.schedule(target, Math.floor(Math.random() * 50));
    }
  }

  /** The gateway's state after hysteresis; Unknown for one not (yet) decided, not probed, or not a target. */
  state(gateway: string): GatewayState {
    return this.tracker.state(gateway);
  }

  /** Every target with its state, when that last changed, whether it is probed, and why. */
  snapshot(): Map<string, GatewayHealthEntry> {
    const entries = new Map<string, GatewayHealthEntry>();
    for (const [gateway, target] of this.targets) {
      const since = this.tracker.since(gateway);
      const entry: GatewayHealthEntry = { state: this.tracker.state(gateway), probed: target.probed };
      if (since !== undefined) entry.since = new Date(since).toISOString();
      const reason = target.unprobedReason ?? target.reason;
      if (reason !== undefined) entry.reason = reason;
      entries.set(gateway, entry);
    }
    return entries;
  }

  /** Counters for metrics: probe rounds run, probes that failed, datagrams/netlink requests sent. */
  stats(): { rounds: number; failedRounds: number; nudges: number } {
    return { ...this.counters };
  }

  /**
   * Tests: the next `requests` netlink requests fail as on a failed socket (which is replaced), so that whole rounds
   * cannot run.
   */
  failRequestsForTesting(requests: number): void {
    this.failingRequests = requests;
  }

  /** Stops every round and closes the socket; no onChange call follows. */
  async close(): Promise<void> {
    this.closed = true;
    for (const target of this.targets.values()) clearTimeout(target.timer);
    this.targets.clear();
    this.dropSocket(new Error('the gateway prober was closed'));
    return Promise.resolve();
  }

  private get interval(): number {
    return this.tracker.thresholds.intervalMs;
  }

  private schedule(target: Target, delayMs: number): void {
    target.timer = setTimeout(() => void this.runRound(target), delayMs);
    target.timer.unref();
  }

  private async runRound(target: Target): Promise<void> {
    if (this.closed || this.targets.get(target.gateway) !== target || target.running) return;
    target.running = true;
    const startedAt = Date.now();
    try {
      await this.round(target);
      const ended = this.netlinkOutage.succeeded(Date.now());
      if (ended) this.options.logger.info(ended, 'gateway probe rounds run again');
    } catch (error) {
      // A netlink failure says nothing about the gateway: the round in progress is dropped unjudged (counting it
      // as failed could withdraw a live next hop), and the next one starts afresh.
      if (this.closed) return;
      const message = error instanceof Error ? error.message : String(error);
      const began = this.netlinkOutage.failed(message, Date.now());
      if (began) this.options.logger.warn({ gateway: target.gateway, ...began }, 'gateway probe rounds cannot run');
      target.round = undefined;
      target.reason = `round not run: ${message}`;
    } finally {
      target.running = false;
      if (!this.closed && this.targets.get(target.gateway) === target) {
        this.schedule(target, Math.max(0, startedAt + this.interval - Date.now()));
      }
    }
  }

  /** Judges the round in progress and starts the next one. */
  private async round(target: Target): Promise<void> {
    const address = target.address as string;
    const route = await this.lookupRoute(address);
    if (route.connected === undefined) {
      this.notProbed(target, `not on a connected subnet (${route.why})`);
      return;
    }
    const ifindex = route.connected;
    const entry = await this.neighbour(address, ifindex);
    const now = Date.now();
    if (target.round && target.round.ifindex === ifindex) {
      const verdict = roundVerdict(entry, now - target.round.startedAt);
      this.judge(target, verdict.ok, verdict.reason);
    }
    target.round = { startedAt: now, ifindex };
    const { kind, unprobed } = probeRequest(entry);
    target.probed = unprobed === undefined;
    target.unprobedReason = unprobed;
    if (kind === undefined) return;
    this.counters.nudges++;
    const ack = await this.request((seq, pid) => encodeNeighbourProbe(kind, address, ifindex, seq, pid));
    const errno = errorCode(ack);
    if (errno === EPERM) {
      // Without CAP_NET_ADMIN nothing can be probed; judging the rounds anyway would fail live gateways.
      if (!this.warnedPermission) this.options.logger.warn(NO_PERMISSION);
      this.warnedPermission = true;
      this.notProbed(target, NO_PERMISSION);
    } else if (errno !== 0) {
      // ENOENT/EINVAL: the entry changed between the read and the request (deleted, or lost its address); the round
      // goes on and is judged by what the kernel does with the entry.
      this.options.logger.debug({ address, kind, errno }, 'neighbour probe request refused');
    }
  }

  private judge(target: Target, ok: boolean, reason: string): void {
    this.counters.rounds++;
    if (!ok) this.counters.failedRounds++;
    const changed = this.tracker.observe(target.gateway, ok, Date.now());
    const streak = Math.abs(this.tracker.streak(target.gateway));
    target.reason = reason;
    if (changed === undefined) return;
    const line = `${reason} ${streak} round${streak === 1 ? '' : 's'}`;
    target.reason = line;
    this.options.logger.info({ gateway: target.gateway, state: changed, reason: line }, 'gateway state changed');
    this.options.onChange(target.gateway, changed, line);
  }

  /** The gateway is not probed (any more): its state goes back to Unknown, said once. */
  private notProbed(target: Target, reason: string): void {
    const before = this.tracker.state(target.gateway);
    this.tracker.forget(target.gateway);
    target.round = undefined;
    target.probed = false;
    target.unprobedReason = undefined;
    target.reason = reason;
    if (before === 'Unknown') return;
    this.options.logger.info({ gateway: target.gateway, state: 'Unknown', reason }, 'gateway state changed');
    this.options.onChange(target.gateway, 'Unknown', reason);
  }

  /** The interface a gateway on a connected subnet is reached through, or why it is not on one. */
  private async lookupRoute(address: string): Promise<{ connected?: number; why: string }> {
    const reply = await this.request((seq, pid) => encodeRouteLookup(address, seq, pid));
    if (reply.type === NLMSG_ERROR) return { why: `no route: errno ${errorCode(reply)}` };
    const route = decodeRouteLookup(reply);
    if (route === undefined) return { why: 'undecodable route' };
    if (route.gateway !== undefined) return { why: `routed via ${route.gateway}` };
    if (route.type !== RTN_UNICAST) return { why: route.type === 2 ? 'a local address' : `route type ${route.type}` };
    if (route.oif === undefined) return { why: 'no interface' };
    return { connected: route.oif, why: '' };
  }

  private async neighbour(address: string, ifindex: number): Promise<NeighbourEntry | undefined> {
    const reply = await this.request((seq, pid) => encodeNeighbourGet(address, ifindex, seq, pid));
    if (reply.type === NLMSG_ERROR) {
      const errno = errorCode(reply);
      if (errno === ENOENT) return undefined;
      throw new Error(`neighbour get failed: errno ${errno}`);
    }
    return reply.type === RTM_NEWNEIGH ? decodeNeighbour(reply) : undefined;
  }

  private connect(): RawSocket {
    if (this.socket) return this.socket;
    const socket = new RawNetlinkSocket(netlink.Protocol.ROUTE, { recvBufferSize: 1 << 18, sendBufferSize: 1 << 16 });
    try {
      this.pid = socket.address().port;
      socket.on('message', (datagram: Buffer) => {
        if (this.socket === socket) this.receive(datagram);
      });
      socket.on('error', (error: Error) => {
        if (this.socket === socket) this.dropSocket(error);
      });
      socket.on('close', () => {
        if (this.socket === socket) this.dropSocket(new Error('the netlink socket was closed'));
      });
      socket.unref();
    } catch (error) {
      socket.close();
      throw error;
    }
    this.socket = socket;
    return socket;
  }

  private dropSocket(error: Error): void {
    const socket = this.socket;
    this.socket = undefined;
    try {
      socket?.close();
    } catch {
      // Closed already by the binding.
    }
    for (const [seq, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(seq);
      pending.reject(error);
    }
  }

  /** Sends one request and collects its answer (a message, or NLMSG_ERROR); times out after half an interval. */
  private request(encode: (seq: number, pid: number) => Buffer): Promise<RawMessage> {
    if (this.closed) return Promise.reject(new Error('the gateway prober is closed'));
    if (this.failingRequests > 0) {
      this.failingRequests--;
      this.dropSocket(new Error('socket failed for testing'));
      return Promise.reject(new Error('socket failed for testing'));
    }
    const socket = this.connect();
    const seq = (this.seq = (this.seq % 0xffff_fffe) + 1);
    return new Promise<RawMessage>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(seq);
          reject(new Error('netlink request timed out'));
        },
        Math.max(200, this.interval / 2),
      );
      timer.unref();
      this.pending.set(seq, { resolve, reject, timer });
      try {
        socket.send(encode(seq, this.pid), undefined, (error?: Error) => {
          if (error) this.fail(seq, error);
        });
      } catch (error) {
        this.fail(seq, error instanceof Error ? error : new Error(String(error)));
        this.dropSocket(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  private fail(seq: number, error: Error): void {
    const pending = this.pending.get(seq);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(seq);
    pending.reject(error);
  }

  private receive(datagram: Buffer): void {
    for (const message of splitMessages(datagram)) {
      const pending = this.pending.get(message.seq);
      if (!pending || message.pid !== this.pid) continue;
      // Every request here is answered by exactly one message: the object asked for, or an error/ACK.
      clearTimeout(pending.timer);
      this.pending.delete(message.seq);
      // The reply is decoded after this callback returns: keep its own copy of the bytes.
      const bytes = Buffer.from(message.buffer.subarray(message.start - NLMSG_HDRLEN, message.end));
      pending.resolve({ ...message, buffer: bytes, start: NLMSG_HDRLEN, end: bytes.length });
    }
  }
}
