/**
 * The JSON patch (RFC 6902) a mutating handler's answer carries: the difference between the object the API server
 * sent and the one the handler made of it. Pure.
 *
 * The difference is computed by fast-json-patch rather than by hand: array moves, `~` and `/` in keys (labels such
 * as `app.kubernetes.io/name` become `app.kubernetes.io~1name`) and removals inside arrays are where hand-written
 * differs go wrong.
 */
import fastJsonPatch from 'fast-json-patch';
import type { PatchOperation } from './review.js';

/**
 * The operations that turn `before` into `after`. `after` is first reduced to what JSON can say (`undefined`
 * fields dropped, dates as strings), as the API server would read it; an empty list means "no change".
 */
export function mutationPatch(before: object, after: unknown): PatchOperation[] {
  if (typeof after !== 'object' || after === null || Array.isArray(after)) {
    throw new TypeError('a mutating handler must leave or return an object');
  }
  const plain = JSON.parse(JSON.stringify(after)) as object;
  return fastJsonPatch.compare(before, plain) as PatchOperation[];
}

/** `patch` applied to a copy of `before`: what the API server will store (for tests and logs). */
export function applyMutation<T extends object>(before: T, patch: readonly PatchOperation[]): T {
  const copy = JSON.parse(JSON.stringify(before)) as T;
  return fastJsonPatch.applyPatch(copy, patch as fastJsonPatch.Operation[], true, true).newDocument;
}
