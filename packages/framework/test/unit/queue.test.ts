import { describe, expect, test } from 'vitest';
import { WorkQueue } from '../../src/engine/queue.js';

/** A gate the fake work waits on, so tests decide when a run ends (no timing assumptions). */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Polls until `condition` holds (no assertion on how long it takes). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('WorkQueue', () => {
  test('never runs one key twice at once; adds meanwhile coalesce into one more run with the latest value', async () => {
    const latest = new Map<string, number>();
    const seen: number[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const gates: Array<ReturnType<typeof gate>> = [];
    const queue = new WorkQueue({
      concurrency: 4,
      worker: async (key) => {
        concurrent += 1;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        seen.push(latest.get(key) as number);
        const g = gate();
        gates.push(g);
        await g.promise;
        concurrent -= 1;
      },
    });
    latest.set('a', 1);
    queue.add('a');
    await tick();
    for (const value of [2, 3, 4, 5]) {
      latest.set('a', value);
      queue.add('a');
    }
    await tick();
    expect(seen).toEqual([1]);
    gates[0]?.open();
    await tick();
    await tick();
    expect(seen).toEqual([1, 5]);
    gates[1]?.open();
    await queue.drain();
    expect(seen).toEqual([1, 5]);
    expect(maxConcurrent).toBe(1);
  });

  test('different keys run in parallel up to the concurrency limit', async () => {
    const running = new Set<string>();
    let maxRunning = 0;
    const gates = new Map<string, ReturnType<typeof gate>>();
    const queue = new WorkQueue({
      concurrency: 2,
      worker: async (key) => {
        running.add(key);
        maxRunning = Math.max(maxRunning, running.size);
        const g = gate();
        gates.set(key, g);
        await g.promise;
        running.delete(key);
      },
    });
    const depths: number[] = [];
    for (const key of ['a', 'b', 'c', 'd']) queue.add(key);
    await tick();
    expect([...running].sort()).toEqual(['a', 'b']);
    expect(queue.depth).toBe(2);
    depths.push(queue.depth);
    gates.get('a')?.open();
    await tick();
    await tick();
    expect([...running].sort()).toEqual(['b', 'c']);
    for (const key of ['b', 'c']) gates.get(key)?.open();
    await tick();
    await tick();
    gates.get('d')?.open();
    await queue.drain();
    expect(maxRunning).toBe(2);
    expect(queue.depth).toBe(0);
  });

  test('delayed requeue keeps the earliest time; an immediate add overrides it', async () => {
    const runs: string[] = [];
    const queue = new WorkQueue({ concurrency: 1, worker: async (key) => void runs.push(key) });
    queue.addAfter('a', 60_000);
    queue.addAfter('a', 120_000);
    expect(queue.depth).toBe(1);
    await tick();
    expect(runs).toEqual([]);
    queue.add('a');
    await queue.drain();
    expect(runs).toEqual(['a']);
    queue.addAfter('b', 5);
    await until(() => runs.length === 2);
    expect(runs).toEqual(['a', 'b']);
  });

  test('a requeue requested during a run is scheduled after it', async () => {
    const runs: number[] = [];
    const queue: WorkQueue = new WorkQueue({
      concurrency: 1,
      worker: async () => {
        runs.push(runs.length);
        if (runs.length === 1) queue.addAfter('a', 1);
      },
    });
    queue.add('a');
    await until(() => runs.length === 2);
    await queue.drain();
    expect(runs).toEqual([0, 1]);
  });

  test('errors go to onError and do not stop the queue', async () => {
    const errors: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      worker: async (key) => {
        if (key === 'bad') throw new Error('boom');
      },
      onError: (key) => errors.push(key),
    });
    queue.add('bad');
    queue.add('good');
    await queue.drain();
    expect(errors).toEqual(['bad']);
  });

  test('close stops intake; drain waits for running work', async () => {
    const g = gate();
    const runs: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      worker: async (key) => {
        runs.push(key);
        if (key === 'a') await g.promise;
      },
    });
    queue.add('a');
    queue.add('b');
    await tick();
    queue.close();
    queue.add('c');
    queue.add('a');
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false);
    g.open();
    await draining;
    expect(runs).toEqual(['a']);
  });

  test('forget drops waiting work', async () => {
    const runs: string[] = [];
    const queue = new WorkQueue({ concurrency: 1, worker: async (key) => void runs.push(key) });
    queue.addAfter('a', 10);
    queue.forget('a');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(runs).toEqual([]);
    expect(queue.depth).toBe(0);
  });
});
