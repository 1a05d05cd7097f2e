/**
 * Child processes inside network namespaces run the operator's compiled JavaScript (Node cannot run its
 * TypeScript with legacy decorators directly). These helpers compile it once per test file.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** packages/staticroute-operator */
export const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));
/** The repository root. */
export const REPO_DIR = path.resolve(PACKAGE_DIR, '../..');
const TSC = path.join(REPO_DIR, 'node_modules/.bin/tsc');

/**
 * Compiles only the pure logic and the netlink adapters (no framework needed) into the package's dist/.
 */
export async function buildAdapters(): Promise<void> {
  const sources = ['src/adapters/route-table.ts', 'src/adapters/route-monitor.ts'];
  await run(
    TSC,
    [
      ...['--outDir', 'dist', '--rootDir', 'src', '--module', 'nodenext', '--moduleResolution', 'nodenext'],
      ...['--target', 'es2022', '--lib', 'es2023', '--types', 'node', '--strict', '--esModuleInterop'],
      ...['--skipLibCheck', '--verbatimModuleSyntax', '--declaration', 'false'],
      ...sources,
    ],
    { cwd: PACKAGE_DIR },
  ).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`compiling the adapters failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
}

/** Builds the operator and the framework it depends on (`tsc -b`), for processes that run the whole operator. */
export async function buildOperator(): Promise<void> {
  await run(TSC, ['-b', path.join(PACKAGE_DIR, 'tsconfig.json')], { cwd: REPO_DIR }).catch(
    (error: { stdout?: string; stderr?: string }) => {
      throw new Error(`building the operator failed (tsc -b):\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    },
  );
}
