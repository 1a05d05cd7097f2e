import { spawnSync } from 'node:child_process';
import type * as V8 from 'node:v8';
import { afterEach, describe, expect, test, vi } from 'vitest';

vi.mock('node:v8', async (importOriginal) => ({
  ...(await importOriginal<typeof V8>()),
  setFlagsFromString: vi.fn(),
}));

const v8 = await import('node:v8');
const { compactAfterBursts, limitYoungGeneration, parseHeapMode } = await import('../../src/ops/heap.js');

describe('heap settings', () => {
  afterEach(() => {
    vi.mocked(v8.setFlagsFromString).mockClear();
    vi.useRealTimers();
  });

  test('limitYoungGeneration stops the growth of the semi-spaces', () => {
    limitYoungGeneration();
    expect(v8.setFlagsFromString).toHaveBeenCalledWith('--semi-space-growth-factor=1');
  });

  test('modes', () => {
    expect(parseHeapMode('lean', '--x')).toBe('lean');
    expect(parseHeapMode('default', '--x')).toBe('default');
    expect(() => parseHeapMode('small', '--x')).toThrow('--x must be lean or default, not small');
  });

  test('compacts once after a burst of requests followed by quiet, not while busy or idle', () => {
    vi.useFakeTimers();
    let requests = 0;
    const compact = vi.fn();
    const stop = compactAfterBursts({ requests: () => requests, burst: 100, quietMs: 3000, periodMs: 1000, compact });
    // Idle: no burst, no compaction.
    vi.advanceTimersByTime(10_000);
    expect(compact).not.toHaveBeenCalled();
    // Busy: requests keep coming.
    for (let i = 0; i < 10; i += 1) {
      requests += 30;
      vi.advanceTimersByTime(1000);
    }
    expect(compact).not.toHaveBeenCalled();
    // Quiet after the burst: one compaction, after quietMs.
    vi.advanceTimersByTime(2000);
    expect(compact).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2000);
    expect(compact).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(30_000);
    expect(compact).toHaveBeenCalledTimes(1);
    // A few requests (a watch event handled) are no burst.
    requests += 10;
    vi.advanceTimersByTime(30_000);
    expect(compact).toHaveBeenCalledTimes(1);
    // The next burst: compacted again.
    requests += 200;
    vi.advanceTimersByTime(10_000);
    expect(compact).toHaveBeenCalledTimes(2);
    stop();
    requests += 500;
    vi.advanceTimersByTime(30_000);
    expect(compact).toHaveBeenCalledTimes(2);
  });

  // The flag works only because V8 reads it at each resize: guard against a Node.js upgrade that stops doing so.
  test('the flag set at run time keeps new space small under a burst of allocations (this Node.js)', () => {
    const script = `
      const v8 = require('node:v8');
      if (process.argv[1] === 'fixed') v8.setFlagsFromString('--semi-space-growth-factor=1');
      let keep = [];
      for (let i = 0; i < 1_500_000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 100_000) keep = []; }
      const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      process.stdout.write(String(space.space_size / 2 ** 20));`;
    const newSpaceMiB = (mode: string): number =>
      Number(spawnSync(process.execPath, ['-e', script, mode], { encoding: 'utf8' }).stdout);
    expect(newSpaceMiB('fixed')).toBeLessThanOrEqual(4);
    expect(newSpaceMiB('grow')).toBeGreaterThan(4);
  });
});
