import { describe, expect, it } from 'vitest';
import { NdjsonParser } from '../../src/kube/ndjson.js';

function parseAll(chunks: (Buffer | string)[]): unknown[] {
  const values: unknown[] = [];
  const parser = new NdjsonParser((value) => values.push(value));
  for (const chunk of chunks) parser.push(chunk);
  parser.end();
  return values;
}

const events = [
  { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } },
  { type: 'MODIFIED', object: { metadata: { name: 'b', resourceVersion: '2' }, data: { text: 'héllo wörld ✓ 🚀' } } },
  { type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } },
];
const stream = Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join(''), 'utf8');

describe('NdjsonParser', () => {
  it('parses one value per line from a single chunk', () => {
    expect(parseAll([stream])).toEqual(events);
  });

  it('gives the same values for every split point, including inside multi-byte characters', () => {
    for (let cut = 0; cut <= stream.length; cut += 1) {
      expect(parseAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(events);
    }
  });

  it('handles a byte-by-byte stream', () => {
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(parseAll(bytes)).toEqual(events);
  });

  it('handles three-way splits around every newline', () => {
    const newlines = [...stream.entries()].filter(([, b]) => b === 0x0a).map(([i]) => i);
    for (const nl of newlines) {
      for (const [a, b] of [
        [nl - 1, nl + 1],
        [nl, nl + 1],
        [nl - 1, nl],
      ] as const) {
        expect(parseAll([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)])).toEqual(events);
      }
    }
  });

  it('does not emit a value before its newline arrives', () => {
    const values: unknown[] = [];
    const parser = new NdjsonParser((value) => values.push(value));
    parser.push('{"a":1');
    expect(values).toEqual([]);
    expect(parser.bufferedBytes).toBe(6);
    parser.push('}\n{"b"');
    expect(values).toEqual([{ a: 1 }]);
    parser.push(':2}\n');
    expect(values).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('skips blank lines and accepts CRLF', () => {
    expect(parseAll(['\n{"a":1}\r\n\n\r\n{"b":2}\n'])).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('emits a final line without a trailing newline at end()', () => {
    expect(parseAll(['{"a":1}\n{"b":', '2}'])).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('throws on a line that is not JSON', () => {
    const parser = new NdjsonParser(() => undefined);
    expect(() => parser.push('{"a":1}\nnot json\n')).toThrow(SyntaxError);
  });

  it('throws when an unterminated line exceeds the limit', () => {
    const parser = new NdjsonParser(() => undefined, 16);
    parser.push('{"a":"0123456');
    expect(() => parser.push('789abcdef"')).toThrow(RangeError);
  });

  it('does not keep a reference to the caller’s chunk buffer', () => {
    const values: unknown[] = [];
    const parser = new NdjsonParser((value) => values.push(value));
    const chunk = Buffer.from('{"a":"xy');
    parser.push(chunk);
    chunk.fill(0x20); // the caller reuses its buffer
    parser.push('z"}\n');
    expect(values).toEqual([{ a: 'xyz' }]);
  });
});
