export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * Canonical JSON (RFC 8785 for the values Fleetward writes): object keys sorted by UTF-16 code
 * units, no whitespace, ECMAScript number formatting. Equal values always give equal text, so the
 * text can be hashed and signed.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item: JsonValue) => canonicalJson(item)).join(',')}]`;
  const object = value as { readonly [key: string]: JsonValue };
  const keys = Object.keys(object)
    .filter((key) => object[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key] as JsonValue)}`).join(',')}}`;
}

/** A value that came from JSON.parse (a validated request body) is JSON; this says so to the compiler. */
export function fromParsedJson(value: Readonly<Record<string, unknown>>): Readonly<Record<string, JsonValue>> {
  return value as Readonly<Record<string, JsonValue>>;
}
