/**
 * The framework's writes to watched objects: guarded metadata JSON patches and status merge patches.
 *
 * Guarantees:
 * - Metadata patches never clobber concurrent writers (see `core/metadata-patch.ts`); when a guard fails (422/409)
 *   the object is fetched again and the patch rebuilt, up to {@link MAX_CONFLICT_ATTEMPTS} times.
 * - Status goes through the status subresource; when the resource has none (404 on `/status` while the object
 *   exists), the writer remembers that and patches `status` on the main resource from then on.
 * - 404 means the object is gone; that is reported as `'gone'`, never thrown: nothing is left to do for it.
 * - Finalizers are added at most once, whatever the responses: a metadata patch that failed without a verdict from
 *   the API server (5xx, such as a proxy's 504, or a transport error) may have been applied, so the writer remembers
 *   the object and guards its next appends with a `test` of the whole array (`guardAppends`). A repeat of an append
 *   that went through then fails its guard, and the fresh read shows the finalizer present. Every other operation is
 *   idempotent by its own guard.
 *
 * Caveats: an object whose outcome is unknown is remembered (its uid) until its next metadata write gets an answer;
 * an object deleted meanwhile by someone else stays remembered for the life of the writer. That takes a failed
 * write and a deletion that did not wait for our finalizer, so it stays rare and small.
 */
import type { Logger } from 'pino';
import { assumeContainersCreated, buildMetadataPatch, type MetadataChanges } from '../core/metadata-patch.js';
import { ApiError, type KubeApi, type KubeObject, type ResourceRef } from '../kube/types.js';

/** How often a guarded patch is rebuilt after conflicts before giving up (the caller then retries later). */
export const MAX_CONFLICT_ATTEMPTS = 8;

/** The object after a write, or `'gone'`. */
export type WriteResult = KubeObject | 'gone';

/** Writes to the objects of one resource. */
export class ObjectWriter {
  private hasStatusSubresource = true;
  /** Uids whose last metadata patch failed without a verdict, so may have been applied (see the guarantees). */
  private readonly unknownOutcomes = new Set<string>();

  constructor(
    private readonly api: KubeApi,
    private readonly ref: ResourceRef,
    private readonly logger?: Logger,
  ) {}

  /** Applies metadata changes to `object` (or its fresher copy after a conflict). No request when nothing changes. */
  async patchMetadata(object: KubeObject, changes: MetadataChanges): Promise<WriteResult> {
    const uid = object.metadata.uid;
    // `object` is typically the watch cache's copy, which need not show what a lost request did.
    const guardAppends = this.unknownOutcomes.has(uid);
    let current = object;
    let guessed = false;
    for (let attempt = 1; ; attempt++) {
      const ops = buildMetadataPatch(current.metadata, changes, { guardAppends });
      if (ops.length === 0) return current;
      try {
        const written = await this.api.patch<KubeObject>(this.ref, current.metadata.name, ops, {
          namespace: current.metadata.namespace,
          type: 'json',
        });
        this.unknownOutcomes.delete(uid);
        return written;
      } catch (error) {
        if (isNotFound(error)) {
          this.unknownOutcomes.delete(uid);
          return 'gone';
        }
        if (!isConflict(error) && outcomeUnknown(error)) this.unknownOutcomes.add(uid);
        if (!isConflict(error) || attempt >= MAX_CONFLICT_ATTEMPTS) throw error;
        // N instances adding their finalizers to a new object all find the list absent; all but one lose. Retrying
        // with an append first saves a GET per loser (N - 1 per object at a cold start of a DaemonSet). Not when
        // appends are guarded: the guess (an empty array) cannot pass a guard that someone else's creation failed.
        const guess = guessed || guardAppends ? undefined : assumeContainersCreated(current.metadata, ops);
        if (guess) {
          guessed = true;
          current = { ...current, metadata: { ...current.metadata, ...guess } };
          continue;
        }
        this.logger?.debug({ err: error, attempt }, 'metadata patch guard failed; refetching');
        const fresh = await this.get(current);
        if (fresh === 'gone') return 'gone';
        current = fresh;
      }
    }
  }

  /** Merge-patches `status` (the body is `{ status: ... }`). */
  async patchStatus(object: KubeObject, body: { status: Record<string, unknown> }): Promise<WriteResult> {
    const { name, namespace } = object.metadata;
    if (this.hasStatusSubresource) {
      try {
        return await this.api.patch(this.ref, name, body, { namespace, type: 'merge', subresource: 'status' });
      } catch (error) {
        if (!isNotFound(error)) throw error;
        if ((await this.get(object)) === 'gone') return 'gone';
        this.logger?.info('resource has no status subresource; writing status on the main resource');
        this.hasStatusSubresource = false;
      }
    }
    try {
      return await this.api.patch(this.ref, name, body, { namespace, type: 'merge' });
    } catch (error) {
      if (isNotFound(error)) return 'gone';
      throw error;
    }
  }

  private async get(object: KubeObject): Promise<WriteResult> {
    try {
      const fresh = await this.api.get<KubeObject>(this.ref, object.metadata.name, object.metadata.namespace);
      // Same name, new object: the one we were writing is gone.
      return fresh.metadata.uid === object.metadata.uid ? fresh : 'gone';
    } catch (error) {
      if (isNotFound(error)) return 'gone';
      throw error;
    }
  }
}

/** 404 from the API. */
export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.statusCode === 404;
}

/**
 * Whether a failed request may nevertheless have been applied: anything but the API server's own refusal (4xx). A
 * 5xx may come from a proxy or load balancer after the API server acted (504 Gateway Timeout), or from the API
 * server after etcd took the write (a timeout waiting for it); a transport error may have lost the response.
 */
export function outcomeUnknown(error: unknown): boolean {
  return !(error instanceof ApiError) || error.statusCode >= 500;
}

/** A failed patch guard (JSON patch `test`: 422 or 500 on older servers) or an optimistic-lock conflict (409). */
export function isConflict(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.statusCode === 409 || error.statusCode === 422) return true;
  return error.statusCode === 500 && /test|testing value|missing path/i.test(error.message);
}
