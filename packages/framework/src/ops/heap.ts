/**
 * V8 heap settings for a long-running operator process, applied from inside the process (no `node` command-line
 * flags, so `opkit run`, a container's entry point and `node dist/ops/cli.js` get them alike).
 *
 * The young generation (new space: two semi-spaces) starts at 1 MiB per semi-space and doubles under a burst of
 * allocations up to `--max-semi-space-size` (16 MiB on Node 20, 64 MiB on Node 24), and V8 does not shrink it back
 * while the process is idle-but-not-quite (watch events, timers). An operator's burst is its start-up: listing and
 * handling every object grows new space to its maximum, and the process then keeps 32 MiB (Node 20) committed for
 * the rest of its life. `--semi-space-growth-factor=1` keeps it at its initial size: V8 reads the flag at each
 * resize, so setting it at run time, before the burst, is enough. Cost: more frequent, smaller scavenges (measured
 * in the README, "Memory").
 */
import { setFlagsFromString } from 'node:v8';

/** `fixed`: the young generation stays at its initial size; `grow`: V8's default (grows under load, not given back). */
export type YoungGeneration = 'fixed' | 'grow';

/** The environment variable that sets the default of `opkit run --young-generation`. */
export const YOUNG_GENERATION_ENV = 'OPKIT_YOUNG_GENERATION';

/** Parses a `--young-generation` / `OPKIT_YOUNG_GENERATION` value; throws on anything but `fixed` or `grow`. */
export function parseYoungGeneration(value: string, source: string): YoungGeneration {
  if (value === 'fixed' || value === 'grow') return value;
  throw new Error(`${source} must be fixed or grow, not ${value}`);
}

/**
 * Applies the young-generation setting to this process. `fixed` sets `--semi-space-growth-factor=1`; `grow` changes
 * nothing. Call before the start-up burst (the flag does not shrink a space that already grew). Idempotent.
 */
export function applyYoungGeneration(mode: YoungGeneration): void {
  if (mode === 'fixed') setFlagsFromString('--semi-space-growth-factor=1');
}
