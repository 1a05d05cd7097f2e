import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/kube/types.js';
import { createLogger } from '../../src/ops/logging.js';

/** A destination that keeps what the logger writes. */
function capture(): { stream: Writable & { write: Writable['write'] }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('createLogger', () => {
  it('logs an API answer or a network failure in one line without a stack; a bug keeps its stack', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    logger.warn({ err: refused }, 'renew failed');
    logger.warn({ err: new ApiError(429, 'storage is (re)initializing', 'TooManyRequests') }, 'retrying');
    logger.error({ err: new TypeError('x is undefined') }, 'bug');
    const [network, api, bug] = out
      .text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { err: Record<string, unknown> });
    expect(network!.err).toEqual({
      type: 'Error',
      message: 'connect ECONNREFUSED 127.0.0.1:6443',
      code: 'ECONNREFUSED',
    });
    expect(api!.err).toMatchObject({ message: 'storage is (re)initializing', statusCode: 429 });
    expect(api!.err).not.toHaveProperty('stack');
    expect(bug!.err.stack).toContain('TypeError: x is undefined');
  });

  it('writes one JSON object per line with a level label, ISO time, name and bound fields', () => {
    const out = capture();
    const logger = createLogger({ name: 'opkit-test', destination: out.stream });
    logger.child({ object: 'default/r1' }).info({ attempt: 2 }, 'handler succeeded');
    const line = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      name: 'opkit-test',
      object: 'default/r1',
      attempt: 2,
      msg: 'handler succeeded',
    });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
    // pid and hostname are noise inside a pod.
    expect(line).not.toHaveProperty('pid');
    expect(line).not.toHaveProperty('hostname');
  });

  it('filters by level', () => {
    const out = capture();
    const logger = createLogger({ level: 'warn', destination: out.stream });
    logger.info('hidden');
    logger.warn('shown');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'shown' });
  });

  it('is pretty (not JSON) only when asked', async () => {
    const out = capture();
    const logger = createLogger({ pretty: true, name: 'opkit-test', destination: out.stream });
    logger.info({ node: 'n1' }, 'pretty line');
    logger.flush();
    await new Promise((resolve) => setImmediate(resolve));
    const text = out.text();
    expect(text).toContain('pretty line');
    expect(text).toContain('INFO');
    expect(() => JSON.parse(text.trim().split('\n')[0]!)).toThrow();
  });
});
