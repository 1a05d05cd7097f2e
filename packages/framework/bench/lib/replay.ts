/**
 * The "same writes, no framework" baseline of the throughput benchmark: the driver creates the objects and itself
 * sends, per object, exactly the requests the operator sends for a create (guarded JSON patch adding the finalizer;
 * JSON patch adding the diff-base annotation; one Event, posted by a single loop as the framework's recorder does),
 * with the operator's concurrency and two plain watches open on the collection (the operator's and the observer's in
 * the operator run). What the operator needs beyond this is the framework's cost; the rest is the API server's.
 *
 * The framework writes status only when there is something to say (a handler status patch, a returned value, a
 * failure or retry). The benchmark's handlers (fixtures/widget-operator.mjs) only succeed, so no status write is
 * replayed by default; `statusWrite: true` adds the status merge patch a handler that patches status would cost.
 */
import { inParallel, type BenchClient } from './api.js';
import { collectionPath, objectPath, widget } from './cluster.js';

const FINALIZER = 'opkit.dev/finalizer';
const DIFF_BASE = 'opkit.dev~1last-handled-configuration';

/** Resolves with the time from the first create until every object's last write returned, in ms. */
export async function replayOperatorWrites(
  client: BenchClient,
  plural: string,
  options: {
    objects: number;
    parallelCreates: number;
    concurrency: number;
    /** Also send a status merge patch per object (default false: the benchmark's handlers write no status). */
    statusWrite?: boolean;
  },
): Promise<number> {
  const statusWrite = options.statusWrite ?? false;
  const watches = new AbortController();
  for (let i = 0; i < 2; i += 1) await client.watch(collectionPath(plural), () => undefined, watches.signal);
  const ready: { name: string; spec: unknown; labels: unknown }[] = [];
  const events: string[] = [];
  let created = 0;
  let waiting: (() => void)[] = [];
  const nextObject = async (): Promise<(typeof ready)[number] | undefined> => {
    for (;;) {
      const item = ready.shift();
      if (item || created === options.objects) return item;
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  };
  const patch = (name: string, body: unknown, type: 'json' | 'merge', subresource = ''): Promise<unknown> =>
    client.ok(
      'PATCH',
      `${objectPath(plural, name)}${subresource}?fieldManager=opkit`,
      body,
      type === 'json' ? 'application/json-patch+json' : 'application/merge-patch+json',
    );
  const started = performance.now();
  const creating = inParallel(options.objects, options.parallelCreates, async (i) => {
    const object = widget(plural, i) as { metadata: { name: string; labels: unknown }; spec: unknown };
    await client.ok('POST', `${collectionPath(plural)}?fieldManager=bench`, object);
    created += 1;
    ready.push({ name: object.metadata.name, spec: object.spec, labels: object.metadata.labels });
    const wake = waiting;
    waiting = [];
    for (const resolve of wake) resolve();
  });
  const handling = inParallel(options.concurrency, options.concurrency, async () => {
    for (let item = await nextObject(); item; item = await nextObject()) {
      await patch(
        item.name,
        [
          { op: 'test', path: '/metadata/finalizers', value: null },
          { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
        ],
        'json',
      );
      const essence = JSON.stringify({ metadata: { labels: item.labels }, spec: item.spec });
      await patch(
        item.name,
        [
          { op: 'test', path: '/metadata/annotations', value: null },
          { op: 'add', path: '/metadata/annotations', value: { [DIFF_BASE.replace('~1', '/')]: essence } },
        ],
        'json',
      );
      if (statusWrite) {
        const time = new Date().toISOString();
        await patch(
          item.name,
          { status: { routes: 2, handlers: { created: { outcome: 'success', cause: 'create', retries: 0, time } } } },
          'merge',
          '/status',
        );
      }
      events.push(item.name);
    }
  });
  // Events go out one at a time while the objects are handled, as the framework's recorder posts them.
  let handled = false;
  const posting = (async () => {
    while (!handled || events.length > 0) {
      const name = events.shift();
      if (name === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      await client.ok('POST', '/api/v1/namespaces/default/events', {
        metadata: { generateName: `${name}.` },
        involvedObject: { apiVersion: 'bench.opkit.dev/v1', kind: 'Widget', name },
        type: 'Normal',
        reason: 'HandlerSucceeded',
        message: "Handler 'created' succeeded",
        source: { component: 'bench' },
      });
    }
  })();
  await Promise.all([creating, handling]);
  // Not waiting for the Events: the operator's handled time does not either.
  const elapsed = performance.now() - started;
  handled = true;
  await posting;
  watches.abort();
  return elapsed;
}
