// Module hooks of the benchmark runner (see register.mjs): `.ts` files are transpiled one by one with the
// workspace's TypeScript (no type check: `tsc -p tsconfig.test.json` does that), and a relative `./x.js` import
// from a `.ts` file falls back to `./x.ts`, as TypeScript's NodeNext resolution expects.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const compilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  experimentalDecorators: true,
  useDefineForClassFields: false,
  verbatimModuleSyntax: true,
  sourceMap: false,
  inlineSourceMap: true,
};

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const fromTs = context.parentURL?.endsWith('.ts') ?? false;
    if (fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(fileURLToPath(url), 'utf8');
  const { outputText } = ts.transpileModule(source, { fileName: url, compilerOptions });
  return { format: 'module', source: outputText, shortCircuit: true };
}
