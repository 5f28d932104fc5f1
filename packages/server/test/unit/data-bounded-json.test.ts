import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JSON_LIMITS, parseBoundedJson, type JsonLimits } from '../../src/data/bounded-json.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const wide: JsonLimits = { maxBytes: 1 << 20, maxDepth: 64, maxNodes: 100_000, maxStringLength: 100_000 };

/** JSON values without duplicate keys (fast-check's jsonValue may produce "__proto__" keys, which we keep). */
const json = fc.jsonValue({ maxDepth: 6 });

describe('bounded JSON parser', () => {
  it('ok/agrees with JSON.parse on every JSON text within the limits', () => {
    fc.assert(
      fc.property(json, fc.boolean(), (value, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        const parsed = parseBoundedJson(bytes(text), wide);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(JSON.stringify(parsed.value)).toBe(JSON.stringify(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
  });

  it('ok/never throws on arbitrary bytes: it parses or refuses with a reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        const parsed = parseBoundedJson(data, DEFAULT_JSON_LIMITS);
        if (parsed.ok) {
          const text = Buffer.from(data).toString('utf8');
          expect(JSON.stringify(parsed.value)).toBe(JSON.stringify(JSON.parse(text)));
        } else expect(parsed.reason).toMatch(/^(not-json|not-utf8|duplicate-key|number-out-of-range)$/);
      }),
      { numRuns: 500 },
    );
  });

  it('ok/refuses whatever JSON.parse refuses (mutated JSON texts)', () => {
    fc.assert(
      fc.property(json, fc.nat(), fc.constantFrom('', '{', '}', ',', '"', ':', ']', 'x', '\u0001', '01', '-', '.'), (value, at, insert) => {
        const text = JSON.stringify(value);
        const i = at % (text.length + 1);
        const mutated = text.slice(0, i) + insert + text.slice(i);
        let reference: boolean;
        try {
          JSON.parse(mutated);
          reference = true;
        } catch {
          reference = false;
        }
        const parsed = parseBoundedJson(bytes(mutated), wide);
        if (!reference) expect(parsed.ok).toBe(false);
        else if (!parsed.ok) expect(parsed.reason).toMatch(/^(duplicate-key|number-out-of-range)$/);
      }),
      { numRuns: 500 },
    );
  });

  it('ok/"__proto__" is an own, ordinary key: no prototype is ever set', () => {
    const parsed = parseBoundedJson(bytes('{"__proto__": {"admin": true}, "constructor": 1}'));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(Object.getPrototypeOf(parsed.value)).toBe(Object.prototype);
    expect(Object.keys(parsed.value as object)).toEqual(['__proto__', 'constructor']);
    expect((parsed.value as Record<string, unknown>).admin).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(parseBoundedJson(bytes('{"__proto__": 1, "__proto__": 2}'))).toMatchObject({ ok: false, reason: 'duplicate-key' });
    expect(parseBoundedJson(bytes('{"toString": 1}')).ok).toBe(true);
  });

  it('ok/integer-like keys (enumerated first by JavaScript) are not mistaken for duplicates', () => {
    const text = '{"b":{"x":1},"1":{"y":1,"z":{"2":[{"a":1}],"c":2}},"0":3}';
    expect(parseBoundedJson(bytes(text))).toEqual({ ok: true, value: JSON.parse(text) as unknown });
    expect(parseBoundedJson(bytes('{"b":{"x":1},"1":{"y":1,"y":{"a":1}}}'))).toMatchObject({ ok: false, reason: 'duplicate-key' });
    expect(parseBoundedJson(bytes('[{"a":1},{"a":1},{"a":{"a":1,"a":2}}]'))).toMatchObject({ ok: false, reason: 'duplicate-key' });
  });

  it('ok/duplicates anywhere are found: property over objects with a repeated key', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 5 }), fc.jsonValue({ maxDepth: 2 }), fc.nat(), (object, extra, at) => {
        const keys = Object.keys(object);
        const key = keys[at % keys.length] as string;
        const text = `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(object[k])}`).join(',')},${JSON.stringify(key)}:${JSON.stringify(extra)}}`;
        expect(parseBoundedJson(bytes(`[1,${text}]`), wide)).toMatchObject({ ok: false, reason: 'duplicate-key' });
      }),
      { numRuns: 300 },
    );
  });

  const refusals: readonly [string, string | Uint8Array, string, Partial<JsonLimits>?][] = [
    ['fail/not JSON', 'temperature=21', 'not-json'],
    ['fail/empty payload', '', 'not-json'],
    ['fail/trailing text', '{} {}', 'not-json'],
    ['fail/invalid UTF-8', Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'not-utf8'],
    ['fail/duplicate key', '{"a":1,"a":2}', 'duplicate-key'],
    ['fail/number beyond a double', '{"a":1e400}', 'number-out-of-range'],
    ['fail/too large', `{"a":"${'x'.repeat(100)}"}`, 'too-large', { maxBytes: 64 }],
    ['fail/string too long', `{"a":"${'x'.repeat(100)}"}`, 'string-too-long', { maxStringLength: 50 }],
    ['fail/escaped string too long (escapes count as sent)', `{"a":"${'\\n'.repeat(30)}"}`, 'string-too-long', { maxStringLength: 50 }],
    ['fail/too many values', `[${'1,'.repeat(99)}1]`, 'too-many-values', { maxNodes: 50 }],
    ['fail/too deep', `${'['.repeat(17)}${']'.repeat(17)}`, 'too-deep'],
  ];
  for (const [name, input, reason, limits] of refusals) {
    it(name, () => {
      const parsed = parseBoundedJson(typeof input === 'string' ? bytes(input) : input, { ...DEFAULT_JSON_LIMITS, ...limits });
      expect(parsed).toMatchObject({ ok: false, reason });
    });
  }

  it('fail/a million nested arrays are refused without exhausting the stack', () => {
    const deep = bytes('['.repeat(1_000_000) + ']'.repeat(1_000_000));
    expect(parseBoundedJson(deep, { ...DEFAULT_JSON_LIMITS, maxBytes: 4_000_000 })).toMatchObject({ ok: false, reason: 'too-deep' });
  });

  it('ok/depth is counted in containers: exactly maxDepth is accepted', () => {
    const text = `${'{"a":'.repeat(15)}{}${'}'.repeat(15)}`;
    expect(parseBoundedJson(bytes(text)).ok).toBe(true);
  });
});
