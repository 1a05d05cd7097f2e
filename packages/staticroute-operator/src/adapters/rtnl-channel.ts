/**
 * A request/reply channel over one rtnetlink socket: dumps, and batches of route requests pipelined into a few
 * datagrams at a time.
 *
 * Guarantees:
 * - Requests reach the kernel in the order given (one socket, one ordered write queue), so a batch whose deletes
 *   precede its adds is applied in that order.
 * - Every request gets an outcome: the errno of its ACK, or a rejection when the socket fails or no ACK arrives in
 *   time (ACKs can be lost when the receive buffer overflows; the window keeps that unlikely).
 * Caveats:
 * - The socket belongs to the network namespace of the process that opened it: the operator runs in the node's.
 */
import netlink from 'netlink';
import {
  encodeDumpRequest,
  encodeRouteRequest,
  errorCode,
  NLMSG_DONE,
  NLMSG_ERROR,
  routeRequestLength,
  splitMessages,
  type RawMessage,
  type RouteRequest,
} from './netlink-codec.js';

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

/** Options of {@link RtnlChannel.open}. */
export interface RtnlChannelOptions {
  /** Requests per datagram. Defaults to 64. */
  batchSize?: number;
  /** Datagrams in flight before waiting for their ACKs. Defaults to 4. */
  window?: number;
  /** How long to wait for the ACKs of one datagram (or the end of a dump). Defaults to 10 000 ms. */
  timeoutMs?: number;
  /** SO_RCVBUF to ask for (capped by net.core.rmem_max). Defaults to 4 MiB. */
  receiveBufferBytes?: number;
}

/** A datagram of requests with consecutive sequence numbers, waiting for its last ACK. */
interface PendingBatch {
  firstSeq: number;
  count: number;
  /** errno per request; 0 until an error arrives. */
  codes: number[];
  finish: (unknown: boolean) => void;
}

interface PendingDump {
  /** Decodes one message as it arrives, so that no datagram outlives its receive (a 10,000-route dump is ~1 MB). */
  take: (message: RawMessage) => void;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A rtnetlink request channel. */
export class RtnlChannel {
  private readonly socket: RawSocket;
  private readonly pid: number;
  private seq = 1;
  private readonly batches = new Set<PendingBatch>();
  private readonly dumps = new Map<number, PendingDump>();
  private readonly batchSize: number;
  private readonly window: number;
  private readonly timeoutMs: number;
  private failure: Error | undefined;
  private dumpChain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(options: RtnlChannelOptions) {
    this.batchSize = options.batchSize ?? 64;
    this.window = options.window ?? 4;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const bytes = options.receiveBufferBytes ?? 4 << 20;
    this.socket = new RawNetlinkSocket(netlink.Protocol.ROUTE, { recvBufferSize: bytes, sendBufferSize: 1 << 20 });
    this.pid = this.socket.address().port;
    this.socket.on('message', (datagram: Buffer) => this.receive(datagram));
    this.socket.on('error', (error: Error & { code?: string }) => {
      // ENOBUFS: replies were dropped because the receive buffer overflowed. The socket stays usable; whatever was
      // in flight has an unknown outcome.
      if (error.code === 'ENOBUFS') this.abandonInFlight(error);
      else this.fail(error);
    });
    this.socket.unref();
  }

  /** Opens a channel in the calling process's network namespace. */
  static open(options: RtnlChannelOptions = {}): RtnlChannel {
    return new RtnlChannel(options);
  }

  private nextSeq(): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0 || 1;
    return seq;
  }

  private receive(datagram: Buffer): void {
    for (const message of splitMessages(datagram)) {
      const dump = this.dumps.get(message.seq);
      if (dump) {
        if (message.type === NLMSG_DONE) {
          this.dumps.delete(message.seq);
          dump.resolve();
        } else if (message.type === NLMSG_ERROR) {
          this.dumps.delete(message.seq);
          dump.reject(new Error(`dump failed: errno ${errorCode(message)}`));
        } else {
          dump.take(message);
        }
        continue;
      }
      if (message.type !== NLMSG_ERROR) continue;
      // At most `window` batches are in flight, so a scan is cheaper than an entry per request.
      for (const batch of this.batches) {
        const index = (message.seq - batch.firstSeq) >>> 0;
        if (index >= batch.count) continue;
        batch.codes[index] = errorCode(message);
        if (index === batch.count - 1) batch.finish(false);
        break;
      }
    }
    this.updateRef();
  }

  private fail(error: Error): void {
    this.failure = error;
    this.abandonInFlight(error);
  }

  private abandonInFlight(error: Error): void {
    for (const dump of this.dumps.values()) dump.reject(error);
    this.dumps.clear();
    // Unacknowledged requests have an unknown outcome; callers re-read the table.
    for (const batch of [...this.batches]) batch.finish(true);
    this.updateRef();
  }

  private updateRef(): void {
    if (this.closed) return;
    // Keep the process alive only while replies are awaited.
    if (this.batches.size > 0 || this.dumps.size > 0) this.socket.ref();
    else this.socket.unref();
  }

  private assertUsable(): void {
    if (this.closed) throw new Error('the netlink channel is closed');
    if (this.failure) throw new Error(`the netlink channel failed: ${this.failure.message}`);
  }

  /**
   * Dumps one kind of object (RTM_GETROUTE / RTM_GETADDR) of every family, decoding each message as it arrives
   * (`decode` returns undefined to skip one). Dumps are serialized: the kernel runs one dump per socket at a time (a
   * second one gets EBUSY).
   */
  dump<T>(type: number, decode: (message: RawMessage) => T | undefined): Promise<T[]> {
    const result = this.dumpChain.then(() => this.startDump(type, decode));
    this.dumpChain = result.catch(() => undefined);
    return result;
  }

  private startDump<T>(type: number, decode: (message: RawMessage) => T | undefined): Promise<T[]> {
    this.assertUsable();
    const seq = this.nextSeq();
    const items: T[] = [];
    return new Promise<T[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dumps.delete(seq);
        this.updateRef();
        reject(new Error(`netlink dump timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.dumps.set(seq, {
        take: (message) => {
          const item = decode(message);
          if (item !== undefined) items.push(item);
        },
        resolve: () => {
          clearTimeout(timer);
          resolve(items);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.updateRef();
      this.socket.send(encodeDumpRequest(type, seq, this.pid), undefined, (error?: Error) => {
        if (error) this.dumps.get(seq)?.reject(error);
      });
    });
  }

  /**
   * Sends `count` route requests (built by `requestAt`) in order and resolves with one errno per request (0 = success, -1 = unknown because the
   * channel failed or timed out).
   */
  async requestAll(count: number, requestAt: (index: number) => RouteRequest): Promise<number[]> {
    this.assertUsable();
    const codes = new Array<number>(count).fill(-1);
    const inFlight = new Set<Promise<void>>();
    for (let first = 0; first < count; first += this.batchSize) {
      // Built per datagram: a plan of 10,000 operations never holds 10,000 requests at once.
      const batch: RouteRequest[] = [];
      for (let index = first; index < Math.min(count, first + this.batchSize); index++) batch.push(requestAt(index));
      const sent = this.sendBatch(batch).then((batchCodes) => {
        batchCodes.forEach((code, index) => (codes[first + index] = code));
      });
      const tracked = sent.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= this.window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return codes;
  }

  private sendBatch(batch: readonly RouteRequest[]): Promise<number[]> {
    let length = 0;
    for (const request of batch) length += routeRequestLength(request);
    const buffer = Buffer.allocUnsafe(length);
    const firstSeq = this.seq;
    let offset = 0;
    for (let index = 0; index < batch.length; index++) {
      // Earlier requests only hear back on error; the last one's ACK (or error) closes the batch.
      offset = encodeRouteRequest(
        buffer,
        offset,
        batch[index] as RouteRequest,
        this.nextSeq(),
        this.pid,
        index === batch.length - 1,
      );
    }
    return new Promise<number[]>((resolve) => {
      const pending: PendingBatch = {
        firstSeq,
        count: batch.length,
        codes: new Array<number>(batch.length).fill(0),
        finish: (unknown) => {
          clearTimeout(timer);
          this.batches.delete(pending);
          if (unknown) pending.codes.fill(-1);
          this.updateRef();
          resolve(pending.codes);
        },
      };
      const timer = setTimeout(() => pending.finish(true), this.timeoutMs);
      this.batches.add(pending);
      this.updateRef();
      this.socket.send(buffer, undefined, (error?: Error) => {
        if (error) pending.finish(true);
      });
    });
  }

  /** Closes the socket; pending requests resolve as unknown. */
  close(): void {
    if (this.closed) return;
    this.fail(new Error('closed'));
    this.closed = true;
    this.socket.close();
  }
}
