/**
 * Which link changes can change the routes the operator cares about, so that the route monitor asks for a full
 * re-read (addresses and whole table) only for those, and pod churn on a busy node (veth pairs created and deleted all
 * the time) costs none.
 *
 * A link matters when it carries an address (its connected subnet may be what makes a gateway reachable; IPv4 keeps
 * the address but flushes the subnet's route while the link is down) or a route we care about (IPv4 flushes the
 * routes through a link that goes down without one notification per route). A change of such a link matters when
 * its operational state (up, running, lower-up, dormant) or its name (address labels name it) changed, or when it is
 * deleted. A link that carries neither matters in no way: nothing of ours goes through it, and nothing can before an
 * address or a route is added to it, which is notified on its own.
 *
 * IPv6 link-local addresses (fe80::/10) do not count: every link up gets one, they can be no gateway (the spec
 * refuses them) and the whole range is protected by the safety rules anyway.
 *
 * The state comes from dumps (links, addresses, routes) plus the notifications since. Notifications that arrive while
 * the dumps run are journaled and replayed on top of them; route removals are not replayed (a route counted by the
 * dump and removed before it was read would be counted one too few), so a link may be counted as carrying a route it
 * no longer does: that costs at most one needless re-read, never a missed one.
 */
import type { DecodedAddress, DecodedLink } from './netlink-codec.js';

export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;
export const IFF_DORMANT = 0x20000;
/** The flags that make the operational state: a change of any of them adds or flushes routes. */
const OPER_FLAGS = IFF_UP | IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT;

/** Whether an address is IPv6 link-local (fe80::/10). */
export function isIpv6LinkLocal(address: Pick<DecodedAddress, 'family' | 'address'>): boolean {
  return address.family === 6 && address.address >> 118n === 0x3fan;
}

interface LinkInfo {
  flags: number;
  name: string | undefined;
}

/** What the dumps found. */
export interface LinkSnapshot {
  links: Iterable<DecodedLink>;
  addresses: Iterable<DecodedAddress>;
  /** Routes we care about, by output interface index. */
  routesByLink: ReadonlyMap<number, number>;
}

type JournalEntry =
  | { kind: 'link'; link: DecodedLink; deleted: boolean }
  | { kind: 'address'; address: DecodedAddress; added: boolean }
  | { kind: 'route'; interfaces: readonly number[] };

function addressKey(address: DecodedAddress): string {
  return `${address.family}/${address.address.toString(16)}/${address.prefixLength}`;
}

/** Links, their addresses and our routes on them, as last dumped and notified. */
export class LinkState {
  private links = new Map<number, LinkInfo>();
  private addresses = new Map<number, Set<string>>();
  private routes = new Map<number, number>();
  private journal: JournalEntry[] | undefined = [];

  /** False from {@link beginSync} until {@link finishSync}: every change of a link is then taken to matter. */
  get synced(): boolean {
    return this.journal === undefined;
  }

  /** Whether a link carries an address (not IPv6 link-local) or a route we care about. */
  carries(index: number): boolean {
    return (this.addresses.get(index)?.size ?? 0) > 0 || (this.routes.get(index) ?? 0) > 0;
  }

  /** Dumps start: notifications from now on are kept to be replayed on their result. */
  beginSync(): void {
    this.journal = [];
  }

  /** Dumps done: their result, plus what was notified since {@link beginSync}. */
  finishSync(snapshot: LinkSnapshot): void {
    const journal = this.journal ?? [];
    this.journal = undefined;
    this.links = new Map();
    this.addresses = new Map();
    this.routes = new Map(snapshot.routesByLink);
    for (const link of snapshot.links) this.links.set(link.index, { flags: link.flags, name: link.name });
    for (const address of snapshot.addresses) this.applyAddress(address, true);
    for (const entry of journal) {
      if (entry.kind === 'link') this.applyLink(entry.link, entry.deleted);
      else if (entry.kind === 'address') this.applyAddress(entry.address, entry.added);
      else this.applyRoute(entry.interfaces, true);
    }
  }

  /** A link was notified (RTM_NEWLINK, or RTM_DELLINK when `deleted`): whether that can change our routes. */
  linkChanged(link: DecodedLink, deleted: boolean): boolean {
    const previous = this.links.get(link.index);
    const carries = this.carries(link.index);
    this.journal?.push({ kind: 'link', link, deleted });
    this.applyLink(link, deleted);
    if (!this.synced) return true;
    if (!carries) return false;
    if (deleted || !previous) return true;
    return ((previous.flags ^ link.flags) & OPER_FLAGS) !== 0 || previous.name !== link.name;
  }

  /** An address was added or removed: whether that can change our routes. */
  addressChanged(address: DecodedAddress, added: boolean): boolean {
    this.journal?.push({ kind: 'address', address, added });
    this.applyAddress(address, added);
    return !isIpv6LinkLocal(address);
  }

  /** A route we care about was added (or removed) through these links. */
  routeChanged(interfaces: readonly number[], added: boolean): void {
    if (added) this.journal?.push({ kind: 'route', interfaces });
    this.applyRoute(interfaces, added);
  }

  private applyLink(link: DecodedLink, deleted: boolean): void {
    if (deleted) {
      this.links.delete(link.index);
      // Its addresses and routes went with it (IPv4 without a notification per route).
      this.addresses.delete(link.index);
      this.routes.delete(link.index);
    } else {
      this.links.set(link.index, { flags: link.flags, name: link.name });
    }
  }

  private applyAddress(address: DecodedAddress, added: boolean): void {
    if (isIpv6LinkLocal(address)) return;
    const key = addressKey(address);
    let keys = this.addresses.get(address.interfaceIndex);
    if (added) {
      if (!keys) this.addresses.set(address.interfaceIndex, (keys = new Set()));
      keys.add(key);
    } else if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.addresses.delete(address.interfaceIndex);
    }
  }

  private applyRoute(interfaces: readonly number[], added: boolean): void {
    for (const index of interfaces) {
      const count = (this.routes.get(index) ?? 0) + (added ? 1 : -1);
      if (count > 0) this.routes.set(index, count);
      else this.routes.delete(index);
    }
  }
}
