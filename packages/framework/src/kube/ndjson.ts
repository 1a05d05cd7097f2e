/**
 * Splits a chunked HTTP body into newline-delimited JSON values (the watch stream's framing).
 *
 * TCP and TLS cut the stream anywhere: in the middle of a line, of a JSON string, or of a multi-byte UTF-8 character.
 * The parser therefore buffers bytes (not decoded text) until a newline arrives and decodes whole lines only.
 */

/** Incremental newline-delimited JSON parser. Feed chunks; complete values come out in order. */
export class NdjsonParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * @param onValue - Called once per complete line, in order, with the parsed value.
   * @param maxLineBytes - A line longer than this is an error (protects memory from a runaway stream).
   *   Defaults to 64 MiB, far above the 1.5 MiB object limit.
   */
  constructor(
    private readonly onValue: (value: unknown) => void,
    private readonly maxLineBytes = 64 * 1024 * 1024,
  ) {}

  /** Feeds one chunk. Throws a SyntaxError on a line that is not JSON. */
  push(chunk: Buffer | string): void {
    let data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let newline = data.indexOf(0x0a);
    while (newline !== -1) {
      const head = data.subarray(0, newline);
      const line = this.pendingBytes > 0 ? Buffer.concat([...this.pending, head]) : head;
      this.pending = [];
      this.pendingBytes = 0;
      this.emit(line);
      data = data.subarray(newline + 1);
      newline = data.indexOf(0x0a);
    }
    if (data.length > 0) {
      this.pendingBytes += data.length;
      if (this.pendingBytes > this.maxLineBytes) {
        throw new RangeError(`watch stream line exceeds ${this.maxLineBytes} bytes`);
      }
      // Copy: the caller may reuse the chunk's memory.
      this.pending.push(Buffer.from(data));
    }
  }

  /** Ends the stream: a last line without a trailing newline is still a value. */
  end(): void {
    if (this.pendingBytes > 0) {
      const line = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      this.emit(line);
    }
  }

  /** Bytes buffered for an incomplete line. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  private emit(line: Buffer): void {
    const text = line.toString('utf8').trim();
    if (text.length === 0) return;
    this.onValue(JSON.parse(text));
  }
}
