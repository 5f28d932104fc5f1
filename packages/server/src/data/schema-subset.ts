import { FleetwardError, RFC3339_DATE_TIME } from '@fleetward/protocol';
import type { ParsedJson } from './bounded-json.js';

/**
 * The JSON Schema subset data contracts use (draft 2020-12 keywords, same meaning):
 * `type` (one type or a list; string, number, integer, boolean, object, array, null),
 * `properties`, `required`, `additionalProperties` (only `false`, which is also the default:
 * unknown fields are always refused), `minimum`, `maximum`, `exclusiveMinimum`,
 * `exclusiveMaximum`, `minLength`, `maxLength`, `format: "date-time"`, `enum` (of scalars),
 * `items`, `minItems`, `maxItems` (required on every array), plus `title`, `description`.
 * Any other keyword makes the contract invalid: a keyword silently ignored would be a hole.
 */
export const JSON_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'] as const;
export type JsonType = (typeof JSON_TYPES)[number];

export interface SchemaNode {
  readonly types: readonly JsonType[];
  readonly properties: Readonly<Record<string, SchemaNode>> | null;
  readonly required: readonly string[];
  readonly minimum: number | null;
  readonly maximum: number | null;
  readonly exclusiveMinimum: number | null;
  readonly exclusiveMaximum: number | null;
  readonly minLength: number | null;
  readonly maxLength: number | null;
  readonly dateTime: boolean;
  readonly enumValues: readonly (string | number | boolean | null)[] | null;
  readonly items: SchemaNode | null;
  readonly minItems: number | null;
  readonly maxItems: number | null;
}

/** Deepest schema a contract may declare, and most properties per object. */
export const MAX_SCHEMA_DEPTH = 8;
export const MAX_PROPERTIES = 256;
/** Field names: letters, digits, `_` and `-`; never `__proto__` and the like. */
export const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'format', 'enum', 'items', 'minItems', 'maxItems', 'title', 'description']);

export function parseSchema(value: unknown, path: string, depth = 1): SchemaNode {
  if (depth > MAX_SCHEMA_DEPTH) throw invalid(path, `schemas may nest at most ${MAX_SCHEMA_DEPTH} levels`);
  if (!isRecord(value)) throw invalid(path, 'a schema must be an object');
  for (const key of Object.keys(value)) if (!KEYWORDS.has(key)) throw invalid(`${path}.${key}`, `unsupported JSON Schema keyword (supported: ${[...KEYWORDS].join(', ')})`);
  const rawTypes = value.type;
  const types = (Array.isArray(rawTypes) ? rawTypes : [rawTypes]) as unknown[];
  if (types.length === 0 || !types.every((t): t is JsonType => typeof t === 'string' && (JSON_TYPES as readonly string[]).includes(t))) throw invalid(`${path}.type`, `type is required: one of ${JSON_TYPES.join(', ')} or a list of them`);
  const has = (t: JsonType) => types.includes(t);
  const numberOrNull = (key: string, allowed: boolean): number | null => {
    const v = value[key];
    if (v === undefined) return null;
    if (!allowed) throw invalid(`${path}.${key}`, `${key} does not apply to type ${types.join('|')}`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${path}.${key}`, `${key} must be a number`);
    return v;
  };
  const countOrNull = (key: string, allowed: boolean): number | null => {
    const v = numberOrNull(key, allowed);
    if (v !== null && (!Number.isInteger(v) || v < 0)) throw invalid(`${path}.${key}`, `${key} must be a whole number`);
    return v;
  };
  const numeric = has('number') || has('integer');
  if (value.additionalProperties !== undefined && value.additionalProperties !== false) throw invalid(`${path}.additionalProperties`, 'only false is supported: unknown fields are always refused');
  let properties: Record<string, SchemaNode> | null = null;
  if (value.properties !== undefined || has('object')) {
    if (!has('object')) throw invalid(`${path}.properties`, 'properties needs type object');
    const raw = value.properties ?? {};
    if (!isRecord(raw)) throw invalid(`${path}.properties`, 'properties must be an object');
    const names = Object.keys(raw);
    if (names.length > MAX_PROPERTIES) throw invalid(`${path}.properties`, `at most ${MAX_PROPERTIES} properties`);
    properties = Object.create(null) as Record<string, SchemaNode>;
    for (const name of names) {
      if (!FIELD_NAME.test(name) || name in Object.prototype) throw invalid(`${path}.properties.${name}`, 'field names are letters, digits, "_" and "-", starting with a letter (and not a member of every object, such as "constructor")');
      properties[name] = parseSchema(raw[name], `${path}.properties.${name}`, depth + 1);
    }
  }
  const required = value.required ?? [];
  if (!Array.isArray(required) || !required.every((r): r is string => typeof r === 'string' && properties !== null && properties[r] !== undefined)) throw invalid(`${path}.required`, 'required must list declared properties');
  if (value.format !== undefined && (value.format !== 'date-time' || !has('string'))) throw invalid(`${path}.format`, 'only format "date-time" on strings is supported');
  let enumValues: (string | number | boolean | null)[] | null = null;
  if (value.enum !== undefined) {
    if (!Array.isArray(value.enum) || value.enum.length === 0 || value.enum.length > 256 || !value.enum.every((e) => e === null || ['string', 'number', 'boolean'].includes(typeof e))) throw invalid(`${path}.enum`, 'enum must list 1-256 scalar values');
    enumValues = value.enum as (string | number | boolean | null)[];
  }
  let items: SchemaNode | null = null;
  if (has('array')) {
    if (value.items === undefined) throw invalid(`${path}.items`, 'arrays must declare items');
    if (value.maxItems === undefined) throw invalid(`${path}.maxItems`, 'arrays must declare maxItems (a bound on what a device may send)');
    items = parseSchema(value.items, `${path}.items`, depth + 1);
  } else if (value.items !== undefined) throw invalid(`${path}.items`, 'items needs type array');
  return {
    types,
    properties,
    required: [...new Set(required)],
    minimum: numberOrNull('minimum', numeric),
    maximum: numberOrNull('maximum', numeric),
    exclusiveMinimum: numberOrNull('exclusiveMinimum', numeric),
    exclusiveMaximum: numberOrNull('exclusiveMaximum', numeric),
    minLength: countOrNull('minLength', has('string')),
    maxLength: countOrNull('maxLength', has('string')),
    dateTime: value.format === 'date-time',
    enumValues,
    items,
    minItems: countOrNull('minItems', has('array')),
    maxItems: countOrNull('maxItems', has('array')),
  };
}

/** Why a value failed: `value-too-large` for maxLength/maxItems/maximum, `unknown-field`, or `schema`. */
export type Violation = { readonly reason: 'schema' | 'unknown-field' | 'value-too-large'; readonly path: string; readonly detail: string };

/**
 * A compiled check: null when the value conforms. A violation's path is relative to the value
 * checked (`''`, `.field`, `[2].field`): made only when a check fails, never per field checked.
 */
export type Check = (value: ParsedJson) => Violation | null;

/** Compiles a schema once into a closure tree; messages are then checked without interpretation. */
export function compileSchema(node: SchemaNode): Check {
  const checks: Check[] = [typeCheck(node.types)];
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, enumValues, properties, items, minItems, maxItems } = node;
  if (minimum !== null) checks.push((v) => (typeof v === 'number' && v < minimum ? schema('', `below the minimum ${minimum}`) : null));
  if (exclusiveMinimum !== null) checks.push((v) => (typeof v === 'number' && v <= exclusiveMinimum ? schema('', `not above ${exclusiveMinimum}`) : null));
  if (maximum !== null) checks.push((v) => (typeof v === 'number' && v > maximum ? tooLarge('', `above the maximum ${maximum}`) : null));
  if (exclusiveMaximum !== null) checks.push((v) => (typeof v === 'number' && v >= exclusiveMaximum ? tooLarge('', `not below ${exclusiveMaximum}`) : null));
  if (minLength !== null) checks.push((v) => (typeof v === 'string' && codePoints(v, minLength) < minLength ? schema('', `shorter than ${minLength} characters`) : null));
  if (maxLength !== null) checks.push((v) => (typeof v === 'string' && v.length > maxLength && codePoints(v, maxLength + 1) > maxLength ? tooLarge('', `longer than ${maxLength} characters`) : null));
  if (node.dateTime) checks.push((v) => (typeof v === 'string' && (!RFC3339_DATE_TIME.test(v) || Number.isNaN(Date.parse(v))) ? schema('', 'not an RFC 3339 date-time') : null));
  if (enumValues !== null) {
    const allowed = new Set(enumValues);
    checks.push((v) => (allowed.has(v as string | number | boolean | null) ? null : schema('', 'not one of the allowed values')));
  }
  if (properties !== null) {
    const entries = Object.entries(properties).map(([name, child]) => [name, compileSchema(child)] as const);
    const known = new Map(entries);
    const required = node.required;
    checks.push((v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
      for (const name of required) if (v[name] === undefined) return schema(`.${name}`, 'required field missing');
      for (const key in v) {
        const check = known.get(key);
        if (check === undefined) return { reason: 'unknown-field', path: `.${key.slice(0, 64)}`, detail: 'field not in the contract' };
        const violation = check(v[key] as ParsedJson);
        if (violation !== null) return within(`.${key}`, violation);
      }
      return null;
    });
  }
  if (items !== null) {
    const itemCheck = compileSchema(items);
    checks.push((v) => {
      if (!Array.isArray(v)) return null;
      if (maxItems !== null && v.length > maxItems) return tooLarge('', `more than ${maxItems} items`);
      if (minItems !== null && v.length < minItems) return schema('', `fewer than ${minItems} items`);
      for (let i = 0; i < v.length; i++) {
        const violation = itemCheck(v[i] as ParsedJson);
        if (violation !== null) return within(`[${i}]`, violation);
      }
      return null;
    });
  }
  if (checks.length === 1) return checks[0] as Check;
  return (v) => {
    for (const check of checks) {
      const violation = check(v);
      if (violation !== null) return violation;
    }
    return null;
  };
}

function typeCheck(types: readonly JsonType[]): Check {
  const accepts = types.map((t): ((v: ParsedJson) => boolean) => {
    switch (t) {
      case 'string':
        return (v) => typeof v === 'string';
      case 'number':
        return (v) => typeof v === 'number';
      case 'integer':
        return (v) => typeof v === 'number' && Number.isInteger(v);
      case 'boolean':
        return (v) => typeof v === 'boolean';
      case 'null':
        return (v) => v === null;
      case 'array':
        return (v) => Array.isArray(v);
      case 'object':
        return (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
    }
  });
  const expected = types.join(' or ');
  if (accepts.length === 1) {
    const only = accepts[0] as (v: ParsedJson) => boolean;
    return (v) => (only(v) ? null : schema('', `expected ${expected}`));
  }
  return (v) => (accepts.some((a) => a(v)) ? null : schema('', `expected ${expected}`));
}

/** Code points in `value`, counting no further than `stop` (JSON Schema lengths count code points). */
function codePoints(value: string, stop: number): number {
  let count = 0;
  for (let i = 0; i < value.length && count < stop + 1; i++, count++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const d = value.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return count;
}

function within(prefix: string, violation: Violation): Violation {
  return { ...violation, path: prefix + violation.path };
}

function schema(path: string, detail: string): Violation {
  return { reason: 'schema', path, detail };
}

function tooLarge(path: string, detail: string): Violation {
  return { reason: 'value-too-large', path, detail };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(path: string, detail: string): FleetwardError {
  return new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `${path}: ${detail}`, { path });
}
