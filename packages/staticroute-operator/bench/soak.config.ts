/**
 * Vitest configuration of the soak (bench/soak.run.ts): kept apart from the test projects so that it runs only on
 * demand (scripts/soak.sh). It reuses the workspace's aliases (packages imported from source).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const source = (relative: string) => fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

export default defineConfig({
  root,
  resolve: {
    alias: [
      { find: /^opkit$/, replacement: source('packages/framework/src/index.ts') },
      { find: /^opkit\/heap$/, replacement: source('packages/framework/src/ops/heap.ts') },
      { find: /^opkit\/testing$/, replacement: source('packages/framework/src/testing/index.ts') },
      { find: /^@opkit\/testbed$/, replacement: source('packages/testbed/src/index.ts') },
      { find: /^@opkit\/testbed\/bench$/, replacement: source('packages/testbed/src/bench/index.ts') },
    ],
  },
  oxc: { decorator: { legacy: true } },
  test: {
    include: ['packages/staticroute-operator/bench/soak.run.ts'],
    testTimeout: 6 * 3_600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
