import { FleetwardError } from '../errors.js';

/** Reads a JSON object message field by field; anything unexpected is FW_ERR_VALIDATION naming the field. */
export class MessageReader {
  readonly #value: Record<string, unknown>;
  readonly #what: string;
  readonly #seen = new Set<string>();

  private constructor(value: Record<string, unknown>, what: string) {
    this.#value = value;
    this.#what = what;
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
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(what, '', 'is not a JSON object');
    return new MessageReader(value as Record<string, unknown>, what);
  }

  string(field: string, options: { readonly maxLength: number; readonly pattern?: RegExp }): string {
    const value = this.#take(field);
    if (typeof value !== 'string' || value.length === 0 || value.length > options.maxLength || (options.pattern && !options.pattern.test(value))) {
      throw invalid(this.#what, field, `must be a string of 1 to ${options.maxLength} characters${options.pattern ? ` matching ${options.pattern.source}` : ''}`);
    }
    return value;
  }

  optionalString(field: string, options: { readonly maxLength: number; readonly pattern?: RegExp }): string | undefined {
    return this.#value[field] === undefined ? (this.#seen.add(field), undefined) : this.string(field, options);
  }

  optionalChoice<T extends string>(field: string, choices: readonly T[]): T | undefined {
    const value = this.#take(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw invalid(this.#what, field, `must be one of ${choices.join(', ')}`);
    return value as T;
  }

  /** A flat object of string values (parameters, attestation evidence). */
  optionalStringMap(field: string, limits: { readonly maxEntries: number; readonly maxLength: number }): Record<string, string> | undefined {
    const value = this.#take(field);
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(this.#what, field, 'must be an object of strings');
    const entries = Object.entries(value);
    if (entries.length > limits.maxEntries || entries.some(([k, v]) => typeof v !== 'string' || k.length > limits.maxLength || v.length > limits.maxLength)) {
      throw invalid(this.#what, field, `must be an object of at most ${limits.maxEntries} strings of at most ${limits.maxLength} characters`);
    }
    return Object.fromEntries(entries);
  }

  /** Refuses fields nobody asked for: a typo must not be silently ignored. */
  done(): void {
    const unknown = Object.keys(this.#value).filter((k) => !this.#seen.has(k));
    if (unknown.length > 0) throw invalid(this.#what, unknown[0] as string, 'is not a known field');
  }

  #take(field: string): unknown {
    this.#seen.add(field);
    return this.#value[field];
  }
}

function invalid(what: string, field: string, why: string): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', field === '' ? `the ${what} ${why}` : `${what}: ${field} ${why}`, field === '' ? {} : { field });
}
