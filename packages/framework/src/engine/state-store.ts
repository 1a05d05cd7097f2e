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
import {
  encodeStateFile,
  inspectAnnotationState,
  inspectStateFile,
  stateAnnotationChanges,
  type DecodedState,
} from '../core/state-codec.js';
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
  /**
   * Reads the object's state. Never fails on bad stored state: what cannot be read or decoded counts as lost (the
   * object is then handled as new) and `discarded` says why, for the caller to report. The next write replaces it.
   */
  read(object: KubeObject): Promise<DecodedState>;
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

  read(object: KubeObject): Promise<DecodedState> {
    return Promise.resolve(inspectAnnotationState(object.metadata.annotations, this.prefix));
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

  async read(object: KubeObject): Promise<DecodedState> {
    const { uid } = object.metadata;
    let text: string;
    try {
      text = await readFile(this.fileOf(uid), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: {} };
      // A directory in its place, EIO from a failing disk, EACCES after a wrong chown: rethrowing would fail every
      // cycle of the object for ever (and keep its finalizer). Handled as lost state instead, which the design
      // allows (handlers are idempotent); the next write replaces whatever is there.
      const code = (error as NodeJS.ErrnoException).code;
      return {
        state: {},
        discarded: `unreadable (${code ?? (error instanceof Error ? error.message : String(error))})`,
      };
    }
    return inspectStateFile(text, uid);
  }

  prepare(object: KubeObject, next: ObjectState): StateWrite {
    const { uid, name, namespace } = object.metadata;
    const text = encodeStateFile(uid, namespace ? `${namespace}/${name}` : name, next);
    return { annotations: {}, commit: () => this.write(uid, text) };
  }

  async forget(uid: string): Promise<void> {
    // Recursive: whatever took the file's place (a directory) goes too.
    await rm(this.fileOf(uid), { force: true, recursive: true });
  }

  async sweep(isLive: (uid: string) => boolean): Promise<number> {
    await this.ensureDirectory();
    let removed = 0;
    for (const entry of await readdir(this.directory)) {
      const uid = entry.endsWith('.json') ? entry.slice(0, -'.json'.length) : undefined;
      // Leftover temporary files of a crash mid-write are garbage too.
      if (uid === undefined ? entry.includes('.tmp') : !isLive(uid)) {
        await rm(join(this.directory, entry), { force: true, recursive: true });
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
    try {
      await rename(temporary, target);
    } catch (error) {
      // rename() replaces files, not directories: remove whatever took the file's place, then try once more.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
      await rm(target, { force: true, recursive: true });
      await rename(temporary, target);
    }
  }
}
