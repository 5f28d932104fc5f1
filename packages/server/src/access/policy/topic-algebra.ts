/**
 * Set algebra on MQTT topic patterns, each a list of levels where `+` and `#` are wildcards and every
 * other level is literal text (MQTT-4.7). A pattern denotes the set of topic names it matches:
 *
 * - `+` matches exactly one level, of any text (the empty level too);
 * - `#` is last and matches its parent level and any number of child levels: `a/#` matches `a`,
 *   `a/x` and `a/x/y`; `#` alone matches every topic;
 * - a pattern whose first level is a wildcard matches no topic starting with `$` (MQTT-4.7.2-1).
 *
 * Compiled policy levels never hold `+` or `#` as literal text: substituted values that contain them
 * are unresolved (substitute.ts), so a level equal to `+` or `#` is always a wildcard here.
 */

const PLUS = '+';
const HASH = '#';

export type Levels = readonly string[];

function isWildcard(level: string | undefined): boolean {
  return level === PLUS || level === HASH;
}

function isDollar(level: string | undefined): boolean {
  return level !== undefined && level.startsWith('$');
}

/** Whether a pattern matches one topic name (given as its levels). */
export function matchesTopic(pattern: Levels, topic: Levels): boolean {
  // MQTT-4.7.2-1: a wildcard first level never matches a `$` topic.
  if (isWildcard(pattern[0]) && isDollar(topic[0])) return false;
  for (let i = 0; i < pattern.length; i++) {
    const level = pattern[i];
    if (level === HASH) return true;
    if (i >= topic.length) return false;
    if (level !== PLUS && level !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

/**
 * Whether some topic name is matched by both patterns. Walk both level by level: a `#` on either
 * side at level i matches every topic that agrees on levels 0..i-1 (including the one ending there,
 * its parent), so the sets meet; two literals must be equal; `+` meets anything of one level. At
 * level 0 a wildcard never meets a literal starting with `$`.
 */
export function intersects(a: Levels, b: Levels): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (i === 0 && ((isWildcard(x) && isDollar(y)) || (isWildcard(y) && isDollar(x)))) return false;
    if (x === HASH || y === HASH) return true;
    if (x === undefined || y === undefined) return x === y;
    if (x !== PLUS && y !== PLUS && x !== y) return false;
  }
}

/**
 * Whether every topic name the filter matches is matched by at least one of the patterns (the union).
 *
 * The key fact: a literal level names one value out of infinitely many, so where the filter has `+`,
 * a "fresh" value that no pattern mentions exists, and only patterns with a wildcard at that level
 * can match topics carrying it. Patterns with `+` there match every value alike, so if they cover the
 * fresh value they cover all of them: literal patterns can be dropped at a `+`. Where the filter has a
 * literal, patterns with that literal or `+` stay. A filter `#` at level i stands for "the topic ends
 * here (its parent, when i > 0)" plus "one more level of any value, then anything": `F/#` = `F` ∪
 * `F/+/#`. Each step either removes patterns or goes one level deeper, and past the longest pattern
 * only a `#` can match, so the recursion ends. Exact for every pair of valid patterns (property-tested
 * against brute force over a bounded topic universe in test/unit/policy-topic-algebra.test.ts).
 */
export function covers(filter: Levels, patterns: readonly Levels[]): boolean {
  // At level 0, a filter literal starting with `$` can only be matched by patterns that name it.
  const first = filter[0];
  const candidates = isDollar(first) ? patterns.filter((p) => !isWildcard(p[0])) : patterns;
  return coversFrom(filter, 0, candidates);
}

function coversFrom(filter: Levels, i: number, patterns: readonly Levels[]): boolean {
  if (patterns.length === 0) return false;
  // Every pattern left agrees with the filter on levels 0..i-1 for all its topics.
  if (patterns.some((p) => p[i] === HASH)) return true;
  if (i === filter.length) return patterns.some((p) => p.length === i);
  const level = filter[i] as string;
  if (level === HASH) {
    // The parent topic (the filter's first i levels), which exists only when i > 0 ...
    if (i > 0 && !patterns.some((p) => p.length === i)) return false;
    // ... and every longer topic: `+` at level i followed by `#`.
    return coversFrom([...filter.slice(0, i), PLUS, HASH], i, patterns);
  }
  const next = patterns.filter((p) => p.length > i && (p[i] === PLUS || (level !== PLUS && p[i] === level)));
  return coversFrom(filter, i + 1, next);
}

/**
 * Whether some topic matched by `levels` lies in another thing's namespace `prefix/<X>/...` (at
 * least one level below the prefix) with X different from `own` (or any X when `own` is undefined).
 * Used for the reserved `$fw/things/{thing}` guard and by the analyzer for `things/{thing}`.
 */
export function reachesForeignNamespace(levels: Levels, prefix: Levels, own: string | undefined): boolean {
  for (let j = 0; j < prefix.length; j++) {
    const level = levels[j];
    if (level === undefined) return false;
    if (j === 0 && isWildcard(level) && isDollar(prefix[0])) return false;
    if (level === HASH) return true;
    if (level !== PLUS && level !== prefix[j]) return false;
  }
  const owner = levels[prefix.length];
  if (owner === undefined) return false;
  return isWildcard(owner) || owner !== own;
}
