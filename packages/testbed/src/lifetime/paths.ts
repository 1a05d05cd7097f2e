/** Where the test bed keeps its per-run folders and helper scripts. */
import os from 'node:os';
import path from 'node:path';

/**
 * Root folder of the test bed's temporary files: `$OPKIT_TESTBED_DIR`, else `<tmpdir>/opkit-testbed`. Every run gets
 * `<root>/<ownerPid>-<random>/`; network namespaces are named `otb-<ownerPid>-<random>-<role>`.
 */
export function testbedRoot(): string {
  return process.env.OPKIT_TESTBED_DIR ?? path.join(os.tmpdir(), 'opkit-testbed');
}

/** Prefix of every network namespace the test bed creates. */
export const NETNS_PREFIX = 'otb-';
