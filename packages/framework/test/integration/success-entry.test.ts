/**
 * A handler's outcome entry in status is replaced whole when the handler's next outcome is recorded, although status
 * is merge-patched: a success after a retry carries no `message` or `nextAttemptAt` of the failed attempt, a permanent
 * failure after a retry no `nextAttemptAt`. Against the real API server, through the whole framework.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  OnCreate,
  Operator,
  PermanentError,
  TemporaryError,
  type HandlerContext,
  type HandlerOutcome,
  type KubeObject,
} from 'opkit';
import { startOperator, waitFor, type OperatorHandle } from '../../src/testing/index.js';
import type { ResourceRef } from '../../src/kube/types.js';
import { GROUP, startCluster, testObject, type TestCluster } from './helpers.js';

let cluster: TestCluster;
let ref: ResourceRef;
let operator: OperatorHandle;
/** The handler's entry as stored when its second attempt started, by object name. */
const entryBeforeSecondAttempt = new Map<string, HandlerOutcome | undefined>();

async function outcomeOf(name: string): Promise<HandlerOutcome | undefined> {
  const object = await cluster.api.get<KubeObject>(ref, name);
  return (object.status as { handlers?: Record<string, HandlerOutcome> } | undefined)?.handlers?.['settle'];
}

@Operator({ group: GROUP, version: 'v1', plural: 'settlings', kind: 'Settling' })
class SettlingOperator {
  /** Fails once with a temporary error, then succeeds (`ok-*`) or fails for good (`bad-*`). */
  @OnCreate({ id: 'settle' })
  async settle(ctx: HandlerContext) {
    if (ctx.retry === 0) throw new TemporaryError('not yet', { delayMs: 100 });
    // The retrying entry was written before this attempt: what the next outcome must replace.
    entryBeforeSecondAttempt.set(ctx.name, await outcomeOf(ctx.name));
    if (ctx.name.startsWith('bad')) throw new PermanentError('spec is invalid');
  }
}

beforeAll(async () => {
  cluster = await startCluster();
  ref = await cluster.installCrd('settlings', 'Settling');
  operator = await startOperator({ classes: [SettlingOperator], kubeconfigPath: cluster.kubeconfigPath });
});
afterAll(async () => {
  await operator?.stop();
  await cluster?.stop();
});

describe('an outcome entry replaces the previous one', () => {
  test('a success after a retry keeps no message and no next attempt', async () => {
    await cluster.api.create(ref, testObject('Settling', 'ok-1', {}));
    const entry = await waitFor(async () => {
      const found = await outcomeOf('ok-1');
      return found?.outcome === 'success' && found;
    });
    expect(entryBeforeSecondAttempt.get('ok-1')).toMatchObject({ outcome: 'retrying', message: 'not yet' });
    expect(entryBeforeSecondAttempt.get('ok-1')?.nextAttemptAt).toEqual(expect.any(String));
    expect(Object.keys(entry).sort()).toEqual(['cause', 'outcome', 'retries', 'time']);
    expect(entry).toMatchObject({ outcome: 'success', cause: 'create', retries: 1 });
  });

  test('a permanent failure after a retry keeps its own message and no next attempt', async () => {
    await cluster.api.create(ref, testObject('Settling', 'bad-1', {}));
    const entry = await waitFor(async () => {
      const found = await outcomeOf('bad-1');
      return found?.outcome === 'failed' && found;
    });
    expect(entryBeforeSecondAttempt.get('bad-1')).toMatchObject({ outcome: 'retrying', message: 'not yet' });
    expect(entryBeforeSecondAttempt.get('bad-1')?.nextAttemptAt).toEqual(expect.any(String));
    expect(Object.keys(entry).sort()).toEqual(['cause', 'message', 'outcome', 'retries', 'time']);
    expect(entry).toMatchObject({ outcome: 'failed', retries: 2, message: 'spec is invalid' });
  });
});
