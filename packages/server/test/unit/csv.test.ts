import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/cli/csv.js';
import { refusalOf } from '../helpers/refusals.js';

function encode(rows: readonly (readonly string[])[], lineEnd: string): string {
  return rows.map((row) => row.map((f) => (/[",\r\n]/.test(f) || f === '' ? `"${f.replace(/"/g, '""')}"` : f)).join(',')).join(lineEnd) + lineEnd;
}

describe('manufacturing CSV', () => {
  it('reads a header and rows, with quotes, embedded commas, quotes and newlines', () => {
    const text = 'name,type,attr.location\r\ndev-1,sensor,"Hall, ""B"""\r\ndev-2,,"line\none"\r\n';
    expect(parseCsv(text)).toEqual({
      columns: ['name', 'type', 'attr.location'],
      rows: [
        { name: 'dev-1', type: 'sensor', 'attr.location': 'Hall, "B"' },
        { name: 'dev-2', type: '', 'attr.location': 'line\none' },
      ],
    });
  });

  it('round-trips any table a writer produces (property)', () => {
    const field = fc.string({ maxLength: 20 });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.constantFrom('\n', '\r\n'), fc.array(fc.array(field, { minLength: 6, maxLength: 6 }), { maxLength: 20 }), (width, lineEnd, body) => {
        const columns = Array.from({ length: width }, (_, i) => `c${i}`);
        const rows = body.map((r) => r.slice(0, width));
        const parsed = parseCsv(encode([columns, ...rows], lineEnd));
        expect(parsed.columns).toEqual(columns);
        expect(parsed.rows).toEqual(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]]))));
      }),
    );
  });

  it('refuses malformed files, naming the line', () => {
    for (const [text, line] of [
      ['', 1],
      ['name,name\n', 1],
      ['name,type\ndev-1\n', 2],
      ['name\n"open\n', 3],
      ['name\nab"c\n', 2],
      ['name\n"a"b\n', 2],
      ['name\na\rb\n', 2],
    ] as const) {
      const error = refusalOf(() => parseCsv(text));
      expect(error.code, JSON.stringify(text)).toBe('FW_ERR_VALIDATION');
      expect(error.details.line, JSON.stringify(text)).toBe(line);
    }
    expect(refusalOf(() => parseCsv(`name\n${'x'.repeat(5000)}\n`)).code).toBe('FW_ERR_VALIDATION');
  });

  it('never throws anything but a validation error on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseCsv(text);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('FW_ERR_VALIDATION');
        }
      }),
    );
  });
});
