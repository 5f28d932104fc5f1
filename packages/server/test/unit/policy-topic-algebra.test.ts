import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { covers, intersects, matchesTopic, reachesForeignNamespace } from '../../src/access/policy/topic-algebra.js';
import { referenceMatches } from './policy-reference.js';

const split = (pattern: string) => pattern.split('/');

/** Every topic of up to `depth` levels over an alphabet (plus a fresh value and a fresh `$` value first). */
function topics(alphabet: readonly string[], depth: number): string[] {
  const first = [...alphabet, 'zz', '$zz'];
  const rest = [...alphabet, 'zz'];
  let layer = first;
  const all = [...layer];
  for (let i = 1; i < depth; i++) {
    layer = layer.flatMap((t) => rest.map((l) => `${t}/${l}`));
    all.push(...layer);
  }
  return all;
}

const LITERALS = ['a', 'b', '$s', ''];
const pattern = fc
  .tuple(fc.array(fc.constantFrom(...LITERALS, '+', '+'), { minLength: 1, maxLength: 3 }), fc.boolean())
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'))
  .filter((p) => p !== '')
  .chain((p) => fc.constantFrom(p, '#'));
const UNIVERSE = topics(LITERALS, 5);

describe('topic pattern algebra', () => {
  it.each([
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/+', 'a', false],
    ['a/+', 'a/', true],
    ['+/b', '$s/b', false],
    ['#', '$fw/things/x', false],
    ['$fw/#', '$fw/things/x', true],
    ['+', '', true],
  ])('%s matches %j: %s', (p, t, expected) => expect(matchesTopic(split(p), split(t))).toBe(expected));

  it.each([
    // filter, allow patterns, covered
    ['things/a/#', ['things/a/#'], true],
    ['things/+/x', ['things/a/#'], false],
    ['things/a/x', ['things/+/x'], true],
    ['a/#', ['a', 'a/+/#'], true],
    ['a/#', ['a/+/#'], false],
    ['a/#', ['a', 'a/+'], false],
    ['#', ['+/#'], true],
    ['#', ['+', '+/+/#'], true],
    ['+/x', ['a/x', 'b/x'], false],
    ['$fw/x', ['+/x'], false],
    ['$fw/x', ['$fw/+'], true],
    ['+/x', ['#'], true],
    ['a', ['a/#'], true],
  ])('filter %s is covered by %j: %s', (filter, patterns, expected) => expect(covers(split(filter), patterns.map(split))).toBe(expected));

  it.each([
    ['things/#', 'things/a/secret', true],
    ['things/+/x', 'things/a/#', true],
    ['#', '$fw/x', false],
    ['+/#', '$fw', false],
    ['a', 'a/#', true],
    ['a/+', 'a', false],
    ['a/b', 'a/c', false],
  ])('%s meets %s: %s', (a, b, expected) => {
    expect(intersects(split(a), split(b))).toBe(expected);
    expect(intersects(split(b), split(a))).toBe(expected);
  });

  it('matchesTopic agrees with the reference matcher (property)', () => {
    fc.assert(
      fc.property(pattern, fc.constantFrom(...UNIVERSE), (p, t) => {
        expect(matchesTopic(split(p), split(t))).toBe(referenceMatches(p, t));
      }),
      { numRuns: 2000 },
    );
  });

  it('intersects is exact: some topic of the bounded universe is matched by both (property)', () => {
    fc.assert(
      fc.property(pattern, pattern, (a, b) => {
        const both = UNIVERSE.some((t) => referenceMatches(a, t) && referenceMatches(b, t));
        expect(intersects(split(a), split(b))).toBe(both);
      }),
      { numRuns: 1500 },
    );
  });

  it('covers is exact: every topic the filter matches is matched by one of the patterns (property)', () => {
    fc.assert(
      fc.property(pattern, fc.array(pattern, { maxLength: 4 }), (filter, patterns) => {
        const covered = UNIVERSE.filter((t) => referenceMatches(filter, t)).every((t) => patterns.some((p) => referenceMatches(p, t)));
        expect(covers(split(filter), patterns.map(split))).toBe(covered);
      }),
      { numRuns: 1200 },
    );
  });

  it("reachesForeignNamespace is exact for $fw/things/<other> (property)", () => {
    const own = 'a';
    const universe = topics(['$fw', 'things', 'a', 'b'], 4);
    const filter = fc.array(fc.constantFrom('$fw', 'things', 'a', 'b', '+'), { minLength: 1, maxLength: 3 }).chain((l) => fc.constantFrom(l.join('/'), [...l, '#'].join('/'), '#'));
    fc.assert(
      fc.property(filter, (f) => {
        const reaches = universe.some((t) => referenceMatches(f, t) && t.split('/').length >= 3 && t.startsWith('$fw/things/') && t.split('/')[2] !== own);
        expect(reachesForeignNamespace(split(f), ['$fw', 'things'], own)).toBe(reaches);
      }),
      { numRuns: 1000 },
    );
  });
});
