import { describe, expect, it } from 'vitest';
import {
  entryForDeletion,
  entryFromOutcome,
  MAX_ENTRY_MESSAGE,
  summarizeReport,
  type ReportEntry,
} from '../../src/logic/report.js';

describe('node report entries', () => {
  it('an Applied entry is small: no message unless there is a warning', () => {
    expect(entryFromOutcome('u', 3, { state: 'Applied', message: '2/2 routes applied', routes: 2 })).toEqual({
      uid: 'u',
      generation: 3,
      state: 'Applied',
      routes: 2,
    });
    expect(
      entryFromOutcome('u', 3, { state: 'Applied', message: '2/2 routes applied; warning: x', routes: 2 }).message,
    ).toContain('warning: x');
  });

  it('a message never exceeds the bound the report CRD accepts', () => {
    const long = `failed: ${'198.51.100.1/32: ENETUNREACH; '.repeat(200)}`;
    const entry = entryFromOutcome('u', 1, { state: 'Failed', message: long, routes: 0 });
    expect(entry.message?.length).toBe(MAX_ENTRY_MESSAGE);
    expect(entry.message?.endsWith('…')).toBe(true);
  });

  it('a deleted object is Removed once nothing is left to remove, Failed with what is left otherwise', () => {
    expect(entryForDeletion('u', 2, new Map())).toEqual({ uid: 'u', generation: 2, state: 'Removed', routes: 0 });
    const stuck = entryForDeletion('u', 2, new Map([['203.0.113.0/24', 'EPERM']]));
    expect(stuck).toMatchObject({ state: 'Failed', routes: 1, message: 'cannot remove routes: 203.0.113.0/24: EPERM' });
  });

  it('summarizes counts for the printer columns', () => {
    const entries = new Map<string, ReportEntry>([
      ['a', { uid: 'a', state: 'Applied', routes: 3 }],
      ['b', { uid: 'b', state: 'Failed', routes: 1 }],
      ['c', { uid: 'c', state: 'NotSelected', routes: 0 }],
      ['d', { uid: 'd', state: 'Conflict', routes: 0 }],
    ]);
    expect(summarizeReport(entries)).toEqual({ staticRoutes: 4, notReady: 2, routes: 4 });
  });
});
