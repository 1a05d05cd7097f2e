// Loader of the operator's benchmarks: `node --import ./bench/lib/register.mjs bench/<name>.ts`.
// The machine's Node 20 cannot run TypeScript, and the benchmarks reuse the end-to-end fixture (test/e2e/support),
// which is TypeScript: ts-hooks.mjs transpiles each `.ts` file as it is loaded (no type check here; `tsc -p
// tsconfig.test.json` checks bench/ with the tests).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
