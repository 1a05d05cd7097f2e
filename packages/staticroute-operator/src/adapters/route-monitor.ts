/**
 * Kernel notifications that may mean the table drifted from what the operator installed: route changes
 * (RTNLGRP_IPV4_ROUTE / RTNLGRP_IPV6_ROUTE), link changes (a link going down flushes its routes without one
 * RTM_DELROUTE per route) and address changes (the node's connected subnets feed the safety rules).
 *
 * A socket that falls behind loses notifications (ENOBUFS); that is reported as `overflow`, after which only a full
 * re-read of the table is trustworthy.
 */
import netlink from 'netlink';
import {
  decodeRoute,
  RT_TABLE_MAIN,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELROUTE,
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

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

/** One notification, reduced to what the reconcile loop cares about. */
export type TableEvent =
  | { kind: 'route-added' | 'route-deleted'; route: DecodedRoute }
  | { kind: 'link-changed' }
  | { kind: 'address-changed' }
  | { kind: 'overflow'; error: string };

/** A running subscription. */
export class RouteMonitor {
  private readonly socket: RawSocket;
  private stopped = false;

  private constructor(
    private readonly onEvent: (event: TableEvent) => void,
    table: number,
  ) {
    // A large buffer rides out bursts (our own batches of 50,000 changes notify too); overflow is still handled.
    this.socket = new RawNetlinkSocket(netlink.Protocol.ROUTE, { recvBufferSize: 8 << 20, sendBufferSize: 65536 });
    for (const group of [
      RTNLGRP_IPV4_ROUTE,
      RTNLGRP_IPV6_ROUTE,
      RTNLGRP_LINK,
      RTNLGRP_IPV4_IFADDR,
      RTNLGRP_IPV6_IFADDR,
    ]) {
      this.socket.addMembership(group);
    }
    this.socket.on('message', (datagram: Buffer) => {
      for (const message of splitMessages(datagram)) {
        if (message.type === RTM_NEWROUTE || message.type === RTM_DELROUTE) {
          const route = decodeRoute(message);
          if (!route || route.table !== table) continue;
          this.emit({ kind: message.type === RTM_NEWROUTE ? 'route-added' : 'route-deleted', route });
        } else if (message.type === RTM_NEWLINK || message.type === RTM_DELLINK) {
          this.emit({ kind: 'link-changed' });
        } else if (message.type === RTM_NEWADDR || message.type === RTM_DELADDR) {
          this.emit({ kind: 'address-changed' });
        }
      }
    });
    this.socket.on('error', (error: Error) => this.emit({ kind: 'overflow', error: error.message }));
    // The operator's other work keeps the process alive; the monitor must not keep it from exiting.
    this.socket.unref();
  }

  /** Subscribes in the calling process's network namespace. */
  static start(onEvent: (event: TableEvent) => void, options: { table?: number } = {}): RouteMonitor {
    return new RouteMonitor(onEvent, options.table ?? RT_TABLE_MAIN);
  }

  private emit(event: TableEvent): void {
    if (!this.stopped) this.onEvent(event);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.close();
  }
}
