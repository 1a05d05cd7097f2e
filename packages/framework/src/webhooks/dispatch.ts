/**
 * One admission request through one handler: the context it gets, the verdict its outcome makes. No I/O beyond
 * calling the handler.
 *
 * Guarantees: every outcome is a verdict. An {@link AdmissionError} refuses with its message and code; any other
 * exception, or a handler slower than its webhook's timeout, refuses with a message that names the webhook and says
 * the handler failed (the API server would otherwise report a generic "failed calling webhook"), and is reported to
 * `onBug` for the logs. Nothing a handler does can crash the server.
 */
import type { Logger } from 'pino';
import { AdmissionError, type AdmissionContext } from '../decorators/admission.js';
import type { WatchedObject } from '../decorators/options.js';
import { mutationPatch } from './patch.js';
import type { AdmissionRequest, Verdict } from './review.js';
import type { AdmissionRoute } from './routes.js';

/** Calls the handler's method with the context (bound to the operator instance). */
export type InvokeHandler = (route: AdmissionRoute, context: AdmissionContext) => unknown;

/** What {@link admit} needs besides the request. */
export interface AdmitOptions {
  invoke: InvokeHandler;
  logger: Logger;
  /** Called with an exception that was not an AdmissionError (a bug in the handler). */
  onBug?: (error: unknown) => void;
  /** Answer before the API server gives up. Defaults to the webhook's `timeoutSeconds` minus half a second. */
  timeoutMs?: number;
}

/** Why the request was refused because of the framework or a failing handler, for the user. */
function bugMessage(route: AdmissionRoute, error: unknown): string {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `${route.webhookName}: the ${route.spec.kind} handler ${route.operator}.${String(route.spec.method)} failed (${detail})`;
}

class HandlerTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'Timeout';
  }
}

async function withinTime<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new HandlerTimeout(ms)), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function warningsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

/** Runs `route`'s handler for `request` and decides. */
export async function admit(route: AdmissionRoute, request: AdmissionRequest, options: AdmitOptions): Promise<Verdict> {
  const { spec } = route;
  const warnings: string[] = [];
  const subject = request.object ?? request.oldObject;
  if (spec.when && subject) {
    try {
      if (!spec.when(subject)) return { allowed: true, warnings };
    } catch (error) {
      options.onBug?.(error);
      return { allowed: false, warnings, refusal: { code: 500, message: bugMessage(route, error) } };
    }
  }
  // A private copy for mutating handlers: the original is what the patch is computed against.
  const object = spec.kind === 'mutate' && request.object ? structuredClone(request.object) : request.object;
  const context: AdmissionContext = {
    object,
    oldObject: request.oldObject,
    operation: request.operation,
    subresource: request.subresource,
    name: request.name || (subject?.metadata.name ?? ''),
    namespace: request.namespace,
    userInfo: request.userInfo,
    dryRun: request.dryRun,
    requestUid: request.uid,
    logger: options.logger,
    warn: (message) => void warnings.push(message),
  };
  const timeoutMs = options.timeoutMs ?? Math.max(100, spec.timeoutSeconds * 1000 - 500);
  let result: unknown;
  try {
    result = await withinTime(
      Promise.resolve().then(() => options.invoke(route, context)),
      timeoutMs,
    );
  } catch (error) {
    if (error instanceof AdmissionError) {
      const refusal = { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) };
      return { allowed: false, warnings, refusal };
    }
    options.onBug?.(error);
    return { allowed: false, warnings, refusal: { code: 500, message: bugMessage(route, error) } };
  }
  if (spec.kind === 'validate') return { allowed: true, warnings: [...warnings, ...warningsOf(result)] };
  if (!request.object || !object) return { allowed: true, warnings };
  try {
    const patch = mutationPatch(request.object, (result as WatchedObject | undefined) ?? object);
    return { allowed: true, warnings, patch };
  } catch (error) {
    options.onBug?.(error);
    return { allowed: false, warnings, refusal: { code: 500, message: bugMessage(route, error) } };
  }
}
