/**
 * A handler's outcome entry replaces the previous one whole, although status is merge-patched: the keys the new
 * entry lacks are sent as null. Against the real API server: test/integration/success-entry.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { buildStatusPatch, emptyStatusWrites, outcomePatch, type HandlerOutcome } from '../../src/core/status.js';

const time = '2026-01-01T00:00:00.000Z';
const success: HandlerOutcome = { outcome: 'success', cause: 'create', retries: 1, time };
const failed: HandlerOutcome = { outcome: 'failed', cause: 'create', retries: 2, message: 'spec is invalid', time };
const retrying: HandlerOutcome = {
  outcome: 'retrying',
  cause: 'create',
  retries: 1,
  message: 'not yet',
  nextAttemptAt: '2026-01-01T00:00:05.000Z',
  time,
};
const layout = { handlerStatusField: 'handlers', instanceStatusField: 'nodes', instanceId: 'node-a' };

describe('outcomePatch', () => {
  test('a success deletes the message and next attempt of the retry before it', () => {
    expect(outcomePatch(success)).toEqual({ ...success, message: null, nextAttemptAt: null });
  });

  test('a failure keeps its message and deletes the next attempt', () => {
    expect(outcomePatch(failed)).toEqual({ ...failed, nextAttemptAt: null });
  });

  test('a retrying entry has every key: nothing to delete', () => {
    expect(outcomePatch(retrying)).toEqual(retrying);
  });

  test('an explicit undefined is sent as null, not dropped from the JSON body', () => {
    expect(outcomePatch({ ...success, message: undefined })).toEqual({
      ...success,
      message: null,
      nextAttemptAt: null,
    });
  });
});

describe('buildStatusPatch writes each outcome as a replacement', () => {
  test('cluster scope', () => {
    const writes = { ...emptyStatusWrites(), outcomes: { apply: success, check: failed } };
    expect(buildStatusPatch({ ...layout, scope: 'cluster' }, writes)).toEqual({
      status: {
        handlers: {
          apply: { ...success, message: null, nextAttemptAt: null },
          check: { ...failed, nextAttemptAt: null },
        },
      },
    });
  });

  test('node scope', () => {
    const writes = { ...emptyStatusWrites(), outcomes: { apply: success } };
    expect(buildStatusPatch({ ...layout, scope: 'node' }, writes)).toEqual({
      status: { nodes: { 'node-a': { handlers: { apply: { ...success, message: null, nextAttemptAt: null } } } } },
    });
  });
});
