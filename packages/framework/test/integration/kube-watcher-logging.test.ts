/**
 * A watch restart is an expected, retried condition: it logs one line with the server's answer, never a stack trace
 * (users of the predecessor operator were promised no exceptions in the logs for what the operator handles itself).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKubeApi } from '../../src/kube/client.js';
import { Watcher } from '../../src/kube/watcher.js';
import { startCluster, until, type TestCluster } from './helpers.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

it('a refused watch (403, retried) logs its status and message without a stack trace', async () => {
  // A ServiceAccount with no RBAC at all: every list is refused with 403 and retried with backoff.
  const token = await cluster.cp.mintToken('logging', 'nobody');
  const api = createKubeApi({ credentials: { server: cluster.cp.server, ca: cluster.cp.caPem, token } });
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const watcher = new Watcher(api, {
    ref: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
    logger: pino({ level: 'debug' }, sink),
    backoff: { initialMs: 10, maxMs: 50 },
  });
  watcher.start(() => undefined);
  const restart = await until(() => lines.find((line) => line.msg === 'watch restarting'));
  await watcher.stop();
  api.close();
  expect(restart.err).toBeUndefined();
  const error = restart.error as Record<string, unknown>;
  expect(error).toMatchObject({ statusCode: 403, reason: 'Forbidden' });
  expect(String(error.message)).toContain('forbidden');
  expect(JSON.stringify(restart)).not.toContain('    at ');
});
