/**
 * Fewer status writes: a cycle's status write is skipped when it would only record plain successes, and happens
 * when there is something to say (a failure, a retry, a returned value, a handler status patch, or a previous
 * non-success outcome on record that the success must replace).
 */
import { describe, expect, test } from 'vitest';
import {
  emptyStatusWrites,
  recordedOutcomes,
  statusWriteNeeded,
  type HandlerOutcome,
  type StatusLayout,
} from '../../src/core/status.js';

const time = '2026-01-01T00:00:00.000Z';
const success: HandlerOutcome = { outcome: 'success', cause: 'update', retries: 0, time };
const retrying: HandlerOutcome = { outcome: 'retrying', cause: 'update', retries: 1, message: 'x', time };
const failed: HandlerOutcome = { outcome: 'failed', cause: 'update', retries: 3, message: 'x', time };
const cluster: StatusLayout = {
  scope: 'cluster',
  handlerStatusField: 'handlers',
  instanceStatusField: 'nodes',
  instanceId: 'a',
};
const node: StatusLayout = { ...cluster, scope: 'node' };

describe('statusWriteNeeded', () => {
  test('plain successes with nothing on record: skipped', () => {
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes: { apply: success } }, {})).toBe(false);
    expect(statusWriteNeeded(emptyStatusWrites(), {})).toBe(false);
  });

  test('plain successes over successes on record: skipped', () => {
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes: { apply: success } }, { apply: success })).toBe(false);
  });

  test('failures and retries are always written', () => {
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes: { apply: retrying } }, {})).toBe(true);
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes: { a: success, b: failed } }, {})).toBe(true);
  });

  test('a success replaces a retrying, failed or garbage entry on record', () => {
    const writes = { ...emptyStatusWrites(), outcomes: { apply: success } };
    expect(statusWriteNeeded(writes, { apply: retrying })).toBe(true);
    expect(statusWriteNeeded(writes, { apply: failed })).toBe(true);
    expect(statusWriteNeeded(writes, { apply: 'garbage' })).toBe(true);
    // Entries of other handlers are not this write's business.
    expect(statusWriteNeeded(writes, { other: failed })).toBe(false);
  });

  test('returned values and handler status patches are written', () => {
    const outcomes = { apply: success };
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes, results: { apply: 1 } }, {})).toBe(true);
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes, status: { phase: 'x' } }, {})).toBe(true);
    expect(statusWriteNeeded({ ...emptyStatusWrites(), outcomes, instanceStatus: { state: 'x' } }, {})).toBe(true);
  });
});

describe('recordedOutcomes', () => {
  test('cluster scope: status.<handlerStatusField>', () => {
    expect(recordedOutcomes(cluster, { handlers: { apply: retrying } })).toEqual({ apply: retrying });
  });
  test("node scope: the instance's own entry only", () => {
    const status = {
      handlers: { apply: failed },
      nodes: { a: { handlers: { apply: retrying } }, b: { handlers: {} } },
    };
    expect(recordedOutcomes(node, status)).toEqual({ apply: retrying });
    expect(recordedOutcomes({ ...node, instanceId: 'c' }, status)).toEqual({});
  });
  test('missing or misshapen status: nothing on record', () => {
    expect(recordedOutcomes(cluster, undefined)).toEqual({});
    expect(recordedOutcomes(cluster, { handlers: 'garbage' })).toEqual({});
    expect(recordedOutcomes(node, { nodes: { a: 'garbage' } })).toEqual({});
  });
});
