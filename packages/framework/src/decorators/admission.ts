/**
 * Admission decorators: `@Validate` and `@Mutate` (Kopf's `@kopf.on.validate` / `@kopf.on.mutate`,
 * controller-runtime's validating and defaulting webhooks).
 *
 * Like the other decorators they only record what they declare; the webhook server (`src/webhooks/`) routes the API
 * server's AdmissionReviews to them. Admission handlers run on every replica, leader or not, for every request the
 * API server sends: they must be quick (the API server waits for them, `timeoutSeconds`) and free of side effects
 * (`sideEffects: None`, so `kubectl apply --dry-run=server` can call them too).
 */
import 'reflect-metadata';
import type { Logger } from 'pino';
import { assertMethod } from './handlers.js';
import { nextOrder, type OperatorClass } from './metadata.js';
import type { WatchedObject } from './options.js';

const ADMISSION_KEY = Symbol.for('opkit:admission');

/** The operations an admission webhook can be registered for. */
export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** The operations a webhook registers for unless told otherwise. */
export const DEFAULT_ADMISSION_OPERATIONS: readonly AdmissionOperation[] = Object.freeze(['CREATE', 'UPDATE']);

/** A label selector as webhook configurations take it (`objectSelector`, `namespaceSelector`). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

/** Options of `@Validate` and `@Mutate`. */
export interface AdmissionOptions {
  /**
   * The last segment of the handler's path (`/validate/<plural>/<id>`) and part of the webhook's name: lower-case
   * letters, digits and `-`. Defaults to the method name in kebab case (`checkSize` -> `check-size`).
   */
  id?: string;
  /** The operations the API server sends. Defaults to CREATE and UPDATE. */
  operations?: AdmissionOperation[];
  /**
   * Subresources to admit as well as (or instead of) the object: `''` is the object itself, e.g. `['', 'status']`.
   * Defaults to the object only.
   */
  subresources?: string[];
  /**
   * What the API server does when the webhook cannot be reached or times out: `Fail` refuses the request, `Ignore`
   * lets it through unchecked. Defaults to `Fail`.
   */
  failurePolicy?: 'Fail' | 'Ignore';
  /**
   * `None` (default): the handler has no side effects, so dry-run requests are sent too. `NoneOnDryRun`: it has side
   * effects, which it skips when `ctx.dryRun`.
   */
  sideEffects?: 'None' | 'NoneOnDryRun';
  /** How long the API server waits for an answer, 1-30 s. Defaults to 10. */
  timeoutSeconds?: number;
  /** Only objects whose labels match (evaluated by the API server: others are never sent). Defaults to all. */
  objectSelector?: LabelSelector;
  /** Only objects in namespaces whose labels match (namespaced resources). Defaults to all. */
  namespaceSelector?: LabelSelector;
  /**
   * Evaluated by the framework on the object (the old one for DELETE): objects for which it returns false are
   * admitted without calling the handler. Defaults to all.
   */
  when?: (object: WatchedObject) => boolean;
}

/** Who sent the request, as the API server authenticated it. */
export interface AdmissionUserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** What an admission handler gets. */
export interface AdmissionContext<T extends WatchedObject = WatchedObject> {
  /**
   * The object as it would be stored (undefined for DELETE). For `@Mutate`, a private deep copy: change it in place
   * or return a new object.
   */
  object: T | undefined;
  /** The stored object before the change (UPDATE and DELETE). */
  oldObject: T | undefined;
  operation: AdmissionOperation;
  /** `''` for the object itself, or e.g. `status`, `scale`. */
  subresource: string;
  name: string;
  /** Empty for cluster-scoped objects. */
  namespace: string;
  userInfo: AdmissionUserInfo;
  /** True for `--dry-run=server` requests: nothing will be stored. */
  dryRun: boolean;
  /** The AdmissionReview's uid. */
  requestUid: string;
  /** Bound to the handler, object, operation and request uid. */
  logger: Logger;
  /** Adds a warning that kubectl shows to the user, whatever the verdict. */
  warn(message: string): void;
}

/** What a validating handler may return: nothing, or warnings for the user. */
export type ValidateResult = void | undefined | string | string[];

/** What a mutating handler may return: nothing (it changed `ctx.object` in place) or the object to store. */
export type MutateResult<T extends WatchedObject = WatchedObject> = void | undefined | T;

/** Options of {@link AdmissionError}. */
export interface AdmissionErrorOptions {
  /** The HTTP code in the refusal's Status. Defaults to 400 (kubectl prints it as `admission webhook ... denied`). */
  code?: number;
  /** The offending field, e.g. `spec.size`: named in the Status details for the user and for tools. */
  field?: string;
}

/**
 * Thrown by an admission handler to refuse the request with a message for the user. Any other exception refuses too,
 * with a generic message, and is logged as a bug.
 */
export class AdmissionError extends Error {
  readonly code: number;
  readonly field: string | undefined;

  constructor(message: string, options: AdmissionErrorOptions = {}) {
    super(message);
    this.name = 'AdmissionError';
    const code = options.code ?? 400;
    if (!Number.isInteger(code) || code < 400 || code > 599) {
      throw new Error(`AdmissionError: code must be an HTTP error code (400-599), not ${code}`);
    }
    this.code = code;
    this.field = options.field;
  }
}

/** One declared admission handler, as the webhook server routes it. */
export interface AdmissionSpec {
  kind: 'validate' | 'mutate';
  id: string;
  method: string | symbol;
  order: number;
  operations: AdmissionOperation[];
  subresources: string[];
  failurePolicy: 'Fail' | 'Ignore';
  sideEffects: 'None' | 'NoneOnDryRun';
  timeoutSeconds: number;
  objectSelector: LabelSelector | undefined;
  namespaceSelector: LabelSelector | undefined;
  when: ((object: WatchedObject) => boolean) | undefined;
}

const OPERATIONS: ReadonlySet<string> = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);
/** A DNS label: what a path segment and a part of a webhook's name may be. */
const ID_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `checkSize` -> `check-size`, `validate_Spec` -> `validate-spec`. */
export function kebabCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
}

/** Checks and completes a decorator's options; throws a message naming the decorator and the option. */
export function resolveAdmissionOptions(
  kind: AdmissionSpec['kind'],
  method: string | symbol,
  options: AdmissionOptions = {},
): Omit<AdmissionSpec, 'order'> {
  const what = `@${kind === 'validate' ? 'Validate' : 'Mutate'} ${String(method)}`;
  const id = options.id ?? kebabCase(String(method));
  if (!ID_PATTERN.test(id)) {
    throw new Error(`${what}: id must be lower-case letters, digits and '-' (at most 63), not ${JSON.stringify(id)}`);
  }
  const operations = options.operations ?? [...DEFAULT_ADMISSION_OPERATIONS];
  if (operations.length === 0) throw new Error(`${what}: operations must not be empty`);
  for (const operation of operations) {
    if (!OPERATIONS.has(operation)) {
      throw new Error(`${what}: unknown operation ${JSON.stringify(operation)} (CREATE, UPDATE, DELETE or CONNECT)`);
    }
  }
  const failurePolicy = options.failurePolicy ?? 'Fail';
  if (failurePolicy !== 'Fail' && failurePolicy !== 'Ignore') {
    throw new Error(`${what}: failurePolicy must be Fail or Ignore, not ${JSON.stringify(failurePolicy)}`);
  }
  const sideEffects = options.sideEffects ?? 'None';
  if (sideEffects !== 'None' && sideEffects !== 'NoneOnDryRun') {
    throw new Error(`${what}: sideEffects must be None or NoneOnDryRun, not ${JSON.stringify(sideEffects)}`);
  }
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) {
    throw new Error(`${what}: timeoutSeconds must be an integer from 1 to 30, not ${timeoutSeconds}`);
  }
  const subresources = options.subresources ?? [''];
  if (subresources.length === 0) throw new Error(`${what}: subresources must not be empty ('' is the object)`);
  if (options.when !== undefined && typeof options.when !== 'function') {
    throw new Error(`${what}: when must be a function`);
  }
  return {
    kind,
    id,
    method,
    operations: [...new Set(operations)],
    subresources: [...new Set(subresources)],
    failurePolicy,
    sideEffects,
    timeoutSeconds,
    objectSelector: options.objectSelector,
    namespaceSelector: options.namespaceSelector,
    when: options.when,
  };
}

function admissionDecorator(kind: AdmissionSpec['kind'], options: AdmissionOptions | undefined) {
  return (target: object, propertyKey: string | symbol, descriptor?: PropertyDescriptor): void => {
    assertMethod(`@${kind === 'validate' ? 'Validate' : 'Mutate'}`, target, propertyKey, descriptor);
    const spec: AdmissionSpec = { ...resolveAdmissionOptions(kind, propertyKey, options), order: nextOrder() };
    const existing = (Reflect.getMetadata(ADMISSION_KEY, target) as AdmissionSpec[] | undefined) ?? [];
    Reflect.defineMetadata(ADMISSION_KEY, [...existing, spec], target);
  };
}

/**
 * Validates the operator's objects before the API server stores them: the handler gets an {@link AdmissionContext}
 * and refuses by throwing {@link AdmissionError} (its message reaches the user); it may return warnings. Served at
 * `/validate/<plural>/<id>`.
 *
 * @example
 * ```ts
 * @Validate({ operations: ['CREATE', 'UPDATE'] })
 * checkSize(ctx: AdmissionContext<Widget>) {
 *   if (ctx.object!.spec.size > 10) throw new AdmissionError('size must be 10 or less', { field: 'spec.size' });
 * }
 * ```
 */
export function Validate(options?: AdmissionOptions) {
  return admissionDecorator('validate', options);
}

/**
 * Changes the operator's objects before the API server validates and stores them: the handler changes
 * `ctx.object` (a private copy) in place or returns the object to store; the framework answers with the JSON patch
 * (RFC 6902) between the two. It may refuse like a validating handler. Served at `/mutate/<plural>/<id>`.
 *
 * @example
 * ```ts
 * @Mutate()
 * defaults(ctx: AdmissionContext<Widget>) {
 *   ctx.object!.spec.color ??= 'blue';
 * }
 * ```
 */
export function Mutate(options?: AdmissionOptions) {
  return admissionDecorator('mutate', options);
}

/** The `@Validate` and `@Mutate` handlers of a class (and its base classes), in declaration order. */
export function getAdmissionHandlers(target: OperatorClass): AdmissionSpec[] {
  const specs = (Reflect.getMetadata(ADMISSION_KEY, target.prototype as object) as AdmissionSpec[] | undefined) ?? [];
  return [...specs].sort((a, b) => a.order - b.order);
}
