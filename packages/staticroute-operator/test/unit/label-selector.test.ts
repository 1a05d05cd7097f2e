import { describe, expect, it } from 'vitest';
import { selectorMatches, validateLabelSelector } from '../../src/logic/label-selector.js';

const labels = { 'node-role/egress': 'true', zone: 'fra1', pool: 'workers' };

describe('selectorMatches', () => {
  it('selects everything without a selector or with an empty one', () => {
    expect(selectorMatches(undefined, labels)).toBe(true);
    expect(selectorMatches({}, labels)).toBe(true);
    expect(selectorMatches({}, {})).toBe(true);
  });

  it('matchLabels needs every pair', () => {
    expect(selectorMatches({ matchLabels: { zone: 'fra1' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { zone: 'fra1', pool: 'workers' } }, labels)).toBe(true);
    expect(selectorMatches({ matchLabels: { zone: 'ams3' } }, labels)).toBe(false);
    expect(selectorMatches({ matchLabels: { missing: '' } }, labels)).toBe(false);
  });

  it('In / NotIn / Exists / DoesNotExist', () => {
    const match = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', key: string, values?: string[]) =>
      selectorMatches({ matchExpressions: [{ key, operator, values }] }, labels);
    expect(match('In', 'zone', ['ams3', 'fra1'])).toBe(true);
    expect(match('In', 'zone', ['ams3'])).toBe(false);
    expect(match('In', 'absent', ['x'])).toBe(false);
    expect(match('NotIn', 'zone', ['ams3'])).toBe(true);
    expect(match('NotIn', 'zone', ['fra1'])).toBe(false);
    expect(match('NotIn', 'absent', ['x'])).toBe(true);
    expect(match('Exists', 'node-role/egress')).toBe(true);
    expect(match('Exists', 'absent')).toBe(false);
    expect(match('DoesNotExist', 'absent')).toBe(true);
    expect(match('DoesNotExist', 'zone')).toBe(false);
  });

  it('ANDs matchLabels and every expression', () => {
    const selector = {
      matchLabels: { pool: 'workers' },
      matchExpressions: [
        { key: 'zone', operator: 'In' as const, values: ['fra1'] },
        { key: 'tainted', operator: 'DoesNotExist' as const },
      ],
    };
    expect(selectorMatches(selector, labels)).toBe(true);
    expect(selectorMatches(selector, { ...labels, tainted: 'yes' })).toBe(false);
  });

  it('does not read inherited properties as labels', () => {
    expect(selectorMatches({ matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, {})).toBe(false);
  });
});

describe('validateLabelSelector', () => {
  it('accepts valid selectors and absence', () => {
    expect(validateLabelSelector(undefined, 'spec.nodeSelector')).toEqual([]);
    expect(
      validateLabelSelector(
        { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'a', operator: 'Exists' }] },
        'spec.nodeSelector',
      ),
    ).toEqual([]);
  });

  it('names the field of each problem', () => {
    expect(validateLabelSelector('x', 'spec.nodeSelector')).toEqual([
      'spec.nodeSelector: must be a label selector object',
    ]);
    expect(validateLabelSelector({ matchLabels: { a: 1 } }, 's')).toEqual(['s.matchLabels.a: must be a string']);
    expect(validateLabelSelector({ matchLabels: [] }, 's')).toEqual(['s.matchLabels: must be a map of strings']);
    expect(validateLabelSelector({ matchExpressions: {} }, 's')).toEqual(['s.matchExpressions: must be a list']);
    expect(validateLabelSelector({ matchExpressions: [null] }, 's')).toEqual([
      's.matchExpressions[0]: must be an object',
    ]);
    expect(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Equals' }] }, 's')).toEqual([
      's.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist',
    ]);
    expect(validateLabelSelector({ matchExpressions: [{ key: '', operator: 'Exists' }] }, 's')).toEqual([
      's.matchExpressions[0].key: must be a non-empty string',
    ]);
    expect(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, 's')).toEqual([
      's.matchExpressions[0].values: must be non-empty for operator In',
    ]);
    expect(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, 's')).toEqual(
      ['s.matchExpressions[0].values: must be empty for operator Exists'],
    );
    expect(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] }, 's')).toEqual([
      's.matchExpressions[0].values: must be a list of strings',
    ]);
  });
});
