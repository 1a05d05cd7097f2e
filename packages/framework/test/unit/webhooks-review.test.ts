/**
 * AdmissionReview v1 in and out, and the JSON patch of a mutation: pure, no server.
 */
import { describe, expect, test } from 'vitest';
import { applyMutation, mutationPatch } from '../../src/webhooks/patch.js';
import { admissionResponse, parseAdmissionReview, ReviewFormatError, reviewUid } from '../../src/webhooks/review.js';

const object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'n', uid: 'u1' } };

function review(request: Record<string, unknown>): unknown {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

describe('parseAdmissionReview', () => {
  test('reads what handlers and routing use', () => {
    const parsed = parseAdmissionReview(
      review({
        uid: 'r1',
        kind: { group: '', version: 'v1', kind: 'ConfigMap' },
        resource: { group: '', version: 'v1', resource: 'configmaps' },
        subResource: 'status',
        name: 'a',
        namespace: 'n',
        operation: 'UPDATE',
        userInfo: { username: 'alice', groups: ['devs'] },
        object,
        oldObject: object,
        dryRun: true,
      }),
    );
    expect(parsed).toEqual({
      uid: 'r1',
      operation: 'UPDATE',
      kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      resource: { group: '', version: 'v1', resource: 'configmaps' },
      subresource: 'status',
      name: 'a',
      namespace: 'n',
      object,
      oldObject: object,
      userInfo: { username: 'alice', groups: ['devs'] },
      dryRun: true,
    });
  });

  test('DELETE carries no object; dryRun defaults to false', () => {
    const parsed = parseAdmissionReview(review({ uid: 'r2', operation: 'DELETE', object: null, oldObject: object }));
    expect(parsed.object).toBeUndefined();
    expect(parsed.oldObject).toEqual(object);
    expect(parsed.dryRun).toBe(false);
  });

  test.each([
    ['not an object', 'x', 'not a JSON object'],
    [
      'v1beta1',
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
      'admissionReviewVersions',
    ],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'no request'],
    ['no uid', review({ operation: 'CREATE' }), 'uid'],
    ['unknown operation', review({ uid: 'r', operation: 'PATCH' }), 'PATCH'],
    ['object without metadata', review({ uid: 'r', operation: 'CREATE', object: { a: 1 } }), 'request.object'],
  ])('refuses %s', (_name, body, message) => {
    expect(() => parseAdmissionReview(body)).toThrow(ReviewFormatError);
    expect(() => parseAdmissionReview(body)).toThrow(message);
  });

  test('reviewUid finds the uid of a request that does not parse', () => {
    expect(reviewUid(review({ uid: 'r9', operation: 'NOPE' }))).toBe('r9');
    expect(reviewUid('garbage')).toBe('');
  });
});

describe('admissionResponse', () => {
  test('an allowed answer echoes the uid and carries warnings and the patch, base64', () => {
    const patch = [{ op: 'add' as const, path: '/data/color', value: 'blue' }];
    const answer = admissionResponse('r1', { allowed: true, warnings: ['careful'], patch }) as {
      apiVersion: string;
      kind: string;
      response: Record<string, unknown>;
    };
    expect(answer.apiVersion).toBe('admission.k8s.io/v1');
    expect(answer.kind).toBe('AdmissionReview');
    expect(answer.response).toMatchObject({ uid: 'r1', allowed: true, warnings: ['careful'], patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(answer.response.patch as string, 'base64').toString())).toEqual(patch);
  });

  test('an empty patch and no warnings leave the fields out', () => {
    const { response } = admissionResponse('r1', { allowed: true, warnings: [], patch: [] }) as {
      response: Record<string, unknown>;
    };
    expect(response).toEqual({ uid: 'r1', allowed: true });
  });

  test('a refusal carries a Status with code, message, reason and the field', () => {
    const { response } = admissionResponse('r2', {
      allowed: false,
      warnings: [],
      refusal: { code: 422, message: 'size too big', field: 'spec.size' },
    }) as { response: Record<string, unknown> };
    expect(response).toEqual({
      uid: 'r2',
      allowed: false,
      status: {
        code: 422,
        message: 'size too big',
        reason: 'Invalid',
        details: { causes: [{ field: 'spec.size', message: 'size too big', reason: 'FieldValueInvalid' }] },
      },
    });
  });

  test('warnings are cut to what the API server shows', () => {
    const { response } = admissionResponse('r', { allowed: true, warnings: ['x'.repeat(1000)] }) as {
      response: { warnings: string[] };
    };
    expect(response.warnings[0]).toHaveLength(256);
  });
});

describe('mutationPatch', () => {
  const before = {
    metadata: { name: 'a', labels: { 'app.kubernetes.io/name': 'x' } },
    spec: { items: ['a', 'b', 'c'], size: 1 },
  };

  test('no change, no operation', () => {
    expect(mutationPatch(before, structuredClone(before))).toEqual([]);
  });

  test('keys with / and ~ are escaped (RFC 6901)', () => {
    const after = structuredClone(before);
    after.metadata.labels = { 'app.kubernetes.io/name': 'y', 'a~b': 'z' } as typeof after.metadata.labels;
    const patch = mutationPatch(before, after);
    expect(patch).toContainEqual({ op: 'replace', path: '/metadata/labels/app.kubernetes.io~1name', value: 'y' });
    expect(patch).toContainEqual({ op: 'add', path: '/metadata/labels/a~0b', value: 'z' });
  });

  test('applying the patch gives the handler object, array removals and undefined fields included', () => {
    const after = { ...structuredClone(before), spec: { items: ['c'], size: undefined, color: 'blue' } };
    const patch = mutationPatch(before, after);
    expect(applyMutation(before, patch)).toEqual({ metadata: before.metadata, spec: { items: ['c'], color: 'blue' } });
  });

  test('a handler that leaves something else than an object is a bug', () => {
    expect(() => mutationPatch(before, 'nope')).toThrow('must leave or return an object');
    expect(() => mutationPatch(before, null)).toThrow();
  });
});
