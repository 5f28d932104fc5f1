import { FleetwardError } from '../errors.js';

/** What a string field must look like: a length, a pattern, and a check no pattern can express (an IP address). */
export interface StringRule {
  readonly maxLength: number;
  readonly pattern?: RegExp;
  readonly check?: { readonly name: string; readonly test: (value: string) => boolean };
}

/** Inclusive bounds of a number field. */
export interface NumberRange {
  readonly min: number;
  readonly max: number;
}

/** An ISO 8601 UTC instant as `Date.prototype.toISOString` writes it (milliseconds optional). */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** Reads a JSON object message field by field; anything unexpected is FW_ERR_VALIDATION naming the field. */
export class MessageReader {
  readonly #value: Record<string, unknown>;
  readonly #what: string;
  /** Where this object sits in the message (`network.`, `listening[3].`), so a refusal names the full field. */
  readonly #path: string;
  readonly #seen = new Set<string>();

  private constructor(value: Record<string, unknown>, what: string, path: string) {
    this.#value = value;
    this.#what = what;
    this.#path = path;
  }

  /** Parses a payload (UTF-8 JSON object, at most `maxBytes`). */
  static of(payload: Uint8Array, what: string, maxBytes: number): MessageReader {
    if (payload.byteLength > maxBytes) throw invalid(what, '', `is larger than ${maxBytes} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
    } catch {
      throw invalid(what, '', 'is not UTF-8 JSON');
    }
    return MessageReader.fromValue(value, what);
  }

  /** Reads a value already parsed from JSON (a part of a message checked on its own before it is sent). */
  static fromValue(value: unknown, what: string): MessageReader {
    if (!isObject(value)) throw invalid(what, '', 'is not a JSON object');
    return new MessageReader(value, what, '');
  }

  string(field: string, rule: StringRule): string {
    const value = this.#take(field);
    if (!isValidString(value, rule)) throw this.#invalid(field, `must be a string of 1 to ${rule.maxLength} characters${describe(rule)}`);
    return value;
  }

  optionalString(field: string, rule: StringRule): string | undefined {
    return this.#value[field] === undefined ? (this.#seen.add(field), undefined) : this.string(field, rule);
  }

  /** A string or an explicit null ("not known"), never absent. */
  nullableString(field: string, rule: StringRule): string | null {
    return this.#value[field] === null ? (this.#seen.add(field), null) : this.string(field, rule);
  }

  choice<T extends string>(field: string, choices: readonly T[]): T {
    const value = this.#take(field);
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw this.#invalid(field, `must be one of ${choices.join(', ')}`);
    return value as T;
  }

  /** A JSON object left to the receiver to validate further (against a schema it declares). */
  optionalObject(field: string): Record<string, unknown> | undefined {
    const value = this.#take(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.#invalid(field, 'must be a JSON object');
    return value as Record<string, unknown>;
  }

  optionalChoice<T extends string>(field: string, choices: readonly T[]): T | undefined {
    return this.#value[field] === undefined ? (this.#seen.add(field), undefined) : this.choice(field, choices);
  }

  /** A field that must hold exactly this value: a schema version (`v: 1`). */
  literal<T extends string | number>(field: string, expected: T): T {
    if (this.#take(field) !== expected) throw this.#invalid(field, `must be ${JSON.stringify(expected)}`);
    return expected;
  }

  /** A finite number within the range. */
  number(field: string, range: NumberRange): number {
    const value = this.#take(field);
    if (!isInRange(value, range)) throw this.#invalid(field, `must be a number from ${range.min} to ${range.max}`);
    return value;
  }

  /** A number or an explicit null ("not measured"), never absent. */
  nullableNumber(field: string, range: NumberRange): number | null {
    return this.#value[field] === null ? (this.#seen.add(field), null) : this.number(field, range);
  }

  /** A whole number within the range (counters, ports, byte counts: at most Number.MAX_SAFE_INTEGER). */
  integer(field: string, range: NumberRange): number {
    const value = this.#take(field);
    if (!isInRange(value, range) || !Number.isSafeInteger(value)) throw this.#invalid(field, `must be an integer from ${range.min} to ${range.max}`);
    return value;
  }

  optionalInteger(field: string, range: NumberRange): number | undefined {
    return this.#value[field] === undefined ? (this.#seen.add(field), undefined) : this.integer(field, range);
  }

  /** An instant as `toISOString()` writes it; impossible dates (February 30th) are refused, not rolled over. */
  timestamp(field: string): string {
    const value = this.#take(field);
    if (typeof value !== 'string' || !ISO_INSTANT.test(value) || !isRealInstant(value)) throw this.#invalid(field, 'must be an ISO 8601 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.sss]Z)');
    return value;
  }

  /** An array of at most `maxItems` finite numbers within the range. */
  numberArray(field: string, rule: NumberRange & { readonly maxItems: number }): number[] {
    const value = this.#take(field);
    if (!Array.isArray(value) || value.length > rule.maxItems || !value.every((item) => isInRange(item, rule))) {
      throw this.#invalid(field, `must be an array of at most ${rule.maxItems} numbers from ${rule.min} to ${rule.max}`);
    }
    return value;
  }

  stringArray(field: string, rule: StringRule & { readonly maxItems: number }): string[] {
    const value = this.#take(field);
    if (!Array.isArray(value) || value.length > rule.maxItems || !value.every((item) => isValidString(item, rule))) {
      throw this.#invalid(field, `must be an array of at most ${rule.maxItems} strings of 1 to ${rule.maxLength} characters${describe(rule)}`);
    }
    return value;
  }

  /** A nested object, read field by field like the message itself; its unknown fields are refused too. */
  object<T>(field: string, read: (reader: MessageReader) => T): T {
    const value = this.#take(field);
    if (!isObject(value)) throw this.#invalid(field, 'must be an object');
    return this.#readNested(value, `${field}.`, read);
  }

  /** An array of at most `maxItems` objects, each read like a nested object (refusals name `field[i].x`). */
  objectArray<T>(field: string, maxItems: number, read: (reader: MessageReader) => T): T[] {
    const value = this.#take(field);
    if (!Array.isArray(value) || value.length > maxItems) throw this.#invalid(field, `must be an array of at most ${maxItems} objects`);
    return value.map((item: unknown, index) => {
      if (!isObject(item)) throw this.#invalid(`${field}[${index}]`, 'must be an object');
      return this.#readNested(item, `${field}[${index}].`, read);
    });
  }

  /** A flat object of string values (parameters, attestation evidence). */
  optionalStringMap(field: string, limits: { readonly maxEntries: number; readonly maxLength: number }): Record<string, string> | undefined {
    const value = this.#take(field);
    if (value === undefined) return undefined;
    if (!isObject(value)) throw this.#invalid(field, 'must be an object of strings');
    const entries = Object.entries(value);
    if (entries.length > limits.maxEntries || entries.some(([k, v]) => typeof v !== 'string' || k.length > limits.maxLength || v.length > limits.maxLength)) {
      throw this.#invalid(field, `must be an object of at most ${limits.maxEntries} strings of at most ${limits.maxLength} characters`);
    }
    return Object.fromEntries(entries) as Record<string, string>;
  }

  /**
   * An object of at most `maxEntries` fields named like `names`, each read by `read` from the
   * object's own reader (refusals name `field.name`); its names are the receiver's to choose
   * (custom metrics), so only their shape is checked.
   */
  map<T>(field: string, limits: { readonly maxEntries: number; readonly names: RegExp }, read: (entries: MessageReader, name: string) => T): Record<string, T> {
    const value = this.#take(field);
    const names = isObject(value) ? Object.keys(value) : [];
    if (!isObject(value) || names.length > limits.maxEntries || !names.every((name) => limits.names.test(name))) {
      throw this.#invalid(field, `must be an object of at most ${limits.maxEntries} fields named like ${limits.names.source}`);
    }
    return this.#readNested(value, `${field}.`, (entries) => Object.fromEntries(names.map((name) => [name, read(entries, name)])));
  }

  /**
   * A number within the range, or an object whose one key names what its value is
   * (`{"address-list": [...]}`), read by `read`. Anything else is refused naming both shapes.
   */
  numberOrTagged<K extends string, T>(field: string, range: NumberRange, tags: readonly K[], read: (tagged: MessageReader, tag: K) => T): number | T {
    const value = this.#value[field];
    if (typeof value === 'number') return this.number(field, range);
    const keys = isObject(value) ? Object.keys(value) : [];
    const tag = tags.find((t) => t === keys[0]);
    if (tag === undefined || keys.length !== 1) {
      this.#seen.add(field);
      throw this.#invalid(field, `must be a number from ${range.min} to ${range.max}, or an object with one key of ${tags.join(', ')}`);
    }
    return this.object(field, (tagged) => read(tagged, tag));
  }

  /** Refuses fields nobody asked for: a typo must not be silently ignored. */
  done(): void {
    const unknown = Object.keys(this.#value).filter((k) => !this.#seen.has(k));
    if (unknown.length > 0) throw this.#invalid(unknown[0] as string, 'is not a known field');
  }

  #readNested<T>(value: Record<string, unknown>, path: string, read: (reader: MessageReader) => T): T {
    const nested = new MessageReader(value, this.#what, this.#path + path);
    const result = read(nested);
    nested.done();
    return result;
  }

  #take(field: string): unknown {
    this.#seen.add(field);
    return this.#value[field];
  }

  #invalid(field: string, why: string): FleetwardError {
    return invalid(this.#what, this.#path + field, why);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isValidString(value: unknown, rule: StringRule): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= rule.maxLength && (!rule.pattern || rule.pattern.test(value)) && (!rule.check || rule.check.test(value));
}

function describe(rule: StringRule): string {
  return `${rule.pattern ? ` matching ${rule.pattern.source}` : ''}${rule.check ? ` that is ${rule.check.name}` : ''}`;
}

function isInRange(value: unknown, range: NumberRange): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= range.min && value <= range.max;
}

function isRealInstant(value: string): boolean {
  const time = Date.parse(value);
  return !Number.isNaN(time) && new Date(time).toISOString().slice(0, 19) === value.slice(0, 19);
}

function invalid(what: string, field: string, why: string): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', field === '' ? `the ${what} ${why}` : `${what}: ${field} ${why}`, field === '' ? {} : { field });
}
