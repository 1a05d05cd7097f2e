import { describe, expect, it } from 'vitest';
import {
  labelKeyProblem,
  labelValueProblem,
  selectorMatches,
  validateLabelSelector,
} from '../../src/logic/label-selector.js';

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

describe('label syntax (as the API machinery checks it)', () => {
  const prefix253 = `${'a'.repeat(61)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
  const name63 = `N${'x'.repeat(61)}9`;

  it.each([
    'a',
    'zone',
    'kubernetes.io/os',
    'node-role.kubernetes.io/egress',
    'example.com/My_Name.v-1',
    '9',
    name63,
    `${prefix253}/${name63}`,
  ])('accepts the key %s', (key) => {
    expect(prefix253).toHaveLength(253);
    expect(labelKeyProblem(key)).toBeUndefined();
  });

  it.each<[string, string]>([
    ['bad key/with/slashes', 'prefix before "/" must be a DNS subdomain'],
    ['not a key!!', 'the name must consist of alphanumeric characters'],
    ['a/b/c', 'only one "/" is allowed'],
    ['Example.com/x', 'prefix before "/" must be a DNS subdomain'],
    ['-lead', 'must consist of'],
    ['trail_', 'must consist of'],
    ['/name', 'prefix before "/" must not be empty'],
    ['example.com/', 'the name must not be empty'],
    ['ünïcode', 'must consist of'],
    [`${name63}x`, 'the name must be at most 63 characters'],
    [`${prefix253}x/a`, 'prefix before "/" must be at most 253 characters'],
  ])('refuses the key %j: %s', (key, problem) => {
    expect(labelKeyProblem(key)).toContain(problem);
  });

  it('accepts empty and well-formed values, refuses others', () => {
    for (const value of ['', 'linux', 'A.b-c_d', '0', name63]) expect(labelValueProblem(value)).toBeUndefined();
    expect(labelValueProblem('linux!!')).toContain('must be empty or consist of alphanumeric characters');
    expect(labelValueProblem('-x')).toContain('must be empty or consist of');
    expect(labelValueProblem('a b')).toContain('must be empty or consist of');
    expect(labelValueProblem(`${name63}x`)).toBe('must be at most 63 characters');
  });
});

describe('validateLabelSelector: label keys and values', () => {
  it('names the matchLabels key that is not a label key', () => {
    expect(validateLabelSelector({ matchLabels: { 'bad key/with/slashes': 'v' } }, 'spec.nodeSelector')).toEqual([
      'spec.nodeSelector.matchLabels: "bad key/with/slashes" is not a valid label key: the prefix before "/" must be ' +
        "a DNS subdomain: lower-case alphanumeric characters, '-' or '.' (e.g. example.com)",
    ]);
  });

  it('names the matchLabels value that is not a label value', () => {
    expect(validateLabelSelector({ matchLabels: { 'kubernetes.io/os': 'linux!!' } }, 'spec.nodeSelector')).toEqual([
      'spec.nodeSelector.matchLabels.kubernetes.io/os: "linux!!" is not a valid label value: must be empty or ' +
        "consist of alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character",
    ]);
  });

  it('names the matchExpressions key and values that are not label keys / values', () => {
    expect(
      validateLabelSelector({ matchExpressions: [{ key: 'not a key!!', operator: 'Exists' }] }, 'spec.nodeSelector'),
    ).toEqual([
      'spec.nodeSelector.matchExpressions[0].key: "not a key!!" is not a valid label key: the name must consist of ' +
        "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character",
    ]);
    const problems = validateLabelSelector(
      {
        matchExpressions: [
          { key: 'zone', operator: 'In', values: ['fra1'] },
          { key: 'zone', operator: 'NotIn', values: ['ok', 'bad value', 'x'.repeat(64)] },
        ],
      },
      's',
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^s\.matchExpressions\[1\]\.values\[1\]: "bad value" is not a valid label value: /);
    expect(problems[1]).toMatch(
      /^s\.matchExpressions\[1\]\.values\[2\]: "x{64}" is not a valid label value: must be at most 63/,
    );
  });

  it('accepts selectors at the limits of the syntax', () => {
    const key = `${'a'.repeat(253)}/${'b'.repeat(63)}`;
    expect(
      validateLabelSelector(
        {
          matchLabels: { [key]: 'c'.repeat(63), 'kubernetes.io/os': '' },
          matchExpressions: [{ key, operator: 'In', values: ['', 'A.b-c_d'] }],
        },
        's',
      ),
    ).toEqual([]);
  });

  it('reports a key problem and a value problem of the same label separately', () => {
    expect(validateLabelSelector({ matchLabels: { 'a b': 'c d' } }, 's')).toEqual([
      expect.stringMatching(/^s\.matchLabels: "a b" is not a valid label key: /),
      expect.stringMatching(/^s\.matchLabels\.a b: "c d" is not a valid label value: /),
    ]);
  });
});
