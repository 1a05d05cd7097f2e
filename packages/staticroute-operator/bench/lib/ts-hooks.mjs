// Module hooks registered by register.mjs: `.ts` files are transpiled one at a time with the workspace's
// TypeScript, and `./x.js` imported from a `.ts` file falls back to `./x.ts` (NodeNext's convention for sources).
import { readFile } from 'node:fs/promises';
import ts from 'typescript';

const compilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
  experimentalDecorators: true,
  useDefineForClassFields: false,
  inlineSourceMap: true,
};

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const fromSource = context.parentURL?.endsWith('.ts') ?? false;
    if (fromSource && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  const { outputText } = ts.transpileModule(source, { fileName: new URL(url).pathname, compilerOptions });
  return { format: 'module', source: outputText, shortCircuit: true };
}
