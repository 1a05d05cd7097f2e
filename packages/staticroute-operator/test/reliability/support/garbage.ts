/**
 * Garbage written over the framework's own state: the node-local state files (one JSON file per object uid, see
 * packages/framework/README.md, "Progress, diff-base and storage per scope") and the framework's marks on the object
 * (finalizers and annotations under the prefix, the per-node status entries).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { E2eCluster } from '../../e2e/support/cluster.js';
import { PREFIX, stateDirOf } from './observe.js';

/** Ways to spoil one state file. */
export type StateGarbage =
  | 'not-json'
  | 'wrong-types'
  | 'other-uid'
  | 'far-future-delete-retry'
  | 'garbage-handler-entry'
  | 'truncated'
  | 'directory'
  | 'empty'
  | 'binary';

/** Replaces the state file of `uid` on `nodeName` with `kind` garbage. */
export function spoilStateFile(cluster: E2eCluster, nodeName: string, uid: string, kind: StateGarbage): void {
  const file = path.join(stateDirOf(cluster, nodeName), `${uid}.json`);
  const current = readFileSync(file, 'utf8');
  const parsed = JSON.parse(current) as Record<string, unknown>;
  const now = new Date().toISOString();
  switch (kind) {
    case 'not-json':
      return writeFileSync(file, 'not json {');
    case 'wrong-types':
      return writeFileSync(
        file,
        JSON.stringify({
          version: 1,
          uid,
          key: 7,
          diffBase: 'garbage',
          progress: { cause: 'update', target: 42, handlers: [] },
        }),
      );
    case 'other-uid':
      return writeFileSync(file, JSON.stringify({ ...parsed, uid: '00000000-0000-0000-0000-000000000000' }));
    case 'far-future-delete-retry':
      // Plausible shape, absurd content: a delete "retrying" in the year 2999 (no backoff ever waits that long).
      return writeFileSync(
        file,
        JSON.stringify({
          ...parsed,
          progress: {
            cause: 'delete',
            target: '',
            startedAt: now,
            handlers: {
              routes: { state: 'retrying', retries: 3, delayedUntil: '2999-01-01T00:00:00.000Z', message: 'x' },
            },
          },
        }),
      );
    case 'garbage-handler-entry':
      return writeFileSync(
        file,
        JSON.stringify({
          ...parsed,
          progress: { cause: 'update', target: 'x', startedAt: 'yesterday', handlers: { routes: 'garbage' } },
        }),
      );
    case 'truncated':
      return writeFileSync(file, current.slice(0, Math.floor(current.length / 2)));
    case 'directory':
      rmSync(file);
      mkdirSync(file);
      return writeFileSync(path.join(file, 'inside'), 'x');
    case 'empty':
      return writeFileSync(file, '');
    case 'binary':
      return writeFileSync(file, Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 131 + 7) % 256)));
  }
}

/** Stray files in a state folder: a temporary file left by a crash mid-write, a state file of no object. */
export function addStrayFiles(cluster: E2eCluster, nodeName: string): string[] {
  const folder = stateDirOf(cluster, nodeName);
  const strays = ['leftover.json.4242.tmp', 'not-a-uid.json'];
  writeFileSync(path.join(folder, strays[0]!), '{"half":');
  writeFileSync(path.join(folder, strays[1]!), '{"version":1,"uid":"not-a-uid"}');
  return strays;
}

const BASE = '/apis/networking.digitalocean.com/v1/staticroutes';

async function patchOrThrow(cluster: E2eCluster, path: string, body: unknown, contentType?: string): Promise<void> {
  const response = await cluster.controlPlane.request('PATCH', path, body, contentType);
  if (response.status !== 200) throw new Error(`PATCH ${path} answered ${response.status}: ${response.text}`);
}

/** Garbage in the framework's annotations (node scope keeps no state there, so they must be ignored). */
export async function spoilAnnotations(cluster: E2eCluster, name: string): Promise<void> {
  await patchOrThrow(cluster, `${BASE}/${name}`, {
    metadata: { annotations: { [`${PREFIX}/last-handled-configuration`]: '{{{', [`${PREFIX}/progress`]: '[1,2,3]' } },
  });
}

/** Removes one node's finalizer and adds one of a node that does not exist. */
export async function spoilFinalizers(cluster: E2eCluster, name: string, dropNode: string): Promise<void> {
  const object = await cluster.getStaticRoute(name);
  const finalizers = object?.metadata.finalizers ?? [];
  const index = finalizers.indexOf(`${PREFIX}/${dropNode}`);
  if (index === -1) throw new Error(`${name} has no finalizer of ${dropNode}: ${JSON.stringify(finalizers)}`);
  await patchOrThrow(
    cluster,
    `${BASE}/${name}`,
    [
      { op: 'test', path: `/metadata/finalizers/${index}`, value: `${PREFIX}/${dropNode}` },
      { op: 'remove', path: `/metadata/finalizers/${index}` },
      { op: 'add', path: '/metadata/finalizers/-', value: `${PREFIX}/ghost-node` },
    ],
    'application/json-patch+json',
  );
}

/** Garbage in the status: entries of real nodes replaced by junk, a ghost node's entry, a junk summary. */
export async function spoilStatus(cluster: E2eCluster, name: string, nodes: string[]): Promise<void> {
  const junk: Record<string, unknown> = {
    'ghost-node': { state: 'Applied', message: 'ghost', observedGeneration: 99 },
  };
  nodes.forEach(
    (node, index) => (junk[node] = index % 2 === 0 ? 'garbage' : { state: 42, message: ['x'], routes: 'many' }),
  );
  await patchOrThrow(cluster, `${BASE}/${name}/status`, {
    status: { nodes: junk, ready: 'garbage', conditions: [{ type: 'Ready', status: 'Maybe' }] },
  });
}
