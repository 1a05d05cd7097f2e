/**
 * `admission.k8s.io/v1` AdmissionReview: reading the API server's request and writing the answer. Pure.
 *
 * The answer must echo the request's `uid` and carry the same apiVersion and kind, or the API server treats the
 * webhook as failed (and applies its failure policy).
 */
import type { AdmissionOperation, AdmissionUserInfo } from '../decorators/admission.js';
import type { WatchedObject } from '../decorators/options.js';

/** The fields of an AdmissionReview's request that handlers and routing use. */
export interface AdmissionRequest {
  uid: string;
  operation: AdmissionOperation;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subresource: string;
  name: string;
  namespace: string;
  object: WatchedObject | undefined;
  oldObject: WatchedObject | undefined;
  userInfo: AdmissionUserInfo;
  dryRun: boolean;
}

/** A request that is not an AdmissionReview v1 the server can answer (HTTP 400). */
export class ReviewFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReviewFormatError';
  }
}

/** A refusal as the AdmissionReview's `response.status` carries it (a `metav1.Status`). */
export interface Refusal {
  message: string;
  code: number;
  field?: string;
}

/** One JSON patch operation (RFC 6902). */
export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

/** What the server decided for one request. */
export type Verdict =
  | { allowed: true; warnings: string[]; patch?: PatchOperation[] }
  | { allowed: false; warnings: string[]; refusal: Refusal };

const API_VERSION = 'admission.k8s.io/v1';
const OPERATIONS: ReadonlySet<string> = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);
/** The API server shows warnings longer than this truncated; keep them short on our side (its limit is 256). */
const MAX_WARNING_LENGTH = 256;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function objectOrUndefined(value: unknown, what: string): WatchedObject | undefined {
  if (value === undefined || value === null) return undefined;
  const object = record(value);
  if (!object || !record(object.metadata)) throw new ReviewFormatError(`request.${what} is not a Kubernetes object`);
  return object as WatchedObject;
}

/** Reads an AdmissionReview v1; throws {@link ReviewFormatError} for anything else. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  const review = record(body);
  if (!review) throw new ReviewFormatError('the body is not a JSON object');
  if (review.apiVersion !== API_VERSION || review.kind !== 'AdmissionReview') {
    throw new ReviewFormatError(
      `expected ${API_VERSION} AdmissionReview, got ${String(review.apiVersion)} ${String(review.kind)}` +
        ' (register the webhook with admissionReviewVersions: [v1])',
    );
  }
  const request = record(review.request);
  if (!request) throw new ReviewFormatError('the AdmissionReview has no request');
  const uid = text(request.uid);
  if (!uid) throw new ReviewFormatError('request.uid is missing');
  const operation = text(request.operation);
  if (!OPERATIONS.has(operation))
    throw new ReviewFormatError(`request.operation ${JSON.stringify(operation)} is unknown`);
  const kind = record(request.kind) ?? {};
  const resource = record(request.resource) ?? {};
  const userInfo = record(request.userInfo) ?? {};
  return {
    uid,
    operation: operation as AdmissionOperation,
    kind: { group: text(kind.group), version: text(kind.version), kind: text(kind.kind) },
    resource: { group: text(resource.group), version: text(resource.version), resource: text(resource.resource) },
    subresource: text(request.subResource),
    name: text(request.name),
    namespace: text(request.namespace),
    object: objectOrUndefined(request.object, 'object'),
    oldObject: objectOrUndefined(request.oldObject, 'oldObject'),
    userInfo: userInfo as AdmissionUserInfo,
    dryRun: request.dryRun === true,
  };
}

/** The request's uid if the body has one, for answering a request the server could not parse otherwise. */
export function reviewUid(body: unknown): string {
  return text(record(record(body)?.request)?.uid);
}

/** The AdmissionReview that answers request `uid` with `verdict`. */
export function admissionResponse(uid: string, verdict: Verdict): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: verdict.allowed };
  const warnings = verdict.warnings.filter(Boolean).map((warning) => warning.slice(0, MAX_WARNING_LENGTH));
  if (warnings.length > 0) response.warnings = warnings;
  if (verdict.allowed) {
    if (verdict.patch && verdict.patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
    }
  } else {
    const { message, code, field } = verdict.refusal;
    response.status = {
      code,
      message,
      // The reason kubectl and clients test for ("Invalid" for 422, and so on); a refusal is `Forbidden` otherwise.
      reason: code === 422 ? 'Invalid' : code === 400 ? 'BadRequest' : 'Forbidden',
      ...(field ? { details: { causes: [{ field, message, reason: 'FieldValueInvalid' }] } } : {}),
    };
  }
  return { apiVersion: API_VERSION, kind: 'AdmissionReview', response };
}
