/**
 * Loading handler modules: `opkit run ./dist/handlers.js` imports the module, and decorating a class registers it.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getOperatorOptions, registeredOperators, type OperatorClass } from '../decorators/metadata.js';

/**
 * Imports a module (path relative to the working directory, absolute path or file URL) and returns the operator
 * classes it registered while loading, plus any it exports (a module imported earlier registered its classes then).
 */
export async function importOperators(module: string): Promise<OperatorClass[]> {
  const before = new Set(registeredOperators());
  const url = module.startsWith('file:') ? module : pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
  const exports = (await import(url)) as Record<string, unknown>;
  const registered = registeredOperators().filter((cls) => !before.has(cls));
  const exported = Object.values(exports).filter(
    (value): value is OperatorClass => typeof value === 'function' && getOperatorOptions(value) !== undefined,
  );
  return [...new Set([...registered, ...exported])];
}
