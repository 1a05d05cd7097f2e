/**
 * The packages as someone outside this repository gets them. `opkit` and `@opkit/testbed` are packed with pnpm (which
 * builds them first and rewrites `workspace:` ranges) and the tarballs checked: compiled JS and types behind every
 * entry point, a README and an Apache-2.0 LICENSE, no test files, no `workspace:` range. Then an empty project is made
 * of the files of the framework README's quick start, and the quick start's commands run as written, except that
 * `npm install` gets the tarballs instead of the registry's names: install, type-check against the shipped types, and
 * the quick start's vitest test, which starts a real control plane through @opkit/testbed's public API and checks
 * that the operator's handler wrote status.
 *
 * npm's cache is kept in ~/.cache/opkit-packaging/npm, so that reruns install without downloading.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const packages = { opkit: join(repoRoot, 'packages/framework'), '@opkit/testbed': join(repoRoot, 'packages/testbed') };
const readmePath = join(packages.opkit, 'README.md');
const QUICK_START = '## Quick start outside this repository (cluster scope)';
const npmCache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'opkit-packaging', 'npm');
/** Installing, type-checking and a cold first start can take minutes on 2 shared cores; a warm rerun much less. */
const SLOW = 900_000;

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * The environment of a newcomer's shell: none of this repository's packages on PATH (the project must use what it
 * installed; a Node.js runtime the repository provides stays) and none of the variables the outer vitest sets for
 * its own workers.
 */
function newcomerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('VITEST') || key === 'NODE_ENV' || key === 'TEST' || key.startsWith('npm_')) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((entry) => entry && !(entry.startsWith(repoRoot) && entry.includes('node_modules')))
    .join(delimiter);
  return env;
}

/** The quick start's code blocks: the files (```lang file=path) and the shell commands (```sh). */
interface QuickStart {
  files: Array<{ path: string; content: string }>;
  commands: string[][];
}

function parseQuickStart(readme: string): QuickStart {
  const start = readme.indexOf(`\n${QUICK_START}\n`);
  if (start < 0) throw new Error(`README has no section "${QUICK_START}"`);
  const end = readme.indexOf('\n## ', start + QUICK_START.length + 2);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const quickStart: QuickStart = { files: [], commands: [] };
  for (const block of section.matchAll(/^```(\w+)(?: file=(\S+))?\n([\s\S]*?)^```$/gm)) {
    const [, lang, path, content = ''] = block;
    if (path) quickStart.files.push({ path, content });
    else if (lang === 'sh') quickStart.commands.push(...content.split('\n').flatMap((line) => words(line)));
  }
  return quickStart;
}

function words(line: string): string[][] {
  const trimmed = line.trim();
  return trimmed && !trimmed.startsWith('#') ? [trimmed.split(/\s+/)] : [];
}

/** Packs a workspace package into `destination`; returns the tarball's path. */
async function pack(packageDir: string, destination: string): Promise<string> {
  const local = join(repoRoot, '.tools/node_modules/.bin/pnpm');
  const before = new Set(await readdir(destination));
  await run(existsSync(local) ? local : 'pnpm', ['pack', '--pack-destination', destination], packageDir);
  const made = (await readdir(destination)).filter((name) => name.endsWith('.tgz') && !before.has(name));
  if (made.length !== 1) throw new Error(`pnpm pack in ${packageDir} made ${made.join(', ') || 'nothing'}`);
  return join(destination, made[0]!);
}

interface Tarball {
  path: string;
  entries: string[];
  manifest: Record<string, unknown>;
  license: string;
  /** The packages the compiled code imports (static and dynamic `import`s of bare specifiers, `node:` left out). */
  imports: Set<string>;
}

async function inspect(path: string, cwd: string): Promise<Tarball> {
  const entries = (await run('tar', ['-tzf', path], cwd)).stdout.split('\n').filter(Boolean);
  const unpacked = await mkdtemp(join(cwd, 'unpacked-'));
  await run('tar', ['-xzf', path, '-C', unpacked], cwd);
  const root = join(unpacked, 'package');
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const license = await readFile(join(root, 'LICENSE'), 'utf8').catch(() => '');
  const imports = new Set<string>();
  const compiled = (await readdir(join(root, 'dist'), { recursive: true })).filter((file) => file.endsWith('.js'));
  for (const file of compiled) {
    const code = await readFile(join(root, 'dist', file), 'utf8');
    const specifiers = code.matchAll(
      /^(?:import\s*|(?:import|export)\b[^;'"]*?\bfrom\s*)'([^'.][^']*)'|\bimport\('([^'.][^']*)'\)/gm,
    );
    for (const [, staticOne, dynamicOne] of specifiers) {
      const specifier = staticOne ?? dynamicOne ?? '';
      if (specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      imports.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
    }
  }
  return { path, entries, manifest, license, imports };
}

/** Every file path an export map, `main`, `types` and `bin` point to. */
function entryPoints(manifest: Record<string, unknown>): string[] {
  const found: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') found.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect([manifest.main, manifest.types, manifest.exports, manifest.bin]);
  return found.map((entry) => `package/${entry.replace(/^\.\//, '')}`);
}

let work: string;
const tarballs = new Map<string, Tarball>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'opkit-packaging-'));
  const destination = join(work, 'packs');
  await mkdir(destination);
  // One after the other: both build with tsc, and the machine has two shared cores.
  for (const [name, dir] of Object.entries(packages)) {
    tarballs.set(name, await inspect(await pack(dir, destination), work));
  }
}, SLOW);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed packages', () => {
  test.each(Object.keys(packages))('%s: compiled entry points, README, Apache-2.0 LICENSE, no tests', (name) => {
    const tarball = tarballs.get(name)!;
    expect(tarball.manifest.name).toBe(name);
    expect(tarball.manifest.private).toBeUndefined();
    expect(tarball.manifest.license).toBe('Apache-2.0');
    expect(tarball.license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(tarball.entries).toEqual(expect.arrayContaining(['package/README.md', 'package/LICENSE']));
    const entries = entryPoints(tarball.manifest);
    expect(entries).toContain('package/dist/index.js');
    expect(entries).toContain('package/dist/index.d.ts');
    for (const entry of entries) expect(tarball.entries).toContain(entry);
    expect(tarball.entries.filter((entry) => /(^|\/)(test|tests|__tests__)\/|\.test\.[cm]?[jt]s$/.test(entry))).toEqual(
      [],
    );
  });

  test.each(Object.keys(packages))(
    '%s: every package its code imports is a dependency; no workspace: range',
    (name) => {
      const { manifest, imports } = tarballs.get(name)!;
      expect(JSON.stringify(manifest)).not.toContain('workspace:');
      const declared = Object.keys((manifest.dependencies as object | undefined) ?? {});
      expect(imports.size).toBeGreaterThan(0);
      expect([...imports].filter((imported) => imported !== name && !declared.includes(imported))).toEqual([]);
    },
  );
});

describe("the README's quick start, outside this repository", () => {
  test(
    'installs the tarballs, type-checks, and its test sees the handler write status on a real control plane',
    async () => {
      const quickStart = parseQuickStart(await readFile(readmePath, 'utf8'));
      expect(quickStart.files.map((file) => file.path)).toEqual(
        expect.arrayContaining(['package.json', 'tsconfig.json', 'vitest.config.ts']),
      );
      expect(quickStart.commands.map((command) => command.slice(0, 2).join(' '))).toEqual(
        expect.arrayContaining(['npm install', 'npx tsc', 'npx vitest']),
      );
      // The vitest the quick start installs is the major this repository tests with.
      const rootManifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
        devDependencies: Record<string, string>;
      };
      const repoMajor = /\d+/.exec(rootManifest.devDependencies.vitest ?? '')?.[0];
      expect(quickStart.commands.flat()).toContain(`vitest@${repoMajor}`);
      const project = join(work, 'project');
      for (const file of quickStart.files) {
        await mkdir(dirname(join(project, file.path)), { recursive: true });
        await writeFile(join(project, file.path), file.content);
      }
      const env = newcomerEnv();
      const outputs: string[] = [];
      for (const [command, ...args] of quickStart.commands) {
        if (command === 'npm' && args[0] === 'install') {
          // The registry's names become the tarballs; the cache makes reruns fast.
          const local = args.map((arg) => tarballs.get(arg)?.path ?? arg);
          const flags = ['--no-audit', '--no-fund', '--prefer-offline', '--cache', npmCache];
          await run('npm', [...local, ...flags], project, env);
        } else {
          outputs.push((await run(command!, args, project, env)).stdout);
        }
      }
      // What was installed is the packed code, not this workspace's.
      const installed = JSON.parse(await readFile(join(project, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      expect(installed.dependencies?.opkit).toMatch(/^file:.*\.tgz$/);
      expect(installed.devDependencies?.['@opkit/testbed']).toMatch(/^file:.*\.tgz$/);
      // eslint-disable-next-line no-control-regex -- vitest colours its summary on some terminals
      const testRun = (outputs.at(-1) ?? '').replace(/\x1b\[[0-9;]*m/g, '');
      expect(testRun).toMatch(/Tests\s+1 passed \(1\)/);
    },
    SLOW,
  );
});
