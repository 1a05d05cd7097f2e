/**
 * One request through one handler (`admit`): verdicts from returns and throws, the mutation's patch, the `when`
 * filter, timeouts. No server.
 */
import { pino } from 'pino';
import { describe, expect, test } from 'vitest';
import { AdmissionError, resolveAdmissionOptions, type AdmissionContext } from '../../src/decorators/admission.js';
import { admit } from '../../src/webhooks/dispatch.js';
import type { AdmissionRequest } from '../../src/webhooks/review.js';
import { buildRoutes, type AdmissionRoute } from '../../src/webhooks/routes.js';

const logger = pino({ level: 'silent' });
const resource = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };

function route(kind: 'validate' | 'mutate', options = {}): AdmissionRoute {
  const spec = { ...resolveAdmissionOptions(kind, 'handle', options), order: 0 };
  return [...buildRoutes([{ name: 'Hooks', resource, handlers: [spec] }]).values()][0]!;
}

function request(overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'r1',
    operation: 'CREATE',
    kind: { group: '', version: 'v1', kind: 'ConfigMap' },
    resource: { group: '', version: 'v1', resource: 'configmaps' },
    subresource: '',
    name: 'a',
    namespace: 'n',
    object: { metadata: { name: 'a', uid: 'u', labels: { keep: 'me' } }, data: { size: '3' } },
    oldObject: undefined,
    userInfo: { username: 'alice' },
    dryRun: false,
    ...overrides,
  };
}

describe('admit: validate', () => {
  test('a handler that returns nothing allows; returned and ctx.warn warnings are carried', async () => {
    const verdict = await admit(route('validate'), request(), {
      invoke: (_route, ctx) => {
        ctx.warn('first');
        return ['second'];
      },
      logger,
    });
    expect(verdict).toEqual({ allowed: true, warnings: ['first', 'second'] });
  });

  test('the context carries the request', async () => {
    let seen: AdmissionContext | undefined;
    await admit(
      route('validate'),
      request({ dryRun: true, operation: 'UPDATE', oldObject: { metadata: { name: 'a', uid: 'u' } } }),
      {
        invoke: (_route, ctx) => void (seen = ctx),
        logger,
      },
    );
    expect(seen).toMatchObject({
      operation: 'UPDATE',
      dryRun: true,
      name: 'a',
      namespace: 'n',
      subresource: '',
      requestUid: 'r1',
      userInfo: { username: 'alice' },
      oldObject: { metadata: { name: 'a' } },
    });
  });

  test('AdmissionError refuses with its message, code and field; no bug is reported', async () => {
    const bugs: unknown[] = [];
    const verdict = await admit(route('validate'), request(), {
      invoke: () => {
        throw new AdmissionError('too big', { code: 422, field: 'data.size' });
      },
      logger,
      onBug: (error) => bugs.push(error),
    });
    expect(verdict).toEqual({
      allowed: false,
      warnings: [],
      refusal: { code: 422, message: 'too big', field: 'data.size' },
    });
    expect(bugs).toEqual([]);
  });

  test('any other exception refuses with a message naming the webhook and handler, and is reported', async () => {
    const bugs: unknown[] = [];
    const verdict = await admit(route('validate'), request(), {
      invoke: async () => {
        throw new RangeError('oops');
      },
      logger,
      onBug: (error) => bugs.push(error),
    });
    expect(verdict).toMatchObject({
      allowed: false,
      refusal: {
        code: 500,
        message: 'validate-handle.configmaps.core: the validate handler Hooks.handle failed (RangeError: oops)',
      },
    });
    expect(bugs).toHaveLength(1);
  });

  test('a handler slower than the webhook timeout refuses before the API server gives up', async () => {
    const verdict = await admit(route('validate'), request(), {
      invoke: () => new Promise(() => undefined),
      logger,
      timeoutMs: 20,
    });
    expect(verdict).toMatchObject({
      allowed: false,
      refusal: { code: 500, message: expect.stringContaining('no answer within 20 ms') },
    });
  });

  test('when: objects it does not match are allowed without calling the handler (the old object for DELETE)', async () => {
    const calls: string[] = [];
    const hooks = route('validate', { when: (object: { metadata: { name: string } }) => object.metadata.name === 'b' });
    const invoke = (): void => void calls.push('called');
    expect(await admit(hooks, request(), { invoke, logger })).toEqual({ allowed: true, warnings: [] });
    await admit(
      hooks,
      request({ operation: 'DELETE', object: undefined, oldObject: { metadata: { name: 'b', uid: 'u' } } }),
      {
        invoke,
        logger,
      },
    );
    expect(calls).toEqual(['called']);
  });
});

describe('admit: mutate', () => {
  test('changes made in place become a JSON patch; the request object is untouched', async () => {
    const req = request();
    const verdict = await admit(route('mutate'), req, {
      invoke: (_route, ctx) => {
        (ctx.object as unknown as { data: Record<string, string> }).data.color = 'blue';
      },
      logger,
    });
    expect(verdict).toEqual({
      allowed: true,
      warnings: [],
      patch: [{ op: 'add', path: '/data/color', value: 'blue' }],
    });
    expect(req.object).toEqual(request().object);
  });

  test('a returned object replaces the copy', async () => {
    const verdict = await admit(route('mutate'), request(), {
      invoke: (_route, ctx) => ({ ...ctx.object!, data: {} }),
      logger,
    });
    expect(verdict).toEqual({ allowed: true, warnings: [], patch: [{ op: 'remove', path: '/data/size' }] });
  });

  test('DELETE has nothing to mutate: allowed without a patch', async () => {
    const verdict = await admit(route('mutate'), request({ operation: 'DELETE', object: undefined }), {
      invoke: () => undefined,
      logger,
    });
    expect(verdict).toEqual({ allowed: true, warnings: [] });
  });

  test('returning something that is not an object is a bug: refused', async () => {
    const verdict = await admit(route('mutate'), request(), { invoke: () => 'oops', logger });
    expect(verdict).toMatchObject({ allowed: false, refusal: { code: 500 } });
  });
});
