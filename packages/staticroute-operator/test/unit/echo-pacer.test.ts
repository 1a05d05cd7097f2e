import { describe, expect, it } from 'vitest';
import { ECHO_BYTES, EchoPacer, seqAfter } from '../../src/adapters/echo-pacer.js';

/** A reader whose buffer holds `capacity` echoes (the pacer keeps half of it for everyone else). */
const bufferFor = (capacity: number) => capacity * 2 * ECHO_BYTES;

async function settles(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
  return settled;
}

describe('echo pacing', () => {
  it('compares sequence numbers across the wrap-around', () => {
    expect(seqAfter(5, 4)).toBe(true);
    expect(seqAfter(4, 4)).toBe(false);
    expect(seqAfter(1, 0xffffffff)).toBe(true);
    expect(seqAfter(0xffffffff, 1)).toBe(false);
  });

  it('lets a writer go at once without a reader', async () => {
    const pacer = new EchoPacer(60_000);
    const writer = pacer.writer(100);
    writer.sent(1_000, 1_000);
    expect(writer.maxBatch()).toBe(Infinity);
    expect(await settles(writer.room(1_000))).toBe(true);
  });

  it('holds a writer until the reader read the echoes of what is in flight and acknowledged', async () => {
    const pacer = new EchoPacer(60_000);
    const reader = pacer.reader(bufferFor(100));
    const writer = pacer.writer(100);
    expect(writer.maxBatch()).toBe(100);
    writer.sent(64, 64);
    writer.answered(
      64,
      Array.from({ length: 64 }, (_, index) => index + 1),
    );
    const waiting = writer.room(64);
    expect(await settles(waiting)).toBe(false);
    reader.echoed(100, 20);
    expect(await settles(waiting)).toBe(false);
    reader.echoed(100, 40);
    expect(await waiting).toBe(true);
  });

  it('is not stalled by requests that echo nothing: a later echo passes them', async () => {
    const pacer = new EchoPacer(60_000);
    const reader = pacer.reader(bufferFor(10));
    const writer = pacer.writer(7);
    writer.sent(10, 10);
    writer.answered(10, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const waiting = writer.room(5);
    reader.echoed(7, 10);
    expect(await waiting).toBe(true);
    // Echoes of another socket are not ours.
    writer.sent(10, 20);
    const blocked = writer.room(5);
    reader.echoed(8, 20);
    expect(await settles(blocked)).toBe(false);
    writer.answered(10, []);
    expect(await blocked).toBe(true);
  });

  it('counts a failed request as no echo, and forgets a reader that stopped or a writer that failed', async () => {
    const pacer = new EchoPacer(60_000);
    const reader = pacer.reader(bufferFor(10));
    const writer = pacer.writer(7);
    writer.sent(10, 10);
    const waiting = writer.room(5);
    expect(await settles(waiting)).toBe(false);
    reader.detach();
    expect(await waiting).toBe(true);
    const second = pacer.reader(bufferFor(10));
    writer.sent(10, 20);
    expect(await settles(writer.room(5))).toBe(false);
    writer.detach();
    const other = pacer.writer(8);
    expect(await settles(other.room(5))).toBe(true);
    second.detach();
  });

  it('treats a reopened reader as drained: what the old socket held is gone', async () => {
    const pacer = new EchoPacer(60_000);
    const reader = pacer.reader(bufferFor(10));
    const writer = pacer.writer(7);
    writer.sent(10, 10);
    writer.answered(10, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const waiting = writer.room(5);
    reader.reset();
    expect(await waiting).toBe(true);
  });

  it('stops waiting for a reader that reads nothing for the stall time', async () => {
    const pacer = new EchoPacer(1);
    pacer.reader(bufferFor(10));
    const writer = pacer.writer(7);
    writer.sent(10, 10);
    writer.answered(10, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await writer.room(5)).toBe(false);
    // Then what was sent counts as read.
    expect(await settles(writer.room(5))).toBe(true);
  });
});
