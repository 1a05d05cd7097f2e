import { describe, expect, test } from 'vitest';
import {
  buildStatusPatch,
  emptyStatusWrites,
  instanceEntryRemoval,
  mergePatches,
  truncateMessage,
  type HandlerOutcome,
} from '../../src/core/status.js';

const outcome: HandlerOutcome = { outcome: 'success', cause: 'create', retries: 0, time: '2026-01-01T00:00:00.000Z' };
const layout = { handlerStatusField: 'handlers', instanceStatusField: 'nodes', instanceId: 'node-a' };

describe('buildStatusPatch', () => {
  test('nothing to write gives no patch', () => {
    expect(buildStatusPatch({ ...layout, scope: 'cluster' }, emptyStatusWrites())).toBeUndefined();
  });

  test('cluster scope: outcomes, results and handler status at the top of status', () => {
    const writes = {
      ...emptyStatusWrites(),
      outcomes: { apply: outcome },
      results: { apply: { routes: 2 } },
      status: { summary: 'ok' },
    };
    expect(buildStatusPatch({ ...layout, scope: 'cluster' }, writes)).toEqual({
      status: {
        summary: 'ok',
        apply: { routes: 2 },
        handlers: { apply: { ...outcome, message: null, nextAttemptAt: null } },
      },
    });
  });

  test('node scope: own entries only under the instance key; shared status stays shared', () => {
    const writes = {
      outcomes: { apply: outcome },
      results: { apply: true },
      status: { summary: 'shared' },
      instanceStatus: { state: 'applied' },
    };
    expect(buildStatusPatch({ ...layout, scope: 'node' }, writes)).toEqual({
      status: {
        summary: 'shared',
        nodes: {
          'node-a': {
            state: 'applied',
            apply: true,
            handlers: { apply: { ...outcome, message: null, nextAttemptAt: null } },
          },
        },
      },
    });
  });

  test('removing a dead instance entry is a merge-patch null', () => {
    expect(instanceEntryRemoval('nodes', 'gone')).toEqual({ status: { nodes: { gone: null } } });
  });
});

describe('mergePatches', () => {
  test('nested objects merge; scalars, arrays and null replace', () => {
    expect(mergePatches({ a: { b: 1, c: 2 }, d: [1], e: 1 }, { a: { c: 3 }, d: [2], e: null })).toEqual({
      a: { b: 1, c: 3 },
      d: [2],
      e: null,
    });
  });
});

test('truncateMessage bounds status messages', () => {
  expect(truncateMessage('x'.repeat(1000))).toHaveLength(512);
  expect(truncateMessage('short')).toBe('short');
});
