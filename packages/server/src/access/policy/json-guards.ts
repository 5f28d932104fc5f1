import { invalid, quote } from './invalid.js';

/** Small guards for parsing untrusted JSON values into typed ones, each failing with a path. */

export type JsonObject = Readonly<Record<string, unknown>>;

export function expectObject(value: unknown, path: string, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(path, `${what} must be an object`);
  return value as JsonObject;
}

/** Refuses unknown fields (a misspelt `condition` must not silently drop a restriction) and missing required ones. */
export function checkFields(object: JsonObject, path: string, required: readonly string[], optional: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (!required.includes(key) && !optional.includes(key)) {
      throw invalid(`${path}/${escapePointer(key)}`, `unknown field ${quote(key)}: expected ${[...required, ...optional].join(', ')}`);
    }
  }
  for (const key of required) {
    if (!Object.hasOwn(object, key)) throw invalid(path, `missing field ${quote(key)}`);
  }
}

export function expectString(value: unknown, path: string, what: string, maxLength: number): string {
  if (typeof value !== 'string') throw invalid(path, `${what} must be a string`);
  if (value.length > maxLength) throw invalid(path, `${what} is at most ${maxLength} characters`, { limit: maxLength });
  return value;
}

/** An array of 1..max items (checked before any item is looked at, so a huge array costs nothing). */
export function expectArray(value: unknown, path: string, what: string, max: number): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(path, `${what} must be an array`);
  if (value.length === 0) throw invalid(path, `${what} must not be empty`);
  if (value.length > max) throw invalid(path, `${what} has at most ${max} entries`, { limit: max });
  // A copy without holes: a sparse array (not from JSON, but from a caller) gets `undefined` entries, which item checks refuse.
  return Array.from(value as unknown[]);
}

/** Refuses a repeated entry: it is always a mistake, and canonical documents have none. */
export function checkUnique(values: readonly string[], path: string, what: string): void {
  const seen = new Set<string>();
  for (const [i, value] of values.entries()) {
    if (seen.has(value)) throw invalid(`${path}/${i}`, `${what} ${quote(value)} is listed twice`);
    seen.add(value);
  }
}

/** RFC 6901 escaping, so a path stays unambiguous whatever the key. */
export function escapePointer(key: string): string {
  return key.slice(0, 64).replace(/~/g, '~0').replace(/\//g, '~1');
}
