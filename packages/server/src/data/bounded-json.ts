import { isUtf8 } from 'node:buffer';

/** What the bounded parser accepts at most; every limit has a unit and a safe default. */
export interface JsonLimits {
  /** Payload size in bytes. */
  readonly maxBytes: number;
  /** Nesting of objects and arrays (the top-level object is depth 1). */
  readonly maxDepth: number;
  /** Values of any kind, containers included. */
  readonly maxNodes: number;
  /** Length of any string or key as sent, in bytes (escapes count as written). */
  readonly maxStringLength: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxBytes: 65_536, maxDepth: 16, maxNodes: 2_048, maxStringLength: 8_192 };

export type JsonRefusal = 'too-large' | 'not-utf8' | 'not-json' | 'too-deep' | 'too-many-values' | 'string-too-long' | 'duplicate-key' | 'number-out-of-range';

/** A parsed value. A `__proto__` key is an own, ordinary property (as JSON.parse makes it), never the prototype. */
export type ParsedJson = null | boolean | number | string | ParsedJson[] | { [key: string]: ParsedJson };

export type ParseResult = { readonly ok: true; readonly value: ParsedJson } | { readonly ok: false; readonly reason: JsonRefusal; readonly detail: string };

/** Longest number literal accepted (a double needs at most 24 significant characters). */
const MAX_NUMBER_CHARS = 64;

/**
 * Parses untrusted JSON (RFC 8259) within limits. A linear scan of the bytes, with no recursion
 * and no allocation, enforces size, depth, value count and string length first, so a deeply
 * nested or huge payload is refused before anything is built; then the engine's JSON.parse builds
 * the value. Refused as well: what JSON.parse would silently accept and downstream code could read
 * two ways — duplicate keys (the scan counts each object's members, JSON.parse keeps one of each
 * key), invalid UTF-8 (JSON.parse would see U+FFFD), numbers beyond double range.
 */
export function parseBoundedJson(payload: Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): ParseResult {
  if (payload.length > limits.maxBytes) return refuse('too-large', `payload is ${payload.length} bytes, more than ${limits.maxBytes}`);
  // RFC 8259 §8.1: JSON exchanged between systems must be UTF-8.
  if (!isUtf8(payload)) return refuse('not-utf8', 'payload is not valid UTF-8');
  const members: number[] = [];
  const scanned = scan(payload, limits, members);
  if (scanned !== null) return scanned;
  let value: ParsedJson;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8')) as ParsedJson;
  } catch (error) {
    return refuse('not-json', `not JSON: ${(error as Error).message}`);
  }
  const checked = check(value, members);
  return checked ?? { ok: true, value };
}

function refuse(reason: JsonRefusal, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

/**
 * The bounds, on bytes. Counts each object's members, for the duplicate check. It never throws and ends on any input; malformed input is left to JSON.parse.
 */
function scan(b: Uint8Array, limits: JsonLimits, members: number[]): ParseResult | null {
  const { maxDepth, maxNodes, maxStringLength } = limits;
  // Per open container: the index of its entry in `members` (objects) or -1 (arrays).
  const open: number[] = [];
  let nodes = 0;
  // True where the next string is a key: after `{` or after `,` inside an object.
  let expectKey = false;
  const n = b.length;
  for (let i = 0; i < n; i++) {
    const c = b[i] as number;
    if (c === 0x22) {
      let j = i + 1;
      while (j < n) {
        const d = b[j] as number;
        if (d === 0x22) break;
        j += d === 0x5c ? 2 : 1;
      }
      if (j - i - 1 > maxStringLength) return refuse('string-too-long', `a string is longer than ${maxStringLength} bytes`);
      if (expectKey) {
        const at = open[open.length - 1] as number;
        if (at >= 0) members[at] = (members[at] as number) + 1;
        expectKey = false;
      } else if (++nodes > maxNodes) return refuse('too-many-values', `more than ${maxNodes} values`);
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++nodes > maxNodes) return refuse('too-many-values', `more than ${maxNodes} values`);
      if (open.length === maxDepth) return refuse('too-deep', `nested deeper than ${maxDepth}`);
      if (c === 0x7b) {
        open.push(members.length);
        members.push(0);
        expectKey = true;
      } else {
        open.push(-1);
        expectKey = false;
      }
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = open.length > 0 && (open[open.length - 1] as number) >= 0;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e) {
      if (++nodes > maxNodes) return refuse('too-many-values', `more than ${maxNodes} values`);
      let j = i + 1;
      while (j < n && isTokenByte(b[j] as number)) j++;
      if (j - i > MAX_NUMBER_CHARS) return refuse('number-out-of-range', `a number has more than ${MAX_NUMBER_CHARS} characters`);
      i = j - 1;
    }
  }
  return null;
}

/** Bytes of a number or literal token: digits, letters, `.`, `+`, `-`. */
function isTokenByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2e || c === 0x2b || c === 0x2d;
}

/**
 * Walks the parsed value: an object keeps one property per distinct key, so fewer keys in all than
 * the scan counted members means a key appeared twice; a number JSON.parse made infinite was out of
 * range. Depth is bounded by the scan, so the recursion is too.
 */
function check(value: ParsedJson, members: readonly number[]): ParseResult | null {
  let keys = 0;
  let infinite = false;
  const walk = (v: ParsedJson): void => {
    if (typeof v === 'number') infinite ||= !Number.isFinite(v);
    else if (Array.isArray(v)) for (const item of v) walk(item);
    else if (typeof v === 'object' && v !== null) {
      for (const key in v) {
        keys++;
        walk(v[key] as ParsedJson);
      }
    }
  };
  walk(value);
  if (infinite) return refuse('number-out-of-range', 'a number is beyond the range of a double');
  let expected = 0;
  for (const count of members) expected += count;
  return keys === expected ? null : refuse('duplicate-key', 'an object has the same key twice');
}
