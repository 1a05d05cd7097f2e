/**
 * V8 heap settings for a long-running operator process (`opkit run --heap`), applied from inside the process (no
 * `node` command-line flags, so `opkit run`, a container's entry point and `node dist/ops/cli.js` get them alike).
 * Exported for operators that schedule their own compaction (the StaticRoute agent compacts after a burst of route
 * planning, which it knows better than a request count). Measured there at 10,000 routes: a live heap of ~23 MB in a
 * process holding 135-185 MB before these two measures.
 *
 * - The young generation (new space: two semi-spaces) starts at 1 MiB per semi-space and doubles under a burst of
 *   allocations up to `--max-semi-space-size` (16 MiB on Node 20, 64 MiB on Node 24); V8 does not shrink it back
 *   while the process is idle-but-not-quite (watch events, timers). An operator's burst is its start-up: listing and
 *   handling every object grows new space to its maximum, and the process keeps it committed for the rest of its
 *   life. `--semi-space-growth-factor=1` keeps it at its initial size: V8 reads the flag at each resize, so setting it
 *   at run time, before the burst, is enough. Cost: more frequent, smaller scavenges.
 * - After a burst of API work (the initial list handled, a mass update), once the process has been quiet for a few
 *   seconds: two full collections, after which V8 unmaps the pages they emptied. Otherwise the old generation stays
 *   at the high-water mark of the burst, half of it garbage.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** `lean`: fixed young generation and compaction after bursts; `default`: V8's defaults. */
export type HeapMode = 'lean' | 'default';

/** The environment variable that sets the default of `opkit run --heap`. */
export const HEAP_MODE_ENV = 'OPKIT_HEAP';

/** Parses a `--heap` / `OPKIT_HEAP` value; throws on anything but `lean` or `default`. */
export function parseHeapMode(value: string, source: string): HeapMode {
  if (value === 'lean' || value === 'default') return value;
  throw new Error(`${source} must be lean or default, not ${value}`);
}

/** Keeps the young generation at its initial size. Call before the start-up burst. Idempotent. */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

let collect: (() => void) | undefined;

/**
 * Two full garbage collections, after which V8 unmaps the pages they freed (a few ms per 10 MiB of heap). Never on a
 * hot path. `gc` comes from a fresh context created after `--expose-gc` is set, so the global scope stays as it was.
 */
export function compactHeap(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  // Twice: the first marks each page's live bytes, the second evacuates the sparse pages so whole pages are unmapped.
  // One collection freed the garbage but left it spread over half-empty pages (measured on 150,000 survivors of 1.5
  // million objects: heap 103 MB after one, 37 MB after two). Called without options: with an options object Node
  // 20's V8 left the garbage in place.
  collect();
  collect();
}

/** Options of {@link compactAfterBursts}. */
export interface BurstOptions {
  /** The process's API request count so far (what marks work). */
  requests: () => number;
  /** Requests since the last compaction that make a burst. Default 200. */
  burst?: number;
  /** How long the request count must stay unchanged before compacting, in ms. Default 3000. */
  quietMs?: number;
  /** Polling period in ms. Default 1000. */
  periodMs?: number;
  /** Called after each compaction with its duration. */
  onCompacted?: (durationMs: number) => void;
  /** Replaces {@link compactHeap} (tests). */
  compact?: () => void;
}

/**
 * Compacts the heap once a burst of API work has ended: at least `burst` requests since the last compaction, then
 * none for `quietMs`. Returns a function that stops it. Its timer does not keep the process alive.
 */
export function compactAfterBursts(options: BurstOptions): () => void {
  const { requests, burst = 200, quietMs = 3000, periodMs = 1000, onCompacted, compact = compactHeap } = options;
  let compactedAt = requests();
  let last = compactedAt;
  let quietSince = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const count = requests();
    if (count !== last) {
      last = count;
      quietSince = now;
      return;
    }
    if (count - compactedAt < burst || now - quietSince < quietMs) return;
    compactedAt = count;
    const started = performance.now();
    compact();
    onCompacted?.(performance.now() - started);
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
