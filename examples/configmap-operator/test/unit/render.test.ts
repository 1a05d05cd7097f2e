/**
 * The template language: substitution, every kind of invalid template, and the ConfigMap size limit.
 */
import { describe, expect, test } from 'vitest';
import { dataSize, describeProblems, MAX_CONFIGMAP_DATA_BYTES, renderAll, renderTemplate } from '../../src/render.js';

describe('renderTemplate', () => {
  test('replaces placeholders, with or without spaces inside the braces', () => {
    expect(renderTemplate('host={{host}}:{{ port }} ({{   host }})', { host: 'db', port: '5432' })).toEqual({
      ok: true,
      text: 'host=db:5432 (db)',
    });
  });

  test('text without placeholders, and a lone closing brace pair, are kept as they are', () => {
    expect(renderTemplate('plain }} text {', {})).toEqual({ ok: true, text: 'plain }} text {' });
    expect(renderTemplate('', {})).toEqual({ ok: true, text: '' });
  });

  test('values are inserted verbatim, never expanded again', () => {
    expect(renderTemplate('{{ a }}', { a: '{{ b }}', b: 'no' })).toEqual({ ok: true, text: '{{ b }}' });
    expect(renderTemplate('[{{ a }}]', { a: '' })).toEqual({ ok: true, text: '[]' });
  });

  test('an unknown name is an error with its offset', () => {
    expect(renderTemplate('port={{ port }}', {})).toEqual({
      ok: false,
      problems: [{ offset: 5, message: 'no value named "port" in spec.values' }],
    });
  });

  test('names inherited from Object.prototype are unknown, not resolved', () => {
    const result = renderTemplate('{{ constructor }}{{ toString }}', {});
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map((problem) => problem.message)).toEqual([
      'no value named "constructor" in spec.values',
      'no value named "toString" in spec.values',
    ]);
  });

  test('empty and malformed placeholders are errors', () => {
    const result = renderTemplate('{{}} {{ 1st }} {{ a b }} {{ a.b }}', { a: 'x' });
    expect(result).toEqual({
      ok: false,
      problems: [
        { offset: 0, message: 'empty placeholder' },
        { offset: 5, message: 'invalid placeholder name "1st"' },
        { offset: 15, message: 'invalid placeholder name "a b"' },
        { offset: 25, message: 'invalid placeholder name "a.b"' },
      ],
    });
  });

  test('an unclosed placeholder is an error, reported once, after the problems before it', () => {
    expect(renderTemplate('{{ x }} and {{ y', {})).toEqual({
      ok: false,
      problems: [
        { offset: 0, message: 'no value named "x" in spec.values' },
        { offset: 12, message: "'{{' is never closed with '}}'" },
      ],
    });
  });

  test('a nested opening brace pair makes the name invalid instead of being skipped silently', () => {
    const result = renderTemplate('{{ a {{ b }}', { a: '1', b: '2' });
    expect(result).toEqual({ ok: false, problems: [{ offset: 0, message: 'invalid placeholder name "a {{ b"' }] });
  });
});

describe('renderAll', () => {
  test('renders every key', () => {
    expect(renderAll({ 'a.conf': 'x={{ x }}', 'b.conf': 'static' }, { x: '1' })).toEqual({
      ok: true,
      data: { 'a.conf': 'x=1', 'b.conf': 'static' },
    });
  });

  test('reports the problems of all keys at once, by key in sorted order', () => {
    const result = renderAll({ 'z.conf': '{{ missing }}', 'a.conf': '{{ }}', 'ok.conf': 'fine' }, {});
    expect(result).toEqual({
      ok: false,
      problems: [
        { key: 'a.conf', offset: 0, message: 'empty placeholder' },
        { key: 'z.conf', offset: 0, message: 'no value named "missing" in spec.values' },
      ],
    });
  });

  test('refuses a rendering larger than a ConfigMap can hold', () => {
    const big = 'x'.repeat(MAX_CONFIGMAP_DATA_BYTES / 2);
    const result = renderAll({ a: '{{ big }}', b: '{{ big }}' }, { big });
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : describeProblems(result.problems)).toBe(
      `rendered data is ${MAX_CONFIGMAP_DATA_BYTES + 2} bytes; a ConfigMap holds at most ${MAX_CONFIGMAP_DATA_BYTES}`,
    );
    expect(renderAll({ a: big.slice(1) }, {}).ok).toBe(true);
  });
});

describe('dataSize and describeProblems', () => {
  test('size counts UTF-8 bytes of keys and values', () => {
    expect(dataSize({ ab: 'é', c: '' })).toBe(2 + 2 + 1);
  });

  test('problems read as one line, with key and offset when known', () => {
    expect(
      describeProblems([
        { key: 'app.conf', offset: 12, message: 'no value named "port" in spec.values' },
        { offset: 3, message: 'empty placeholder' },
        { message: 'too big' },
      ]),
    ).toBe('data[app.conf] at 12: no value named "port" in spec.values; at 3: empty placeholder; too big');
  });
});
