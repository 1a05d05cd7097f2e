/**
 * B3 (docs/RELIABILITY.md): the codec says why it discarded stored state, for every kind of garbage the reliability
 * suite writes, and keeps what is still usable. Also the plausibility check of stored progress.
 */
import { describe, expect, test } from 'vitest';
import {
  encodeStateFile,
  inspectAnnotationState,
  inspectStateFile,
  stateAnnotationKeys,
} from '../../src/core/state-codec.js';
import { implausibleProgress, type CauseProgress } from '../../src/core/progress.js';

const uid = '6f1c2d3e-0000-4000-8000-000000000001';
const progress: CauseProgress = {
  cause: 'update',
  target: 'abc',
  startedAt: '2026-01-01T00:00:00.000Z',
  handlers: { routes: { state: 'retrying', retries: 2, delayedUntil: '2026-01-01T00:01:00.000Z', message: 'x' } },
};
const good = encodeStateFile(uid, 'r1', { diffBase: { spec: { a: 1 } }, progress });
const goodFile = JSON.parse(good) as Record<string, unknown>;

describe('inspectStateFile', () => {
  test('a good file is decoded and nothing is discarded', () => {
    expect(inspectStateFile(good, uid)).toEqual({ state: { diffBase: { spec: { a: 1 } }, progress } });
  });

  test.each([
    ['empty', '', 'empty file'],
    ['blank', '  \n', 'empty file'],
    ['not JSON', 'not json {', 'not JSON'],
    ['truncated', good.slice(0, Math.floor(good.length / 2)), 'not JSON'],
    ['binary', Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 131 + 7) % 256)).toString('utf8'), 'not JSON'],
    ['an array', '[1,2,3]', 'not a JSON object'],
    ['another version', JSON.stringify({ ...goodFile, version: 2 }), 'unsupported version 2'],
    ['another uid', JSON.stringify({ ...goodFile, uid: 'x' }), 'state of another object (uid "x")'],
  ])('%s: the whole file is discarded with a reason', (_kind, text, reason) => {
    expect(inspectStateFile(text, uid)).toEqual({ state: {}, discarded: reason });
  });

  test('wrong types: each wrong part is named, and nothing of it is kept', () => {
    const text = JSON.stringify({
      version: 1,
      uid,
      key: 7,
      diffBase: 'garbage',
      progress: { cause: 'update', target: 42, handlers: [] },
    });
    const decoded = inspectStateFile(text, uid);
    expect(decoded.state).toEqual({});
    expect(decoded.discarded).toBe('key is not a string; diffBase is not an object; progress: target is not a string');
  });

  test('a garbage handler entry drops the progress and keeps the diff-base', () => {
    const text = JSON.stringify({
      ...goodFile,
      progress: {
        cause: 'update',
        target: 'x',
        startedAt: '2026-01-01T00:00:00.000Z',
        handlers: { routes: 'garbage' },
      },
    });
    expect(inspectStateFile(text, uid)).toEqual({
      state: { diffBase: { spec: { a: 1 } } },
      discarded: 'progress: handler "routes": not a handler record',
    });
  });

  test.each([
    ['startedAt', { ...progress, startedAt: 'yesterday' }, 'startedAt is not a time'],
    ['cause', { ...progress, cause: 'explode' }, 'unknown cause'],
    ['retries', { ...progress, handlers: { routes: { state: 'success', retries: -1 } } }, 'retries is not a count'],
    [
      'delayedUntil',
      { ...progress, handlers: { routes: { state: 'retrying', retries: 1, delayedUntil: 'soon' } } },
      'delayedUntil is not a time',
    ],
    ['message', { ...progress, handlers: { routes: { state: 'failure', retries: 1, message: ['x'] } } }, 'message'],
  ])('malformed progress (%s) is discarded with a reason', (_field, bad, reason) => {
    const decoded = inspectStateFile(JSON.stringify({ ...goodFile, progress: bad }), uid);
    expect(decoded.state).toEqual({ diffBase: { spec: { a: 1 } } });
    expect(decoded.discarded).toContain(reason);
  });
});

describe('inspectAnnotationState', () => {
  const keys = stateAnnotationKeys('p.dev');

  test('good and absent annotations discard nothing', () => {
    expect(inspectAnnotationState(undefined, 'p.dev')).toEqual({ state: {} });
    expect(
      inspectAnnotationState({ [keys.diffBase]: '{"spec":{}}', [keys.progress]: JSON.stringify(progress) }, 'p.dev'),
    ).toEqual({ state: { diffBase: { spec: {} }, progress } });
  });

  test('garbage in either annotation is named, and the other one is kept', () => {
    expect(inspectAnnotationState({ [keys.diffBase]: '{{{', [keys.progress]: '[1,2,3]' }, 'p.dev')).toEqual({
      state: {},
      discarded: `annotation ${keys.diffBase}: not JSON; annotation ${keys.progress}: not an object`,
    });
    expect(
      inspectAnnotationState({ [keys.diffBase]: '"text"', [keys.progress]: JSON.stringify(progress) }, 'p.dev'),
    ).toEqual({ state: { progress }, discarded: `annotation ${keys.diffBase}: not an object` });
  });
});

describe('implausibleProgress', () => {
  const deleteProgress: CauseProgress = { ...progress, cause: 'delete', target: '' };
  test("a delete's progress on an object that is not being deleted is garbage", () => {
    expect(implausibleProgress(deleteProgress, false)).toMatch(/not being deleted/);
    expect(implausibleProgress(deleteProgress, true)).toBeUndefined();
    expect(implausibleProgress(progress, false)).toBeUndefined();
    expect(implausibleProgress(undefined, false)).toBeUndefined();
  });
});
