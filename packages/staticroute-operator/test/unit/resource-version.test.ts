import { describe, expect, it } from 'vitest';
import { goneAfterList, isNewerVersion } from '../../src/logic/resource-version.js';

describe('isNewerVersion', () => {
  it('compares etcd revisions as numbers, beyond 2^53', () => {
    expect(isNewerVersion('10', '9')).toBe(true);
    expect(isNewerVersion('9', '10')).toBe(false);
    expect(isNewerVersion('9007199254740993', '9007199254740992')).toBe(true);
    expect(isNewerVersion('5', '5')).toBe(false);
  });

  it('takes anything else as different, so newer; an unknown version as older', () => {
    expect(isNewerVersion('abc', '5')).toBe(true);
    expect(isNewerVersion('5', undefined)).toBe(true);
    expect(isNewerVersion(undefined, '5')).toBe(false);
  });
});

describe('goneAfterList', () => {
  const known = new Map<string, string | undefined>([
    ['listed', '90'],
    ['deleted', '80'],
    ['newer-than-list', '120'],
    ['seen-during-list', '95'],
    ['no-version', undefined],
  ]);

  it('takes as gone what the list lacks, unless the watch showed it newer than the list or while it ran', () => {
    expect(goneAfterList(known, new Set(['listed']), '100', new Set(['seen-during-list']))).toEqual([
      'deleted',
      'no-version',
    ]);
  });

  it('a list from a cache behind the watch does not remove what the watch delivered after it', () => {
    // The list is at 100; the watch delivered 'newer-than-list' at 120: it is not in the list yet.
    expect(goneAfterList(known, new Set(['listed', 'deleted']), '100', new Set())).not.toContain('newer-than-list');
  });

  it('takes nothing as gone from a list without a version', () => {
    expect(goneAfterList(known, new Set(), undefined, new Set())).toEqual([]);
  });
});
