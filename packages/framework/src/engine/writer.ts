/**
 * The framework's writes to watched objects: guarded metadata JSON patches and status merge patches.
 *
 * Guarantees:
 * - Metadata patches never clobber concurrent writers (see `core/metadata-patch.ts`); when a guard fails (422/409)
 *   the object is fetched again and the patch rebuilt, up to {@link MAX_CONFLICT_ATTEMPTS} times.
 * - Status goes through the status subresource; when the resource has none (404 on `/status` while the object
 *   exists), the writer remembers that and patches `status` on the main resource from then on.
 * - 404 means the object is gone; that is reported as `'gone'`, never thrown: nothing is left to do for it.
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

  constructor(
    private readonly api: KubeApi,
    private readonly ref: ResourceRef,
    private readonly logger?: Logger,
  ) {}

  /** Applies metadata changes to `object` (or its fresher copy after a conflict). No request when nothing changes. */
  async patchMetadata(object: KubeObject, changes: MetadataChanges): Promise<WriteResult> {
    let current = object;
    let guessed = false;
    for (let attempt = 1; ; attempt++) {
      const ops = buildMetadataPatch(current.metadata, changes);
      if (ops.length === 0) return current;
      try {
        return await this.api.patch(this.ref, current.metadata.name, ops, {
          namespace: current.metadata.namespace,
          type: 'json',
        });
      } catch (error) {
        if (isNotFound(error)) return 'gone';
        if (!isConflict(error) || attempt >= MAX_CONFLICT_ATTEMPTS) throw error;
        // N instances adding their finalizers to a new object all find the list absent; all but one lose. Retrying
        // with an append first saves a GET per loser (N - 1 per object at a cold start of a DaemonSet).
        const guess = guessed ? undefined : assumeContainersCreated(current.metadata, ops);
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

/** A failed patch guard (JSON patch `test`: 422 or 500 on older servers) or an optimistic-lock conflict (409). */
export function isConflict(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.statusCode === 409 || error.statusCode === 422) return true;
  return error.statusCode === 500 && /test|testing value|missing path/i.test(error.message);
}
