/**
 * Kernel notifications that may mean the table drifted from what the operator installed: route changes
 * (RTNLGRP_IPV4_ROUTE / RTNLGRP_IPV6_ROUTE), link changes (a link going down flushes its routes without one
 * RTM_DELROUTE per route) and address changes (the node's connected subnets feed the safety rules).
 *
 * Route changes are reported one by one, as they come. The others make the agent re-read the addresses and the whole
 * table, so they are filtered and debounced:
 * - a link change is reported only when it can change routes we care about (link-state.ts): creating and deleting
 *   pod veth pairs costs nothing;
 * - changes within `debounceMs` of the first make one event (`link-changed`, `address-changed` or `overflow`, the
 *   most telling of them).
 *
 * A socket that falls behind loses notifications (ENOBUFS); that is reported as `overflow`, after which only a full
 * re-read of the table is trustworthy. A socket that fails is reopened with backoff (backoff.ts); `overflow` is
 * reported when it fails and again once the new socket listens, since changes in between went unseen. The operator's
 * own changes are paced so that their notifications never overflow the socket (echo-pacer.ts).
 */
import netlink from 'netlink';
import { Reopener, reopenDelay, resolveReopenPolicy, type ReopenPolicy } from './backoff.js';
import { processPacer, type EchoPacer, type PacedReader } from './echo-pacer.js';
import {
  AdapterState,
  messageOf,
  type AdapterHealth,
  type AdapterListener,
  type ObservableAdapter,
  type ResyncReason,
} from './health.js';
import { LinkState } from './link-state.js';
import {
  decodeAddress,
  decodeLink,
  decodeRoute,
  decodeRouteLinks,
  RT_TABLE_MAIN,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK,
  splitMessages,
  type DecodedRoute,
} from './netlink-codec.js';
import { RtnlChannel } from './rtnl-channel.js';

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

/** One notification, reduced to what the reconcile loop cares about. */
export type TableEvent =
  | { kind: 'route-added' | 'route-deleted'; route: DecodedRoute }
  | { kind: 'link-changed' }
  | { kind: 'address-changed' }
  | { kind: 'overflow'; error: string };

/** Options of {@link RouteMonitor.start}. */
export interface RouteMonitorOptions {
  /** The routing table whose routes are reported. Defaults to main (254). */
  table?: number;
  /**
   * Our rtm_protocol: only routes with it make a link worth a re-read when it changes. Defaults to every route of
   * `table` (then a link carrying any route counts, e.g. a CNI's per-pod route).
   */
  protocol?: number;
  /** Link and address changes within this time of the first make one event. Defaults to 100 ms. */
  debounceMs?: number;
  /** SO_RCVBUF to ask for (capped by net.core.rmem_max). Defaults to 8 MiB. */
  receiveBufferBytes?: number;
  /** Backoff of reopening a failed socket (and of retrying the dumps of the link state). */
  reopen?: Partial<ReopenPolicy>;
  /** Where the channels of this process learn how far the monitor read their echoes. Defaults to the process's. */
  pacer?: EchoPacer | null;
}

/** Counters of the monitor's life (monotonic; for tests, logs and metrics). */
export interface MonitorStats {
  /** Sockets opened to replace failed ones. */
  reopens: number;
  /** Sockets that failed (or were closed under the monitor). */
  socketFailures: number;
  /** ENOBUFS: notifications lost, the socket kept. */
  overflows: number;
  /** Link, address or overflow changes that need a re-read (before debouncing). */
  relevantChanges: number;
  /** Events emitted that make the agent re-read the addresses and the whole table (after debouncing). */
  resyncs: number;
  /** Link notifications that cannot change our routes. */
  ignoredLinkChanges: number;
  /** Address notifications that cannot change our routes (IPv6 link-local). */
  ignoredAddressChanges: number;
  /** Dumps the monitor ran to learn the links, addresses and our routes per link. */
  stateDumps: number;
}

/** A running subscription. */
export class RouteMonitor implements ObservableAdapter {
  private socket: RawSocket | undefined;
  private paced: PacedReader | undefined;
  private readonly dumps: RtnlChannel;
  private readonly linkState = new LinkState();
  private readonly table: number;
  private readonly protocol: number | undefined;
  private readonly debounceMs: number;
  private readonly reopenPolicy: ReopenPolicy;
  private readonly pacer: EchoPacer | null;
  private readonly state = new AdapterState();
  private readonly unsubscribeDumps: () => void;
  private pending = new Set<ResyncReason>();
  private lastLoss = '';
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly reopener: Reopener;
  private syncGeneration = 0;
  private syncWaiters: Array<() => void> = [];
  private stopped = false;
  readonly stats: MonitorStats = {
    reopens: 0,
    socketFailures: 0,
    overflows: 0,
    relevantChanges: 0,
    resyncs: 0,
    ignoredLinkChanges: 0,
    ignoredAddressChanges: 0,
    stateDumps: 0,
  };

  private constructor(
    private readonly onEvent: (event: TableEvent) => void,
    private readonly options: RouteMonitorOptions,
  ) {
    this.table = options.table ?? RT_TABLE_MAIN;
    this.protocol = options.protocol;
    this.debounceMs = options.debounceMs ?? 100;
    this.reopenPolicy = resolveReopenPolicy(options.reopen);
    this.reopener = new Reopener(this.reopenPolicy, {
      stopped: () => this.stopped,
      open: () => this.connect(),
      failed: (error) => {
        this.state.error('reopen', error);
        this.state.failed(error);
      },
      opened: () => {
        this.stats.reopens++;
        this.state.reopened();
        this.lastLoss = 'the monitor reopened its socket: changes while it was closed went unseen';
        this.resyncSoon('overflow');
        this.sync();
      },
    });
    this.pacer = options.pacer === undefined ? processPacer : options.pacer;
    // Its own socket for the dumps of the link state: the subscription's socket receives notifications only. It
    // changes no route, so it takes no part in pacing.
    this.dumps = RtnlChannel.open({ receiveBufferBytes: 1 << 20, pacer: null, reopen: options.reopen });
    this.unsubscribeDumps = this.dumps.subscribe((event) => {
      if (event.type === 'error') this.state.emit(event);
    });
  }

  /** Subscribes in the calling process's network namespace. Throws when the socket cannot be opened at all. */
  static start(onEvent: (event: TableEvent) => void, options: RouteMonitorOptions = {}): RouteMonitor {
    const monitor = new RouteMonitor(onEvent, options);
    try {
      monitor.connect();
    } catch (error) {
      monitor.stop();
      throw error;
    }
    monitor.sync();
    return monitor;
  }

  /** Whether the subscription's socket is open; why it failed last. */
  get health(): AdapterHealth {
    return this.state.health;
  }

  /** Health changes, errors, reopens and re-reads asked for, from now on. */
  subscribe(listener: AdapterListener): () => void {
    return this.state.subscribe(listener);
  }

  /** Whether the link state is known (until then every link change counts). */
  get synced(): boolean {
    return this.linkState.synced;
  }

  /** Resolves once the link state is known. */
  whenSynced(): Promise<void> {
    if (this.linkState.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private connect(): void {
    // A large buffer rides out bursts of other processes' changes; our own are paced (echo-pacer.ts).
    const socket = new RawNetlinkSocket(netlink.Protocol.ROUTE, {
      recvBufferSize: this.options.receiveBufferBytes ?? 8 << 20,
      sendBufferSize: 65536,
    });
    try {
      for (const group of [
        RTNLGRP_IPV4_ROUTE,
        RTNLGRP_IPV6_ROUTE,
        RTNLGRP_LINK,
        RTNLGRP_IPV4_IFADDR,
        RTNLGRP_IPV6_IFADDR,
      ]) {
        socket.addMembership(group);
      }
      socket.on('message', (datagram: Buffer) => {
        if (this.socket === socket) this.receive(datagram);
      });
      socket.on('error', (error: Error & { code?: string }) => this.onSocketError(socket, error));
      // Not emitted by the monitor's own stop (it lets go of the socket first): someone closed it under us.
      socket.on('close', () => this.lost(socket, new Error('the netlink socket was closed')));
      // The operator's other work keeps the process alive; the monitor must not keep it from exiting.
      socket.unref();
      this.paced = this.pacer?.reader(socket.getRecvBufferSize());
    } catch (error) {
      socket.close();
      throw error;
    }
    this.socket = socket;
  }

  private receive(datagram: Buffer): void {
    for (const message of splitMessages(datagram)) {
      if (message.type === RTM_NEWROUTE || message.type === RTM_DELROUTE) {
        // The echo of a request: its socket's port and sequence number (0 for the kernel's own changes).
        if (message.pid !== 0) this.paced?.echoed(message.pid, message.seq);
        const links = decodeRouteLinks(message);
        if (!links || links.table !== this.table) continue;
        if (this.protocol === undefined || links.protocol === this.protocol) {
          this.linkState.routeChanged(links.interfaces, message.type === RTM_NEWROUTE);
        }
        const route = decodeRoute(message);
        if (!route) continue;
        this.emit({ kind: message.type === RTM_NEWROUTE ? 'route-added' : 'route-deleted', route });
      } else if (message.type === RTM_NEWLINK || message.type === RTM_DELLINK) {
        const link = decodeLink(message);
        if (!link || this.linkState.linkChanged(link, message.type === RTM_DELLINK)) this.resyncSoon('link');
        else this.stats.ignoredLinkChanges++;
      } else if (message.type === RTM_NEWADDR || message.type === RTM_DELADDR) {
        const address = decodeAddress(message);
        if (!address || this.linkState.addressChanged(address, message.type === RTM_NEWADDR)) {
          this.resyncSoon('address');
        } else {
          this.stats.ignoredAddressChanges++;
        }
      }
    }
  }

  /** Notes a change that needs a full re-read, and emits one event for all such changes within `debounceMs`. */
  private resyncSoon(reason: ResyncReason): void {
    if (this.stopped) return;
    this.stats.relevantChanges++;
    this.pending.add(reason);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), this.debounceMs);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    const reason: ResyncReason = this.pending.has('overflow')
      ? 'overflow'
      : this.pending.has('link')
        ? 'link'
        : 'address';
    this.pending.clear();
    if (this.stopped) return;
    this.stats.resyncs++;
    this.state.emit({ type: 'resync', reason });
    if (reason === 'overflow') this.emit({ kind: 'overflow', error: this.lastLoss });
    else this.emit({ kind: reason === 'link' ? 'link-changed' : 'address-changed' });
  }

  private emit(event: TableEvent): void {
    if (!this.stopped) this.onEvent(event);
  }

  private onSocketError(socket: RawSocket, error: Error & { code?: string }): void {
    if (this.socket !== socket) return;
    let open = true;
    try {
      socket.address();
    } catch {
      open = false;
    }
    if (error.code === 'ENOBUFS' && open) {
      // Notifications were dropped; the socket still works. What the link state missed is re-dumped.
      this.stats.overflows++;
      this.state.error('overflow', error);
      this.lastLoss = error.message;
      this.resyncSoon('overflow');
      this.sync();
      return;
    }
    this.lost(socket, error);
  }

  /** The socket failed or was closed: nothing is seen until a new one listens. */
  private lost(socket: RawSocket, error: Error): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.paced?.detach();
    this.paced = undefined;
    this.stats.socketFailures++;
    this.state.error('socket', error);
    try {
      socket.close();
    } catch {
      // The binding closed it already (after a poll error).
    }
    this.state.failed(error);
    this.lastLoss = `the monitor's socket failed: ${error.message}`;
    // The agent re-reads now, from what the channel still sees; again once the new socket listens.
    this.resyncSoon('overflow');
    this.reopener.schedule();
  }

  /**
   * (Re)learns the links, their addresses and our routes per link. Until it is done every link change counts; a
   * failed dump is retried with backoff; a newer sync supersedes a running one.
   */
  private sync(): void {
    const generation = ++this.syncGeneration;
    this.linkState.beginSync();
    void (async () => {
      for (let attempt = 1; !this.stopped && generation === this.syncGeneration; attempt++) {
        try {
          const links = await this.dumps.dump(RTM_GETLINK, (message) =>
            message.type === RTM_NEWLINK ? decodeLink(message) : undefined,
          );
          const addresses = await this.dumps.dump(RTM_GETADDR, (message) =>
            message.type === RTM_NEWADDR ? decodeAddress(message) : undefined,
          );
          const routesByLink = new Map<number, number>();
          // Counted as they arrive: nothing of a 10,000-route dump is kept.
          await this.dumps.dump(RTM_GETROUTE, (message) => {
            const route = message.type === RTM_NEWROUTE ? decodeRouteLinks(message) : undefined;
            if (!route || route.table !== this.table) return undefined;
            if (this.protocol !== undefined && route.protocol !== this.protocol) return undefined;
            for (const index of route.interfaces) routesByLink.set(index, (routesByLink.get(index) ?? 0) + 1);
            return undefined;
          });
          this.stats.stateDumps += 3;
          if (this.stopped || generation !== this.syncGeneration) return;
          this.linkState.finishSync({ links, addresses, routesByLink });
          for (const resolve of this.syncWaiters.splice(0)) resolve();
          return;
        } catch (error) {
          if (this.stopped || generation !== this.syncGeneration) return;
          this.state.error('dump', new Error(`cannot learn the links and addresses: ${messageOf(error)}`));
          await new Promise((resolve) => setTimeout(resolve, reopenDelay(this.reopenPolicy, attempt)).unref());
        }
      }
    })();
  }

  /**
   * Closes the subscription's socket under the monitor, as a failure would (not through {@link stop}): what tests use
   * to show that the monitor notices and reopens. Not for production use.
   */
  failSocketForTesting(): void {
    this.socket?.close();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.flushTimer);
    this.reopener.cancel();
    this.unsubscribeDumps();
    const socket = this.socket;
    this.socket = undefined;
    this.paced?.detach();
    this.paced = undefined;
    socket?.close();
    this.dumps.close();
    for (const resolve of this.syncWaiters.splice(0)) resolve();
  }
}
