/**
 * B2 (docs/RELIABILITY.md): the node-local state store with real files. Whatever cannot be read at a state file's
 * path counts as lost state (reported through `discarded`), never as an error that fails every cycle; the next write
 * and `forget` replace or remove whatever is there, a directory included.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { FileStateStore } from '../../src/engine/state-store.js';
import type { KubeObject } from '../../src/kube/types.js';

const uid = '0a1b2c3d-0000-4000-8000-00000000000b';
const object: KubeObject = { metadata: { name: 'r1', uid } } as KubeObject;
let dir: string;
let store: FileStateStore;
const file = () => join(dir, `${uid}.json`);

async function putDirectoryAtPath(): Promise<void> {
  await mkdir(file(), { recursive: true });
  await writeFile(join(file(), 'inside'), 'x');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opkit-file-store-'));
  store = new FileStateStore(dir);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('FileStateStore', () => {
  test('a missing file is no state, and nothing is reported', async () => {
    expect(await store.read(object)).toEqual({ state: {} });
  });

  test('round trip', async () => {
    await store.prepare(object, { diffBase: { spec: { a: 1 } } }).commit();
    expect(await store.read(object)).toEqual({ state: { diffBase: { spec: { a: 1 } } } });
  });

  test('a directory at the path: read as lost state with the reason, replaced by the next write', async () => {
    await mkdir(dir, { recursive: true });
    await putDirectoryAtPath();
    const read = await store.read(object);
    expect(read.state).toEqual({});
    expect(read.discarded).toMatch(/^unreadable \(EISDIR\)$/);
    await store.prepare(object, { diffBase: { spec: { a: 2 } } }).commit();
    expect((await stat(file())).isFile()).toBe(true);
    expect(await store.read(object)).toEqual({ state: { diffBase: { spec: { a: 2 } } } });
    // No temporary file left behind.
    expect(await readdir(dir)).toEqual([`${uid}.json`]);
  });

  test('garbage content is reported and replaced by the next write', async () => {
    await store.prepare(object, { diffBase: { spec: {} } }).commit();
    await writeFile(file(), 'not json {');
    expect(await store.read(object)).toEqual({ state: {}, discarded: 'not JSON' });
    await store.prepare(object, { diffBase: { spec: { b: 1 } } }).commit();
    expect(JSON.parse(await readFile(file(), 'utf8'))).toMatchObject({ version: 1, uid, diffBase: { spec: { b: 1 } } });
  });

  test('forget and sweep remove a directory at a state path too', async () => {
    await mkdir(dir, { recursive: true });
    await putDirectoryAtPath();
    await store.forget(uid);
    await expect(stat(file())).rejects.toMatchObject({ code: 'ENOENT' });
    await putDirectoryAtPath();
    expect(await store.sweep(() => false)).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });
});
