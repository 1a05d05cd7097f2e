// Entry point of the benchmark runner: `node --import ./bench/register.mjs bench/<name>.ts`.
// Registers ts-hooks.mjs so that Node 20 (which cannot run TypeScript) loads the benchmark sources; the framework
// itself is imported from its compiled output (`opkit` resolves to dist/ through the package's own exports).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
