import { spawnSync } from 'node:child_process';
import type * as V8 from 'node:v8';
import { afterEach, describe, expect, test, vi } from 'vitest';

vi.mock('node:v8', async (importOriginal) => ({
  ...(await importOriginal<typeof V8>()),
  setFlagsFromString: vi.fn(),
}));

const v8 = await import('node:v8');
const { applyYoungGeneration, parseYoungGeneration } = await import('../../src/ops/heap.js');

describe('young generation', () => {
  afterEach(() => vi.mocked(v8.setFlagsFromString).mockClear());

  test('fixed stops the growth of the semi-spaces; grow changes nothing', () => {
    applyYoungGeneration('fixed');
    expect(v8.setFlagsFromString).toHaveBeenCalledWith('--semi-space-growth-factor=1');
    vi.mocked(v8.setFlagsFromString).mockClear();
    applyYoungGeneration('grow');
    expect(v8.setFlagsFromString).not.toHaveBeenCalled();
  });

  test('values', () => {
    expect(parseYoungGeneration('fixed', '--x')).toBe('fixed');
    expect(parseYoungGeneration('grow', '--x')).toBe('grow');
    expect(() => parseYoungGeneration('small', '--x')).toThrow('--x must be fixed or grow, not small');
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
