/**
 * Keeps the operator's own route changes from overflowing the route monitor's socket.
 *
 * Every route the channel adds, replaces or deletes comes back to the monitor as a notification (its "echo"), queued
 * in the monitor's socket by the kernel while the channel's request is processed, before the channel even reads its
 * ACK. A plan of thousands of routes therefore queues thousands of notifications, faster than the monitor reads them
 * (it reads a few dozen per event-loop turn), and the socket's receive buffer (SO_RCVBUF, capped by
 * net.core.rmem_max: 416 KiB on a stock kernel) holds only a few hundred: the kernel then drops notifications and
 * flags the socket, which the `netlink` binding turns into a poll error.
 *
 * So the channel asks for room before each datagram: the echoes it caused that no monitor has read yet, plus the
 * requests in flight, plus the datagram must fit in what each monitor's buffer can hold. Echoes are recognized by the
 * port of the requesting socket that the kernel puts in each notification, and counted by sequence number (a
 * monitor that read the echo of request N has read the echoes of every earlier request), so requests that cause no
 * notification, or several, never stall or fool the count.
 *
 * Without a monitor in the process (or while it reopens) nothing waits.
 */

/** Bytes of socket buffer one route notification may occupy (measured: ~1.0 KiB IPv4, ~1.3 KiB IPv6, with slack). */
export const ECHO_BYTES = 1536;

/** How long a writer waits for a monitor that reads nothing before it stops waiting for that monitor. */
export const DEFAULT_STALL_MS = 2_000;

/** Whether sequence number `a` comes after `b` (netlink sequence numbers wrap around at 2^32). */
export function seqAfter(a: number, b: number): boolean {
  const distance = (a - b) >>> 0;
  return distance !== 0 && distance < 0x80000000;
}

interface Writer {
  port: number;
  /** Requests sent and not acknowledged yet: each may have queued an echo already. */
  inFlight: number;
  /** Sequence numbers of acknowledged, successful requests that some reader may not have read the echo of. */
  successes: number[];
  /** The last sequence number sent. */
  lastSent: number | undefined;
}

interface Reader {
  /** Unread echoes the reader's socket can hold with room to spare for everyone else's notifications. */
  capacity: number;
  /** The last echo read, by writer port. */
  read: Map<number, number>;
}

/** A channel's side of the pacer. */
export interface PacedWriter {
  /** The largest datagram (in requests) that fits every reader. */
  maxBatch(): number;
  /**
   * Resolves when `count` more requests fit every reader (at once when there is no reader). Resolves `false` when it
   * stopped waiting for a reader that made no progress for the stall time, `true` otherwise.
   */
  room(count: number): Promise<boolean>;
  /** `count` requests, the last with sequence number `lastSeq`, were sent. */
  sent(count: number, lastSeq: number): void;
  /** A datagram's requests were answered: `count` are no longer in flight, `successes` succeeded (so they echo). */
  answered(count: number, successes: readonly number[]): void;
  /** The socket is gone (closed or failed): its requests will never be answered or echoed any more. */
  detach(): void;
}

/** A monitor's side of the pacer. */
export interface PacedReader {
  /** The notification read was caused by request `seq` of the socket with port `port`. */
  echoed(port: number, seq: number): void;
  /** The reader's socket was replaced: whatever was queued in the old one is gone. */
  reset(): void;
  /** The reader stopped. */
  detach(): void;
}

/** Readers and writers of one process (one network namespace). */
export class EchoPacer {
  private readonly writers = new Map<number, Writer>();
  private readonly readers = new Set<Reader>();
  private waiters: Array<() => void> = [];

  constructor(private readonly stallMs = DEFAULT_STALL_MS) {}

  /** Registers a channel's socket. */
  writer(port: number): PacedWriter {
    const writer: Writer = { port, inFlight: 0, successes: [], lastSent: undefined };
    this.writers.set(port, writer);
    return {
      maxBatch: () => this.maxBatch(),
      room: (count) => this.room(count),
      sent: (count, lastSeq) => {
        writer.inFlight += count;
        writer.lastSent = lastSeq;
      },
      answered: (count, successes) => {
        writer.inFlight = Math.max(0, writer.inFlight - count);
        for (const seq of successes) {
          // Already read by every reader (the monitor may read an echo before the channel reads the ACK).
          if (this.readers.size > 0 && [...this.readers].every((reader) => this.hasRead(reader, port, seq))) continue;
          writer.successes.push(seq);
        }
        this.prune(writer);
        this.wake();
      },
      detach: () => {
        if (this.writers.get(port) === writer) this.writers.delete(port);
        for (const reader of this.readers) reader.read.delete(port);
        this.wake();
      },
    };
  }

  /** Registers a monitor whose socket buffer holds `receiveBufferBytes` (as the kernel reports SO_RCVBUF). */
  reader(receiveBufferBytes: number): PacedReader {
    const reader: Reader = {
      // Half of the buffer for our echoes, half for the rest of the node's changes and for reading late.
      capacity: Math.max(1, Math.floor(receiveBufferBytes / 2 / ECHO_BYTES)),
      read: new Map(),
    };
    this.readers.add(reader);
    this.markDrained(reader);
    return {
      echoed: (port, seq) => {
        const writer = this.writers.get(port);
        if (!writer) return;
        const last = reader.read.get(port);
        if (last !== undefined && !seqAfter(seq, last)) return;
        reader.read.set(port, seq);
        this.prune(writer);
        this.wake();
      },
      reset: () => {
        this.markDrained(reader);
        this.wake();
      },
      detach: () => {
        this.readers.delete(reader);
        this.wake();
      },
    };
  }

  /** Unread echoes plus requests in flight, for `reader`, over every writer. */
  backlog(reader: Reader): number {
    let total = 0;
    for (const writer of this.writers.values()) {
      total += writer.inFlight;
      for (const seq of writer.successes) if (!this.hasRead(reader, writer.port, seq)) total++;
    }
    return total;
  }

  private maxBatch(): number {
    let smallest = Infinity;
    for (const reader of this.readers) smallest = Math.min(smallest, reader.capacity);
    return smallest;
  }

  private fits(count: number): boolean {
    for (const reader of this.readers) {
      const backlog = this.backlog(reader);
      // A datagram larger than a reader's capacity is only sent into an empty backlog (callers split datagrams with
      // maxBatch, so this happens only when the capacity shrank meanwhile).
      if (backlog > 0 && backlog + count > reader.capacity) return false;
    }
    return true;
  }

  private async room(count: number): Promise<boolean> {
    while (!this.fits(count)) {
      const progressed = await this.nextChange();
      if (!progressed) {
        // No reader read anything for a while: one of them does not get our echoes (e.g. it watches other groups).
        // Waiting longer would stall route programming for good; treat what was sent as read.
        for (const reader of this.readers) this.markDrained(reader);
        return false;
      }
    }
    return true;
  }

  private nextChange(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== wake);
        resolve(false);
      }, this.stallMs);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(wake);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private hasRead(reader: Reader, port: number, seq: number): boolean {
    const last = reader.read.get(port);
    return last !== undefined && !seqAfter(seq, last);
  }

  /** Drops successes every reader has read the echo of (with no reader, all of them). */
  private prune(writer: Writer): void {
    let drop = 0;
    while (drop < writer.successes.length) {
      const seq = writer.successes[drop] as number;
      if ([...this.readers].some((reader) => !this.hasRead(reader, writer.port, seq))) break;
      drop++;
    }
    if (drop > 0) writer.successes.splice(0, drop);
  }

  private markDrained(reader: Reader): void {
    for (const writer of this.writers.values()) {
      if (writer.lastSent !== undefined) reader.read.set(writer.port, writer.lastSent);
      this.prune(writer);
    }
  }
}

/**
 * The pacer of this process: a process lives in one network namespace, so its channels' echoes reach its monitors.
 * Channels and monitors use it unless given another.
 */
export const processPacer = new EchoPacer();
