import { describe, expect, it } from 'vitest';
import { describeFailure, Outage } from '../../src/logic/outage.js';

describe('Outage', () => {
  it('logs the first failure and the recovery, nothing in between', () => {
    const outage = new Outage();
    expect(outage.succeeded(0)).toBeUndefined();
    expect(outage.failed('timed out', 1000)).toEqual({ kind: 'began', error: 'timed out' });
    expect(outage.ongoing).toBe(true);
    expect(outage.failed('timed out', 61_000)).toBeUndefined();
    expect(outage.failed('ECONNREFUSED', 121_000)).toBeUndefined();
    expect(outage.succeeded(181_000)).toEqual({
      kind: 'ended',
      failures: 3,
      durationMs: 180_000,
      lastError: 'ECONNREFUSED',
    });
    expect(outage.ongoing).toBe(false);
    expect(outage.succeeded(182_000)).toBeUndefined();
  });

  it('begins a new outage after a recovery', () => {
    const outage = new Outage();
    outage.failed('a', 0);
    outage.succeeded(10);
    expect(outage.failed('b', 20)).toEqual({ kind: 'began', error: 'b' });
    expect(outage.succeeded(50)).toMatchObject({ failures: 1, durationMs: 30 });
  });
});

describe('describeFailure', () => {
  it('is the message with the code, without a stack', () => {
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(describeFailure(error)).toBe('socket hang up (ECONNRESET)');
    expect(describeFailure(Object.assign(new Error('Forbidden'), { statusCode: 403 }))).toBe('Forbidden (403)');
    expect(describeFailure(new Error('plain'))).toBe('plain');
    expect(describeFailure('text')).toBe('text');
  });
});
