/**
 * docs/architecture.md lists every source file of the framework, by folder, one line each: a file added without a
 * line there, or a line left behind for a file that is gone, fails this test. `index.ts` files only re-export and
 * are left out.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const SRC = join(here, '../../src');
const DOC = join(here, '../../../../docs/architecture.md');

/** Every `.ts` file under `dir`, as a path relative to `src/` with `/` separators. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path).split(sep).join('/')] : [];
  });
}

/**
 * The files the opkit section of the document lists: under a heading that names one or more `src/<folder>/`, a
 * bullet names a file of that folder (`` - `timers.ts`: ... ``), or with its folder when the heading names several
 * (`` - `reports/report-writer.ts`: ... ``).
 */
export function listedFiles(markdown: string): string[] {
  const start = markdown.indexOf('### opkit\n');
  const end = markdown.indexOf('\n### ', start + 1);
  if (start < 0) throw new Error('docs/architecture.md has no "### opkit" section');
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const listed: string[] = [];
  let folders: string[] = [];
  for (const line of section.split('\n')) {
    if (line.startsWith('#### ')) {
      folders = [...line.matchAll(/`src\/([\w/-]+)\/`/g)].map((match) => match[1] as string);
      continue;
    }
    const file = /^- `([\w./-]+\.ts)`/.exec(line)?.[1];
    if (!file) continue;
    listed.push(file.includes('/') || folders.length !== 1 ? file : `${folders[0]}/${file}`);
  }
  return listed;
}

describe('docs/architecture.md', () => {
  const listed = listedFiles(readFileSync(DOC, 'utf8'));
  const files = sourceFiles(SRC).filter((file) => !file.endsWith('index.ts'));

  test('lists every source file of packages/framework/src (index.ts files aside)', () => {
    expect(files.filter((file) => !listed.includes(file)).sort()).toEqual([]);
  });

  test('lists no file that does not exist, and none twice', () => {
    expect(listed.filter((file) => !files.includes(file))).toEqual([]);
    expect(listed.filter((file, i) => listed.indexOf(file) !== i)).toEqual([]);
  });

  test('reads a folder from its heading and a file from its bullet', () => {
    const doc = [
      '### opkit',
      '#### `src/core/`: pure',
      '- `backoff.ts`: delays.',
      '#### `src/reconcile/`, `src/reports/`: blocks',
      '- `reports/report-writer.ts`: one writer.',
      '### next',
      '- `ignored.ts`: not in the section.',
    ].join('\n');
    expect(listedFiles(doc)).toEqual(['core/backoff.ts', 'reports/report-writer.ts']);
  });
});
