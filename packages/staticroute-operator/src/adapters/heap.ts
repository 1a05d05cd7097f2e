/**
 * The V8 heap of a long-running node agent: kept near what it holds, not at the high-water mark of its last burst.
 *
 * Measured at 10,000 routes (1,000 objects, bench/cold-start.ts --heap-snapshot): the live heap is ~23 MB, yet the
 * process held 135-185 MB, because V8 keeps what a burst made it grow to while the process stays busy now and then
 * (watch events, the periodic reconcile). Two runtime settings fix that, both applied from inside the process (no
 * command-line flags, so the DaemonSet and `opkit run` get them alike):
 * - the young generation stays at its initial size instead of doubling up to 2 x 16 MB semi-spaces (Node 20) or
 *   2 x 64 MB (Node 24) under the start-up burst: `--semi-space-growth-factor` is read at each resize;
 * - after a burst of work ends, one full collection that also releases free pages to the operating system.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8's `gc`. Called without options: with an options object Node 20's V8 left the garbage in place (measured: heap
 * used 155 MB before and after), while the plain call collects everything and the freed pages are unmapped right
 * after.
 */
type Collect = () => void;

let collect: Collect | undefined;

/** Keeps the young generation at its initial size (costs more frequent, smaller scavenges). Idempotent. */
export function limitYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Two full garbage collections (~10 ms each per 40 MB here), after which V8 unmaps the pages they freed. For the end of a burst of work, never on a hot
 * path. `gc` is obtained from a fresh context created after `--expose-gc` is set, so the process's own global scope
 * stays as it was.
 */
export function compactHeap(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  // Twice: the first collection measures each page's live bytes, the second evacuates the sparse pages it found so
  // that whole pages can be unmapped. One collection freed the garbage but left it spread over half-empty pages
  // (measured on 150,000 survivors of 1.5 million objects: heap 103 MB after one, 37 MB after two).
  collect();
  collect();
}
