/**
 * Where the per-object state (diff-base, progress) lives, per scope.
 *
 * - {@link AnnotationStateStore} (cluster scope): on the object, in `<prefix>/last-handled-configuration` and
 *   `<prefix>/progress`. Writing means adding annotation changes to the object patch the processor sends anyway.
 * - {@link FileStateStore} (node scope): one JSON file per object uid in the instance's state directory, replaced
 *   atomically (write a temporary file, fsync, rename), so a crash leaves either the old or the new state, never a
 *   torn one. Node-local state for node-local effects: N instances never grow the object.
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectState } from '../core/progress.js';
import { decodeStateFile, encodeStateFile, readAnnotationState, stateAnnotationChanges } from '../core/state-codec.js';
import type { KubeObject } from '../kube/types.js';

/** A prepared state write. */
export interface StateWrite {
  /** Annotation changes to include in the object patch (cluster scope). */
  annotations: Record<string, string | null>;
  /** Persists the state outside the object (node scope); run after the object patch succeeded. */
  commit(): Promise<void>;
}

/** Storage of {@link ObjectState}. */
export interface StateStore {
  read(object: KubeObject): Promise<ObjectState>;
  prepare(object: KubeObject, next: ObjectState): StateWrite;
  /** Drops the state of an object that is gone. */
  forget(uid: string): Promise<void>;
  /**
   * Drops the state of every object for which `isLive(uid)` is false (objects deleted while the operator was down).
   * The predicate is asked at the moment each entry is examined, so objects that appear meanwhile are kept.
   */
  sweep(isLive: (uid: string) => boolean): Promise<number>;
}

const noCommit = (): Promise<void> => Promise.resolve();

/** Cluster scope: state in annotations on the object. */
export class AnnotationStateStore implements StateStore {
  constructor(private readonly prefix: string) {}

  read(object: KubeObject): Promise<ObjectState> {
    return Promise.resolve(readAnnotationState(object.metadata.annotations, this.prefix));
  }

  prepare(object: KubeObject, next: ObjectState): StateWrite {
    return { annotations: stateAnnotationChanges(object.metadata.annotations, this.prefix, next), commit: noCommit };
  }

  forget(): Promise<void> {
    return Promise.resolve();
  }

  sweep(): Promise<number> {
    return Promise.resolve(0);
  }
}

/** Node scope: one file per object uid under `directory`. */
export class FileStateStore implements StateStore {
  private ready: Promise<void> | undefined;

  constructor(private readonly directory: string) {}

  async read(object: KubeObject): Promise<ObjectState> {
    try {
      return decodeStateFile(await readFile(this.fileOf(object.metadata.uid), 'utf8'), object.metadata.uid);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
  }

  prepare(object: KubeObject, next: ObjectState): StateWrite {
    const { uid, name, namespace } = object.metadata;
    const text = encodeStateFile(uid, namespace ? `${namespace}/${name}` : name, next);
    return { annotations: {}, commit: () => this.write(uid, text) };
  }

  async forget(uid: string): Promise<void> {
    await rm(this.fileOf(uid), { force: true });
  }

  async sweep(isLive: (uid: string) => boolean): Promise<number> {
    await this.ensureDirectory();
    let removed = 0;
    for (const entry of await readdir(this.directory)) {
      const uid = entry.endsWith('.json') ? entry.slice(0, -'.json'.length) : undefined;
      // Leftover temporary files of a crash mid-write are garbage too.
      if (uid === undefined ? entry.includes('.tmp') : !isLive(uid)) {
        await rm(join(this.directory, entry), { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  private fileOf(uid: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(uid)) throw new Error(`unexpected uid ${JSON.stringify(uid)}`);
    return join(this.directory, `${uid}.json`);
  }

  private ensureDirectory(): Promise<void> {
    this.ready ??= mkdir(this.directory, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.ready;
  }

  private async write(uid: string, text: string): Promise<void> {
    await this.ensureDirectory();
    const target = this.fileOf(uid);
    const temporary = `${target}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      // Durable before visible: after the rename, the content is on disk even if the node loses power.
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  }
}
