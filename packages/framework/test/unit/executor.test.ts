import { getEventListeners } from 'node:events';
import { describe, expect, test } from 'vitest';
import {
  classifyFailure,
  describeError,
  HandlerTimeoutError,
  PermanentError,
  TemporaryError,
} from '../../src/core/errors.js';
import { runAttempt } from '../../src/engine/executor.js';

describe('runAttempt', () => {
  test('returns the value', async () => {
    const outcome = await runAttempt(() => 42, { handlerId: 'h' });
    expect(outcome).toMatchObject({ ok: true, value: 42 });
  });

  test('a timeout aborts the signal, waits for the handler to return, and reports a timeout', async () => {
    let returned = false;
    const outcome = await runAttempt(
      (signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            // The handler takes its time to wind down; the attempt must still wait for it.
            setTimeout(() => {
              returned = true;
              reject(new Error('aborted'));
            }, 20);
          });
        }),
      { handlerId: 'slow', timeoutMs: 5 },
    );
    expect(returned).toBe(true);
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error).toBeInstanceOf(HandlerTimeoutError);
  });

  test('shutdown aborts the signal too', async () => {
    const shutdown = new AbortController();
    const running = runAttempt(
      (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { handlerId: 'h', shutdownSignal: shutdown.signal },
    );
    shutdown.abort(new Error('shutdown'));
    const outcome = await running;
    expect(!outcome.ok && (outcome.error as Error).message).toBe('shutdown');
  });

  test('shutdown aborts a running attempt that also has a time limit, and is not reported as a timeout', async () => {
    const shutdown = new AbortController();
    let seen: AbortSignal | undefined;
    const running = runAttempt(
      (signal) => {
        seen = signal;
        return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
      { handlerId: 'h', timeoutMs: 60_000, shutdownSignal: shutdown.signal },
    );
    expect(seen?.aborted).toBe(false);
    shutdown.abort(new Error('shutdown'));
    expect(seen?.aborted).toBe(true);
    const outcome = await running;
    expect(!outcome.ok && outcome.error).not.toBeInstanceOf(HandlerTimeoutError);
    expect(!outcome.ok && (outcome.error as Error).message).toBe('shutdown');
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  test('an attempt started after shutdown gets an aborted signal', async () => {
    const shutdown = new AbortController();
    shutdown.abort(new Error('shutdown'));
    const outcome = await runAttempt((signal) => signal.aborted, { handlerId: 'h', shutdownSignal: shutdown.signal });
    expect(outcome).toMatchObject({ ok: true, value: true });
  });

  test('attempts leave no listener on the shutdown signal, whatever their end', async () => {
    const shutdown = new AbortController();
    const during: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      await runAttempt(
        () => {
          during.push(getEventListeners(shutdown.signal, 'abort').length);
          if (i % 3 === 1) throw new Error('failed');
          if (i % 3 === 2) return new Promise((resolve) => setTimeout(resolve, 2));
          return i;
        },
        { handlerId: 'h', timeoutMs: i % 3 === 2 ? 1 : 1000, shutdownSignal: shutdown.signal },
      );
    }
    // Registered while the attempt runs, removed when it ends.
    expect(new Set(during)).toEqual(new Set([1]));
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });
});

describe('errors', () => {
  test('classification', () => {
    expect(classifyFailure(new PermanentError('x'))).toBe('permanent');
    expect(classifyFailure(new TemporaryError('x', { delayMs: 5 }))).toBe('temporary');
    expect(classifyFailure(new Error('x'))).toBe('temporary');
    expect(classifyFailure('a string')).toBe('temporary');
    expect(classifyFailure(new HandlerTimeoutError('h', 1))).toBe('timeout');
    expect(new TemporaryError('x', { delayMs: 5 }).delayMs).toBe(5);
  });

  test('describeError never throws', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('plain')).toBe('plain');
    expect(describeError(circular)).toBe('[object Object]');
    expect(describeError(undefined)).toBe('undefined');
  });
});
