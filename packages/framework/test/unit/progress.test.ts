import { describe, expect, test } from 'vitest';
import { DEFAULT_BACKOFF } from '../../src/core/backoff.js';
import { nextStep, progressFor, recordAttempt, type CauseProgress } from '../../src/core/progress.js';

const now = Date.parse('2026-01-01T00:00:00Z');
const limits = { maxAttempts: 3, backoff: { ...DEFAULT_BACKOFF, jitter: 0 } };
const fresh = (): CauseProgress => progressFor({}, 'update', 'digest-1', now).progress;

describe('progressFor', () => {
  test('continues stored progress of the same cause and target', () => {
    const stored = { ...fresh(), handlers: { a: { state: 'success' as const, retries: 0 } } };
    const result = progressFor({ progress: stored }, 'update', 'digest-1', now + 1000);
    expect(result).toEqual({ progress: stored, resumed: true });
  });

  test('starts afresh for another target or cause', () => {
    const stored = { ...fresh(), handlers: { a: { state: 'success' as const, retries: 0 } } };
    expect(progressFor({ progress: stored }, 'update', 'digest-2', now).progress.handlers).toEqual({});
    expect(progressFor({ progress: stored }, 'delete', '', now).progress.handlers).toEqual({});
  });
});

describe('nextStep', () => {
  test('runs handlers in order, skipping finished ones', () => {
    let progress = fresh();
    expect(nextStep(progress, ['a', 'b'], now)).toEqual({ kind: 'run', handlerId: 'a', retry: 0 });
    progress = recordAttempt(progress, 'a', { kind: 'success' }, limits, now).progress;
    expect(nextStep(progress, ['a', 'b'], now)).toEqual({ kind: 'run', handlerId: 'b', retry: 0 });
    progress = recordAttempt(progress, 'b', { kind: 'success' }, limits, now).progress;
    expect(nextStep(progress, ['a', 'b'], now)).toEqual({ kind: 'done', succeeded: ['a', 'b'], failed: [] });
  });

  test('a retrying handler blocks later ones until its time', () => {
    const { progress, decision } = recordAttempt(
      fresh(),
      'a',
      { kind: 'failure', failure: 'temporary', message: 'boom' },
      limits,
      now,
    );
    expect(decision).toEqual({ kind: 'retry', delayMs: 1000, retries: 1, message: 'boom' });
    expect(nextStep(progress, ['a', 'b'], now + 500)).toEqual({ kind: 'wait', handlerId: 'a', untilMs: now + 1000 });
    expect(nextStep(progress, ['a', 'b'], now + 1000)).toEqual({ kind: 'run', handlerId: 'a', retry: 1 });
  });

  test('a permanent failure lets later handlers run and ends as failed', () => {
    let progress = recordAttempt(
      fresh(),
      'a',
      { kind: 'failure', failure: 'permanent', message: 'no' },
      limits,
      now,
    ).progress;
    expect(nextStep(progress, ['a', 'b'], now)).toEqual({ kind: 'run', handlerId: 'b', retry: 0 });
    progress = recordAttempt(progress, 'b', { kind: 'success' }, limits, now).progress;
    expect(nextStep(progress, ['a', 'b'], now)).toEqual({ kind: 'done', succeeded: ['b'], failed: ['a'] });
  });

  test('progress entries of handlers no longer selected are ignored', () => {
    const progress = recordAttempt(fresh(), 'gone', { kind: 'success' }, limits, now).progress;
    expect(nextStep(progress, ['a'], now)).toEqual({ kind: 'run', handlerId: 'a', retry: 0 });
  });
});

describe('recordAttempt', () => {
  const failure = { kind: 'failure' as const, failure: 'temporary' as const, message: 'x' };

  test('retries count up and end in a permanent failure at maxAttempts', () => {
    let progress = fresh();
    const decisions = [];
    for (let i = 0; i < 3; i++) {
      const recorded = recordAttempt(progress, 'a', failure, limits, now);
      progress = recorded.progress;
      decisions.push(recorded.decision.kind);
    }
    expect(decisions).toEqual(['retry', 'retry', 'failed']);
    expect(progress.handlers.a).toEqual({ state: 'failure', retries: 3, message: 'x' });
  });

  test('a requested delay wins over backoff; backoff doubles otherwise', () => {
    const requested = recordAttempt(fresh(), 'a', { ...failure, requestedDelayMs: 42 }, limits, now);
    expect(requested.decision).toMatchObject({ kind: 'retry', delayMs: 42 });
    expect(requested.progress.handlers.a?.delayedUntil).toBe(new Date(now + 42).toISOString());
    const second = recordAttempt(requested.progress, 'a', failure, limits, now);
    expect(second.decision).toMatchObject({ kind: 'retry', delayMs: 2000, retries: 2 });
  });

  test('timeouts are temporary failures', () => {
    const { decision } = recordAttempt(fresh(), 'a', { ...failure, failure: 'timeout' }, limits, now);
    expect(decision.kind).toBe('retry');
  });

  test('success keeps the retry count for status', () => {
    const failed = recordAttempt(fresh(), 'a', failure, limits, now).progress;
    expect(recordAttempt(failed, 'a', { kind: 'success' }, limits, now).progress.handlers.a).toEqual({
      state: 'success',
      retries: 1,
    });
  });

  test('does not mutate its input', () => {
    const progress = fresh();
    recordAttempt(progress, 'a', { kind: 'success' }, limits, now);
    expect(progress.handlers).toEqual({});
  });
});
