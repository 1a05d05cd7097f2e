/**
 * A request/reply channel over one rtnetlink socket: dumps, and batches of route requests pipelined into a few
 * datagrams at a time.
 *
 * Guarantees:
 * - Requests reach the kernel in the order given (one socket, one ordered write queue), so a batch whose deletes
 *   precede its adds is applied in that order.
 * - Every request gets an outcome: the errno of its ACK, or "unknown" (-1) when the socket fails or no ACK arrives in
 *   time (ACKs can be lost when the receive buffer overflows; the reply budget below keeps that from happening).
 * - A failed socket is replaced: the channel reopens it with capped, jittered backoff (backoff.ts) and reports its
 *   health (health.ts). Requests made meanwhile wait for the new socket, up to the timeout.
 * - A dump the kernel reports interrupted by a concurrent change (NLM_F_DUMP_INTR: objects may be missing or twice)
 *   is run again, up to `dumpAttempts` times; a caller never gets a dump the kernel called inconsistent.
 * - The operator's own changes never outrun the route monitor reading their notifications (echo-pacer.ts).
 * Caveats:
 * - The socket belongs to the network namespace of the process that opened it: the operator runs in the node's.
 * - The kernel sets NLM_F_DUMP_INTR on address and link dumps; route dumps (IPv4 and IPv6) restart or continue
 *   internally instead and are never flagged (measured on Linux 6.18).
 */
import netlink from 'netlink';
import { Reopener, resolveReopenPolicy, type ReopenPolicy } from './backoff.js';
import { processPacer, type EchoPacer, type PacedWriter } from './echo-pacer.js';
import { AdapterState, messageOf, type AdapterHealth, type AdapterListener, type ObservableAdapter } from './health.js';
import {
  encodeDumpRequest,
  encodeRouteRequest,
  errorCode,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  routeRequestLength,
  splitMessages,
  type RawMessage,
  type RouteRequest,
} from './netlink-codec.js';

const { RawNetlinkSocket } = netlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

/** Bytes of receive buffer one error reply may occupy (measured ~800 bytes for a route request echoed back). */
const REPLY_BYTES = 1024;

/** Options of {@link RtnlChannel.open}. */
export interface RtnlChannelOptions {
  /** Requests per datagram. Defaults to 64. */
  batchSize?: number;
  /** Datagrams in flight before waiting for their ACKs. Defaults to 4. */
  window?: number;
  /**
   * How long to wait for the ACKs of one datagram (or the end of a dump), and how long a request waits for a failed
   * socket to be reopened. Defaults to 10 000 ms.
   */
  timeoutMs?: number;
  /** SO_RCVBUF to ask for (capped by net.core.rmem_max). Defaults to 4 MiB. */
  receiveBufferBytes?: number;
  /** Runs of a dump the kernel keeps reporting interrupted before the dump fails. Defaults to 5. */
  dumpAttempts?: number;
  /** Backoff of reopening a failed socket. */
  reopen?: Partial<ReopenPolicy>;
  /** Paces route requests against the monitors reading their notifications. Defaults to the process's; null: none. */
  pacer?: EchoPacer | null;
}

/** Counters of the channel's life (monotonic; for tests, logs and metrics). */
export interface ChannelStats {
  /** Sockets opened to replace failed ones. */
  reopens: number;
  /** Sockets that failed (or were closed under the channel). */
  socketFailures: number;
  /** ENOBUFS: replies dropped, the socket kept. */
  overflows: number;
  /** Datagrams or dumps that got no reply in time. */
  timeouts: number;
  /** Dumps run again because the kernel reported them interrupted. */
  dumpRetries: number;
  /** Dumps that failed because every attempt was interrupted. */
  dumpsGivenUp: number;
  /** Times the pacer stopped waiting for a monitor that read nothing. */
  pacingStalls: number;
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
  /** The kernel flagged a message of this dump NLM_F_DUMP_INTR. */
  interrupted: boolean;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface UsableWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Thrown by {@link RtnlChannel.dump} when every attempt came back interrupted. */
export class DumpInterruptedError extends Error {
  constructor(attempts: number) {
    super(`the kernel interrupted the dump ${attempts} times in a row (the table kept changing while it was read)`);
    this.name = 'DumpInterruptedError';
  }
}

function isOpen(socket: RawSocket): boolean {
  try {
    socket.address();
    return true;
  } catch {
    return false;
  }
}

/** A rtnetlink request channel. */
export class RtnlChannel implements ObservableAdapter {
  private socket: RawSocket | undefined;
  private pid = 0;
  private paced: PacedWriter | undefined;
  private seq = 1;
  private readonly batches = new Set<PendingBatch>();
  private readonly dumps = new Map<number, PendingDump>();
  private readonly batchSize: number;
  private readonly window: number;
  private readonly timeoutMs: number;
  private readonly dumpAttempts: number;
  private readonly pacer: EchoPacer | null;
  /** Requests in flight whose error replies the receive buffer can hold (see REPLY_BYTES). */
  private replyBudget = Infinity;
  private dumpChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly reopener: Reopener;
  private readonly usableWaiters = new Set<UsableWaiter>();
  private readonly state = new AdapterState();
  readonly stats: ChannelStats = {
    reopens: 0,
    socketFailures: 0,
    overflows: 0,
    timeouts: 0,
    dumpRetries: 0,
    dumpsGivenUp: 0,
    pacingStalls: 0,
  };

  private constructor(private readonly options: RtnlChannelOptions) {
    this.batchSize = options.batchSize ?? 64;
    this.window = options.window ?? 4;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.dumpAttempts = Math.max(1, options.dumpAttempts ?? 5);
    this.reopener = new Reopener(resolveReopenPolicy(options.reopen), {
      stopped: () => this.closed,
      open: () => this.connect(),
      failed: (error) => {
        this.state.error('reopen', error);
        this.state.failed(error);
      },
      opened: () => {
        this.stats.reopens++;
        this.state.reopened();
        for (const waiter of [...this.usableWaiters]) waiter.resolve();
      },
    });
    this.pacer = options.pacer === undefined ? processPacer : options.pacer;
  }

  /** Opens a channel in the calling process's network namespace. Throws when no socket can be opened at all. */
  static open(options: RtnlChannelOptions = {}): RtnlChannel {
    const channel = new RtnlChannel(options);
    channel.connect();
    return channel;
  }

  /** Whether the socket is open; why it failed last. */
  get health(): AdapterHealth {
    return this.state.health;
  }

  /** Health changes, errors, reopens and dump retries, from now on. */
  subscribe(listener: AdapterListener): () => void {
    return this.state.subscribe(listener);
  }

  /** Reports an event to the channel's subscribers (the route table adds its operation counts). */
  emit(event: Parameters<AdapterListener>[0]): void {
    this.state.emit(event);
  }

  private connect(): void {
    const socket = new RawNetlinkSocket(netlink.Protocol.ROUTE, {
      recvBufferSize: this.options.receiveBufferBytes ?? 4 << 20,
      sendBufferSize: 1 << 20,
    });
    try {
      this.pid = socket.address().port;
      // Three quarters of the buffer for error replies of requests in flight, the rest for a dump's chunk.
      this.replyBudget = Math.max(1, Math.floor((socket.getRecvBufferSize() * 3) / 4 / REPLY_BYTES));
      socket.on('message', (datagram: Buffer) => {
        if (this.socket === socket) this.receive(datagram);
      });
      socket.on('error', (error: Error & { code?: string }) => this.onSocketError(socket, error));
      // Not emitted by the channel's own close (it lets go of the socket first): someone closed it under us.
      socket.on('close', () => this.lost(socket, new Error('the netlink socket was closed')));
      socket.unref();
    } catch (error) {
      socket.close();
      throw error;
    }
    this.socket = socket;
    this.paced = this.pacer?.writer(this.pid);
  }

  private onSocketError(socket: RawSocket, error: Error & { code?: string }): void {
    if (this.socket !== socket) return;
    // ENOBUFS from recvmsg: replies were dropped because the receive buffer overflowed. The socket stays usable;
    // whatever was in flight has an unknown outcome.
    if (error.code === 'ENOBUFS' && isOpen(socket)) {
      this.stats.overflows++;
      this.state.error('overflow', error);
      this.abandonInFlight(error);
      return;
    }
    this.lost(socket, error);
  }

  /** The socket failed or was closed: let go of it, fail what was in flight, and reopen with backoff. */
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
    this.abandonInFlight(error);
    this.state.failed(error);
    this.reopener.schedule();
  }

  /** Resolves once a socket is open (at once if it is); rejects when the channel is closed or after the timeout. */
  private usable(): Promise<RawSocket> {
    if (this.closed) return Promise.reject(new Error('the netlink channel is closed'));
    if (this.socket) return Promise.resolve(this.socket);
    return new Promise<RawSocket>((resolve, reject) => {
      const waiter: UsableWaiter = {
        resolve: () => {
          this.usableWaiters.delete(waiter);
          clearTimeout(timer);
          if (this.socket) resolve(this.socket);
          else reject(new Error('the netlink channel is closed'));
        },
        reject: (error) => {
          this.usableWaiters.delete(waiter);
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new Error(`the netlink socket failed and is not reopened yet: ${this.state.health.lastError ?? ''}`),
          ),
        this.timeoutMs,
      );
      this.usableWaiters.add(waiter);
    });
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
        // Sticky: the kernel flags the message where it noticed the change (or the NLMSG_DONE), not every later one.
        if (message.flags & NLM_F_DUMP_INTR) dump.interrupted = true;
        if (message.type === NLMSG_DONE) {
          this.dumps.delete(message.seq);
          dump.resolve();
        } else if (message.type === NLMSG_ERROR) {
          this.dumps.delete(message.seq);
          const error = new Error(`dump failed: errno ${errorCode(message)}`);
          this.state.error('dump', error);
          dump.reject(error);
        } else if (!dump.interrupted) {
          // An interrupted dump is thrown away: no point decoding the rest of it.
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

  private abandonInFlight(error: Error): void {
    for (const dump of this.dumps.values()) dump.reject(error);
    this.dumps.clear();
    // Unacknowledged requests have an unknown outcome; callers re-read the table.
    for (const batch of [...this.batches]) batch.finish(true);
    this.updateRef();
  }

  private updateRef(): void {
    const socket = this.socket;
    if (!socket) return;
    try {
      // Keep the process alive only while replies are awaited.
      if (this.batches.size > 0 || this.dumps.size > 0) socket.ref();
      else socket.unref();
    } catch (error) {
      // The binding closed the socket (a poll error) without telling the wrapper.
      this.lost(socket, error instanceof Error ? error : new Error(messageOf(error)));
    }
  }

  /** Sends a datagram; a socket that cannot send any more is replaced. Returns false when nothing was sent. */
  private send(socket: RawSocket, buffer: Buffer, done: (error?: Error & { code?: string }) => void): boolean {
    try {
      socket.send(buffer, undefined, (error?: Error & { code?: string }) => {
        // EBADF: the descriptor is gone; the socket will never work again.
        if (error?.code === 'EBADF') this.lost(socket, error);
        else if (error) this.state.error('send', error);
        done(error);
      });
      return true;
    } catch (error) {
      this.lost(socket, error instanceof Error ? error : new Error(messageOf(error)));
      return false;
    }
  }

  /**
   * Dumps one kind of object (RTM_GETROUTE / RTM_GETADDR / RTM_GETLINK) of every family, decoding each message as it
   * arrives (`decode` returns undefined to skip one). Dumps are serialized: the kernel runs one dump per socket at a
   * time (a second one gets EBUSY). A dump the kernel reports interrupted is run again.
   */
  dump<T>(type: number, decode: (message: RawMessage) => T | undefined): Promise<T[]> {
    const result = this.dumpChain.then(() => this.dumpConsistent(type, decode));
    this.dumpChain = result.catch(() => undefined);
    return result;
  }

  private async dumpConsistent<T>(type: number, decode: (message: RawMessage) => T | undefined): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      const socket = await this.usable();
      const { items, interrupted } = await this.dumpOnce(socket, type, decode);
      if (!interrupted) return items;
      if (attempt >= this.dumpAttempts) {
        const error = new DumpInterruptedError(attempt);
        this.stats.dumpsGivenUp++;
        this.state.error('dump-interrupted', error);
        throw error;
      }
      this.stats.dumpRetries++;
      this.state.emit({ type: 'dump-retried' });
    }
  }

  private dumpOnce<T>(
    socket: RawSocket,
    type: number,
    decode: (message: RawMessage) => T | undefined,
  ): Promise<{ items: T[]; interrupted: boolean }> {
    const seq = this.nextSeq();
    const items: T[] = [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dumps.delete(seq);
        this.updateRef();
        this.stats.timeouts++;
        const error = new Error(`netlink dump timed out after ${this.timeoutMs} ms`);
        this.state.error('timeout', error);
        reject(error);
      }, this.timeoutMs);
      const pending: PendingDump = {
        interrupted: false,
        take: (message) => {
          const item = decode(message);
          if (item !== undefined) items.push(item);
        },
        resolve: () => {
          clearTimeout(timer);
          resolve({ items, interrupted: pending.interrupted });
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.dumps.set(seq, pending);
      this.updateRef();
      this.send(socket, encodeDumpRequest(type, seq, this.pid), (error) => {
        if (error) this.dumps.get(seq)?.reject(error);
      });
    });
  }

  /**
   * Sends `count` route requests (built by `requestAt`) in order and resolves with one errno per request (0 =
   * success, -1 = unknown because the socket failed or no reply came in time). Rejects only when the channel is
   * closed or down for longer than the timeout before anything was sent.
   */
  async requestAll(count: number, requestAt: (index: number) => RouteRequest): Promise<number[]> {
    const codes = new Array<number>(count).fill(-1);
    const inFlight = new Set<Promise<void>>();
    let requestsInFlight = 0;
    let first = 0;
    while (first < count) {
      let socket: RawSocket;
      try {
        socket = await this.usable();
      } catch (error) {
        // Nothing sent yet: the caller learns why. Later, the unsent requests are reported unknown.
        if (first === 0) throw error;
        break;
      }
      const paced = this.paced;
      const size = Math.min(this.batchSize, count - first, this.replyBudget, paced?.maxBatch() ?? Infinity);
      // Room for the error replies of everything in flight, and for the echoes in the monitors' buffers.
      if (inFlight.size >= this.window || (inFlight.size > 0 && requestsInFlight + size > this.replyBudget)) {
        await Promise.race(inFlight);
        continue;
      }
      if (paced && !(await paced.room(size))) this.stats.pacingStalls++;
      // The socket may have failed while waiting: start over with the new one.
      if (this.socket !== socket) continue;
      const start = first;
      // Built per datagram: a plan of 10,000 operations never holds 10,000 requests at once.
      const batch: RouteRequest[] = [];
      for (let index = start; index < start + size; index++) batch.push(requestAt(index));
      first += size;
      requestsInFlight += size;
      const sent = this.sendBatch(socket, paced, batch).then((batchCodes) => {
        requestsInFlight -= size;
        batchCodes.forEach((code, index) => (codes[start + index] = code));
      });
      const tracked = sent.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    return codes;
  }

  private sendBatch(
    socket: RawSocket,
    paced: PacedWriter | undefined,
    batch: readonly RouteRequest[],
  ): Promise<number[]> {
    let length = 0;
    for (const request of batch) length += routeRequestLength(request);
    const buffer = Buffer.allocUnsafe(length);
    // Consecutive sequence numbers within a datagram: replies are matched by their distance from the first.
    if (this.seq + batch.length > 0xffffffff) this.seq = 1;
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
          if (!this.batches.has(pending)) return;
          clearTimeout(timer);
          this.batches.delete(pending);
          if (unknown) pending.codes.fill(-1);
          const successes: number[] = [];
          pending.codes.forEach((code, index) => {
            if (code === 0) successes.push((firstSeq + index) >>> 0);
          });
          paced?.answered(batch.length, successes);
          this.updateRef();
          resolve(pending.codes);
        },
      };
      const timer = setTimeout(() => {
        this.stats.timeouts++;
        this.state.error('timeout', new Error(`no ACK within ${this.timeoutMs} ms`));
        pending.finish(true);
      }, this.timeoutMs);
      this.batches.add(pending);
      paced?.sent(batch.length, (firstSeq + batch.length - 1) >>> 0);
      this.updateRef();
      const sent = this.send(socket, buffer, (error) => {
        if (error) pending.finish(true);
      });
      if (!sent) pending.finish(true);
    });
  }

  /**
   * Closes the socket under the channel, as a failure would (not through {@link close}): what tests use to show that
   * the channel notices and reopens. Not for production use.
   */
  failSocketForTesting(): void {
    this.socket?.close();
  }

  /** Closes the socket for good; pending requests resolve as unknown, waiting ones reject. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reopener.cancel();
    const error = new Error('the netlink channel is closed');
    for (const waiter of [...this.usableWaiters]) waiter.reject(error);
    const socket = this.socket;
    this.socket = undefined;
    this.paced?.detach();
    this.paced = undefined;
    this.abandonInFlight(error);
    socket?.close();
  }
}
