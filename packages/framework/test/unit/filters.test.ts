import { describe, expect, test } from 'vitest';
import { ABSENT, hasFilters, matchesFilters, PRESENT, validateFilters } from '../../src/core/filters.js';

const object = (labels?: Record<string, string>, annotations?: Record<string, string>, spec: unknown = {}) => ({
  metadata: { labels, annotations },
  spec,
});

describe('matchesFilters', () => {
  test('no filters match everything', () => {
    expect(matchesFilters(undefined, object())).toBe(true);
    expect(matchesFilters({}, object())).toBe(true);
  });

  test('labels: exact value, PRESENT, ABSENT, predicate', () => {
    const labelled = object({ tier: 'gold', zone: 'a' });
    expect(matchesFilters({ labels: { tier: 'gold' } }, labelled)).toBe(true);
    expect(matchesFilters({ labels: { tier: 'silver' } }, labelled)).toBe(false);
    expect(matchesFilters({ labels: { zone: PRESENT } }, labelled)).toBe(true);
    expect(matchesFilters({ labels: { other: PRESENT } }, labelled)).toBe(false);
    expect(matchesFilters({ labels: { other: ABSENT } }, labelled)).toBe(true);
    expect(matchesFilters({ labels: { tier: ABSENT } }, labelled)).toBe(false);
    expect(matchesFilters({ labels: { tier: (value) => value?.startsWith('g') === true } }, labelled)).toBe(true);
    expect(matchesFilters({ labels: { none: (value) => value === undefined } }, labelled)).toBe(true);
    // All conditions must hold.
    expect(matchesFilters({ labels: { tier: 'gold', zone: 'b' } }, labelled)).toBe(false);
  });

  test('objects without labels or annotations', () => {
    expect(matchesFilters({ labels: { tier: ABSENT }, annotations: { a: ABSENT } }, object())).toBe(true);
    expect(matchesFilters({ annotations: { a: PRESENT } }, object())).toBe(false);
  });

  test('keys are looked up as own properties only', () => {
    expect(matchesFilters({ labels: Object.fromEntries([['constructor', PRESENT]]) }, object({}))).toBe(false);
  });

  test('annotations and when combine with labels', () => {
    const target = object({ tier: 'gold' }, { 'example.com/skip': 'yes' }, { size: 3 });
    expect(matchesFilters({ annotations: { 'example.com/skip': 'yes' } }, target)).toBe(true);
    expect(matchesFilters({ annotations: { 'example.com/skip': ABSENT } }, target)).toBe(false);
    const big = (o: typeof target) => (o.spec as { size: number }).size > 2;
    expect(matchesFilters({ labels: { tier: 'gold' }, when: big }, target)).toBe(true);
    expect(matchesFilters({ labels: { tier: 'silver' }, when: big }, target)).toBe(false);
    // Only `true` counts: a truthy non-boolean is a bug in the filter, not a match.
    expect(matchesFilters({ when: () => 1 as unknown as boolean }, target)).toBe(false);
  });

  test('a throwing when propagates (the engine logs it and skips the handler)', () => {
    expect(() =>
      matchesFilters(
        {
          when: () => {
            throw new Error('boom');
          },
        },
        object(),
      ),
    ).toThrow('boom');
  });
});

describe('hasFilters and validateFilters', () => {
  test('hasFilters is false for empty filters', () => {
    expect(hasFilters(undefined)).toBe(false);
    expect(hasFilters({ labels: {} })).toBe(false);
    expect(hasFilters({ annotations: { a: ABSENT } })).toBe(true);
    expect(hasFilters({ when: () => true })).toBe(true);
  });

  test('values of the wrong type are refused', () => {
    expect(() => validateFilters('op', { labels: { a: 1 as never } })).toThrow(/labels filter for 'a'/);
    expect(() => validateFilters('op', { when: 'yes' as never })).toThrow(/'when' must be a function/);
    expect(() => validateFilters('op', { labels: { a: 'x', b: PRESENT, c: ABSENT, d: () => true } })).not.toThrow();
  });
});
