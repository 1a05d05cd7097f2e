import { describe, expect, test } from 'vitest';
import {
  decodeStateFile,
  encodeStateFile,
  readAnnotationState,
  stateAnnotationChanges,
  stateAnnotationKeys,
} from '../../src/core/state-codec.js';
import type { CauseProgress } from '../../src/core/progress.js';

const prefix = 'opkit.dev';
const keys = stateAnnotationKeys(prefix);
const progress: CauseProgress = {
  cause: 'update',
  target: 'abc',
  startedAt: '2026-01-01T00:00:00.000Z',
  handlers: { a: { state: 'retrying', retries: 2, delayedUntil: '2026-01-01T00:01:00.000Z', message: 'x' } },
};

describe('annotation state', () => {
  test('round trip through annotation changes', () => {
    const state = { diffBase: { spec: { b: 1, a: 2 } }, progress };
    const changes = stateAnnotationChanges(undefined, prefix, state);
    expect(changes[keys.diffBase]).toBe('{"spec":{"a":2,"b":1}}');
    const annotations = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null)) as Record<
      string,
      string
    >;
    expect(readAnnotationState(annotations, prefix)).toEqual(state);
  });

  test('only changed keys are written; completed progress is deleted', () => {
    const annotations = { [keys.diffBase]: '{"spec":{"a":1}}', [keys.progress]: JSON.stringify(progress) };
    expect(stateAnnotationChanges(annotations, prefix, { diffBase: { spec: { a: 1 } } })).toEqual({
      [keys.progress]: null,
    });
    expect(stateAnnotationChanges({}, prefix, {})).toEqual({});
  });

  test('garbage counts as no state rather than blocking the object', () => {
    expect(readAnnotationState({ [keys.diffBase]: '{not json', [keys.progress]: '{"cause":"bogus"}' }, prefix)).toEqual(
      {},
    );
  });
});

describe('state files', () => {
  test('round trip, and files of another uid are ignored', () => {
    const text = encodeStateFile('uid-1', 'default/x', { diffBase: { spec: {} }, progress });
    expect(decodeStateFile(text, 'uid-1')).toEqual({ diffBase: { spec: {} }, progress });
    expect(decodeStateFile(text, 'uid-2')).toEqual({});
    expect(decodeStateFile('', 'uid-1')).toEqual({});
  });
});
