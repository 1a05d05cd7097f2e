import { describe, expect, test } from 'vitest';
import { detectCause, selectHandlers, type CauseInput } from '../../src/core/causes.js';
import type { HandlerSpec } from '../../src/core/handlers.js';

const essence = { spec: { gateway: '10.0.0.1', destinations: ['1.2.3.4'] } };
const base: CauseInput = {
  deleting: false,
  hasOwnFinalizer: true,
  essence,
  state: { diffBase: essence },
  seenInThisRun: true,
  hasResumeHandlers: true,
};

describe('detectCause', () => {
  test.each([
    ['deleting with our finalizer', { deleting: true }, 'delete'],
    ['deleting with our finalizer, even without a diff-base', { deleting: true, state: {} }, 'delete'],
    ['deleting without our finalizer is not ours to hold', { deleting: true, hasOwnFinalizer: false }, 'noop'],
    ['first time seen (no diff-base)', { state: {} }, 'create'],
    ['state lost but finalizer present: create again', { state: {}, hasOwnFinalizer: true }, 'create'],
    ['essence differs from the diff-base', { essence: { spec: { gateway: '10.0.0.2' } } }, 'update'],
    ['unchanged, already seen in this run', {}, 'noop'],
    ['unchanged, first sight after a restart', { seenInThisRun: false }, 'resume'],
    ['unchanged after restart without resume handlers', { seenInThisRun: false, hasResumeHandlers: false }, 'noop'],
    [
      'an interrupted resume continues even when seen',
      { state: { diffBase: essence, progress: { cause: 'resume', target: 'x', startedAt: '', handlers: {} } } },
      'resume',
    ],
    ['update wins over resume after restart', { seenInThisRun: false, essence: { spec: {} } }, 'update'],
  ] as const)('%s', (_name, overrides, expected) => {
    expect(detectCause({ ...base, ...(overrides as Partial<CauseInput>) })).toBe(expected);
  });

  test('key order does not make an update', () => {
    const reordered = { spec: { destinations: ['1.2.3.4'], gateway: '10.0.0.1' } };
    expect(detectCause({ ...base, essence: reordered })).toBe('noop');
  });
});

describe('selectHandlers', () => {
  const handler = (kind: HandlerSpec['kind'], id: string, order: number, field?: string[]): HandlerSpec => ({
    kind,
    id,
    method: id,
    order,
    ...(field ? { field } : {}),
  });
  const handlers = [
    handler('update', 'updated', 1),
    handler('create', 'created', 0),
    handler('field', 'gateway', 2, ['spec', 'gateway']),
    handler('field', 'labels', 3, ['metadata', 'labels']),
    handler('delete', 'deleted', 4),
    handler('resume', 'resumed', 5),
  ];

  test('create runs create handlers and field handlers of set fields, in declaration order', () => {
    const ids = selectHandlers('create', handlers, undefined, essence).map((h) => h.id);
    expect(ids).toEqual(['created', 'gateway']);
  });

  test('update runs field handlers only when their field changed', () => {
    const changed = { spec: { gateway: '10.0.0.9', destinations: ['1.2.3.4'] } };
    expect(selectHandlers('update', handlers, essence, changed).map((h) => h.id)).toEqual(['updated', 'gateway']);
    const otherField = { spec: { gateway: '10.0.0.1', destinations: [] } };
    expect(selectHandlers('update', handlers, essence, otherField).map((h) => h.id)).toEqual(['updated']);
  });

  test('field removal counts as a change', () => {
    const removed = { spec: { destinations: ['1.2.3.4'] } };
    expect(selectHandlers('update', handlers, essence, removed).map((h) => h.id)).toContain('gateway');
  });

  test('delete and resume run only their own kind', () => {
    expect(selectHandlers('delete', handlers, essence, essence).map((h) => h.id)).toEqual(['deleted']);
    expect(selectHandlers('resume', handlers, essence, essence).map((h) => h.id)).toEqual(['resumed']);
  });
});
