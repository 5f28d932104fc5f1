import { FleetwardError } from '@fleetward/protocol';
import type { JsonValue } from '../json.js';
import { isClassification, type Classification, CLASSIFICATIONS } from './classification.js';
import { recipientKey } from './field-crypto.js';
import { parseRetention } from './retention.js';
import { FIELD_NAME, isRecord, parseSchema, type SchemaNode } from './schema-subset.js';

/** How a field is minimized before it is stored or delivered. */
export type Transform =
  | { readonly kind: 'keep' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'pseudonymize'; readonly domain: string }
  | { readonly kind: 'tokenize' }
  | { readonly kind: 'round'; readonly decimals: number }
  | { readonly kind: 'bucket'; readonly size: number }
  | { readonly kind: 'time-bucket'; readonly seconds: number }
  | { readonly kind: 'truncate'; readonly length: number }
  | { readonly kind: 'encrypt'; readonly recipientKey: string; readonly kid: string };

export type TransformKind = Transform['kind'];
export const TRANSFORM_KINDS: readonly TransformKind[] = ['keep', 'drop', 'pseudonymize', 'tokenize', 'round', 'bucket', 'time-bucket', 'truncate', 'encrypt'];

/** One classified unit of a payload: a leaf, or an object or array kept as a whole. */
export interface FieldSpec {
  /** Dotted path from the payload root: `location.lat`. */
  readonly path: string;
  readonly classification: Classification;
  readonly purposes: readonly string[];
  readonly retentionSeconds: number;
  readonly transform: Transform;
  readonly schema: SchemaNode;
}

/** A parsed, checked data contract version. */
export interface DataContract {
  readonly name: string;
  readonly version: number;
  /** MQTT topic filter in the thing's namespace: `things/${thing.name}/telemetry/env`. */
  readonly topic: string;
  /** Only things of this type; null: any thing. */
  readonly thingType: string | null;
  readonly description: string;
  readonly schema: SchemaNode;
  readonly fields: readonly FieldSpec[];
  /** The contract document as applied (what `contracts show` prints and files hold). */
  readonly document: { readonly [key: string]: JsonValue };
}

export const CONTRACT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const PURPOSE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
export const THING_VARIABLE = '${thing.name}';
const TIME_UNITS: Readonly<Record<string, number>> = { minute: 60, hour: 3600, day: 86_400 };
const DOCUMENT_KEYS = new Set(['name', 'version', 'topic', 'thingType', 'description', 'schema', 'retention', 'fields']);
const FIELD_KEYS = new Set(['class', 'purposes', 'retention', 'transform']);

/**
 * Parses a contract document (a file of `fleetward data contracts apply`, an API body) into a
 * checked contract, or throws FW_ERR_DATA_CONTRACT_INVALID naming the path of the first problem.
 */
export function parseContract(document: unknown): DataContract {
  if (!isRecord(document)) throw invalid('$', 'a contract is a JSON object');
  for (const key of Object.keys(document)) if (!DOCUMENT_KEYS.has(key)) throw invalid(key, `unknown key (expected ${[...DOCUMENT_KEYS].join(', ')})`);
  const { name, version, topic, thingType = null, description = '' } = document;
  if (typeof name !== 'string' || !CONTRACT_NAME.test(name)) throw invalid('name', 'lower-case letters, digits, ".", "_", "-" (1-64)');
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > 1_000_000) throw invalid('version', 'a whole number from 1');
  if (thingType !== null && (typeof thingType !== 'string' || !CONTRACT_NAME.test(thingType))) throw invalid('thingType', 'a thing type name or null');
  if (typeof description !== 'string' || description.length > 1024) throw invalid('description', 'text up to 1024 characters');
  checkTopicFilter(topic);
  const schema = parseSchema(document.schema, 'schema');
  if (schema.types.length !== 1 || schema.types[0] !== 'object') throw invalid('schema.type', 'the payload must be an object');
  const defaultRetention = document.retention === undefined ? null : parseRetention(document.retention, 'retention');
  if (!isRecord(document.fields) || Object.keys(document.fields).length === 0) throw invalid('fields', 'classify every field: an object of field path → { class, purposes, retention, transform }');
  const fields = Object.entries(document.fields).map(([path, spec]) => parseField(path, spec, schema, defaultRetention));
  checkCoverage(schema, '', new Set(fields.map((f) => f.path)));
  return { name, version, topic, thingType, description, schema, fields, document: document as { readonly [key: string]: JsonValue } };
}

function checkTopicFilter(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256) throw invalid('topic', 'an MQTT topic filter of 1-256 characters');
  if (topic.startsWith('$')) throw invalid('topic', 'topics starting with "$" are reserved for Fleetward');
  const levels = topic.split('/');
  if (levels.length > 16) throw invalid('topic', 'at most 16 levels');
  if (!levels.includes(THING_VARIABLE)) throw invalid('topic', `the filter must be within the thing's namespace: one level must be ${THING_VARIABLE}`);
  levels.forEach((level, i) => {
    if (level === '#' && i !== levels.length - 1) throw invalid('topic', '"#" only as the last level'); // MQTT-4.7.1-1
    if (level !== '#' && level !== '+' && level !== THING_VARIABLE && (/[+#]/.test(level) || level.includes('\0') || level.includes('${'))) throw invalid('topic', `level ${JSON.stringify(level)}: wildcards fill a whole level; the only variable is ${THING_VARIABLE}`);
  });
}

function parseField(path: string, raw: unknown, root: SchemaNode, defaultRetention: number | null): FieldSpec {
  const at = `fields.${path}`;
  const names = path.split('.');
  if (!names.every((n) => FIELD_NAME.test(n))) throw invalid(at, 'a dotted path of field names');
  let schema: SchemaNode | undefined = root;
  for (const name of names) schema = schema?.properties?.[name];
  if (schema === undefined) throw invalid(at, 'no such field in the schema');
  if (!isRecord(raw)) throw invalid(at, 'an object { class, purposes, retention, transform }');
  for (const key of Object.keys(raw)) if (!FIELD_KEYS.has(key)) throw invalid(`${at}.${key}`, `unknown key (expected ${[...FIELD_KEYS].join(', ')})`);
  if (!isClassification(raw.class)) throw invalid(`${at}.class`, `one of ${CLASSIFICATIONS.join(', ')}`);
  const purposes = raw.purposes;
  if (!Array.isArray(purposes) || purposes.length === 0 || purposes.length > 16 || !purposes.every((p): p is string => typeof p === 'string' && PURPOSE_NAME.test(p))) {
    throw invalid(`${at}.purposes`, 'declare 1-16 purposes: lower-case names such as "billing"');
  }
  const retentionSeconds = raw.retention === undefined ? defaultRetention : parseRetention(raw.retention, `${at}.retention`);
  if (retentionSeconds === null) throw invalid(`${at}.retention`, 'retention is required (on the field, or a contract-wide default)');
  const transform = parseTransform(raw.transform, `${at}.transform`, schema);
  if (raw.class === 'secret' && !['drop', 'encrypt', 'tokenize', 'pseudonymize'].includes(transform.kind)) throw invalid(`${at}.transform`, 'a secret field must be dropped, encrypted, tokenized or pseudonymized: it is never kept in clear');
  return { path, classification: raw.class, purposes: [...new Set(purposes)], retentionSeconds, transform, schema };
}

function parseTransform(raw: unknown, at: string, schema: SchemaNode): Transform {
  if (raw === undefined) return { kind: 'keep' };
  const spec = typeof raw === 'string' ? { kind: raw } : raw;
  if (!isRecord(spec) || typeof spec.kind !== 'string' || !(TRANSFORM_KINDS as readonly string[]).includes(spec.kind)) throw invalid(at, `a transform: ${TRANSFORM_KINDS.join(', ')}`);
  const kind = spec.kind as TransformKind;
  const only = (...keys: string[]) => {
    for (const key of Object.keys(spec)) if (key !== 'kind' && !keys.includes(key)) throw invalid(`${at}.${key}`, `not a parameter of ${kind}`);
  };
  const types = schema.types.filter((t) => t !== 'null');
  const needs = (allowed: readonly string[], what: string) => {
    if (types.length === 0 || !types.every((t) => allowed.includes(t))) throw invalid(at, `${kind} applies to ${what} fields`);
  };
  const wholeNumber = (key: string, min: number, max: number): number => {
    const v = spec[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`${at}.${key}`, `a whole number from ${min} to ${max}`);
    return v;
  };
  switch (kind) {
    case 'keep':
    case 'drop':
    case 'tokenize':
      only();
      if (kind === 'tokenize') needs(['string', 'number', 'integer', 'boolean'], 'scalar');
      return { kind };
    case 'pseudonymize': {
      only('domain');
      needs(['string', 'number', 'integer', 'boolean'], 'scalar');
      const domain = spec.domain ?? 'default';
      if (typeof domain !== 'string' || !PURPOSE_NAME.test(domain)) throw invalid(`${at}.domain`, 'a name: values pseudonymized in one domain link to each other');
      return { kind, domain };
    }
    case 'round':
      only('decimals');
      if (!numericDeep(schema)) throw invalid(at, 'round applies to numbers, or objects and arrays of numbers (coordinates)');
      return { kind, decimals: wholeNumber('decimals', 0, 10) };
    case 'bucket': {
      only('size');
      if (!numericDeep(schema)) throw invalid(at, 'bucket applies to numbers, or objects and arrays of numbers');
      const size = spec.size;
      if (typeof size !== 'number' || !Number.isFinite(size) || size <= 0) throw invalid(`${at}.size`, 'a positive number');
      return { kind, size };
    }
    case 'time-bucket': {
      only('seconds', 'unit');
      if (!(types.length === 1 && types[0] === 'string' && schema.dateTime) && !types.every((t) => t === 'integer' || t === 'number')) throw invalid(at, 'time-bucket applies to date-time strings or epoch seconds');
      const unit = spec.unit;
      if (unit !== undefined) {
        if (typeof unit !== 'string' || TIME_UNITS[unit] === undefined || spec.seconds !== undefined) throw invalid(`${at}.unit`, `one of ${Object.keys(TIME_UNITS).join(', ')} (or seconds)`);
        return { kind, seconds: TIME_UNITS[unit] };
      }
      return { kind, seconds: wholeNumber('seconds', 1, 31 * 86_400) };
    }
    case 'truncate':
      only('length');
      needs(['string'], 'string');
      return { kind, length: wholeNumber('length', 1, 4096) };
    case 'encrypt': {
      only('recipientKey');
      if (typeof spec.recipientKey !== 'string') throw invalid(`${at}.recipientKey`, 'the recipient P-256 public key, PEM');
      try {
        return { kind, recipientKey: spec.recipientKey, kid: recipientKey(spec.recipientKey).kid };
      } catch (error) {
        throw invalid(`${at}.recipientKey`, (error as Error).message);
      }
    }
  }
}

/** Numbers, or objects and arrays holding only numbers (a coordinate pair): what round and bucket apply to. */
function numericDeep(schema: SchemaNode): boolean {
  const types = schema.types.filter((t) => t !== 'null');
  if (types.length === 0) return false;
  return types.every((t) => {
    if (t === 'number' || t === 'integer') return true;
    if (t === 'object') return schema.properties !== null && Object.values(schema.properties).every(numericDeep);
    if (t === 'array') return schema.items !== null && numericDeep(schema.items);
    return false;
  });
}

/** Every field in the schema is classified exactly once: no entry inside another, no leaf left out. */
function checkCoverage(node: SchemaNode, prefix: string, paths: ReadonlySet<string>): void {
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (paths.has(path)) {
      for (const other of paths) if (other.startsWith(`${path}.`)) throw invalid(`fields.${other}`, `inside ${path}, which is classified as a whole`);
      continue;
    }
    if (child.properties !== null && Object.keys(child.properties).length > 0 && child.types.length === 1) checkCoverage(child, path, paths);
    else throw invalid(`fields.${path}`, 'this field has no classification: every field needs class, purposes and retention');
  }
}

function invalid(path: string, detail: string): FleetwardError {
  return new FleetwardError('FW_ERR_DATA_CONTRACT_INVALID', `${path}: ${detail}`, { path });
}
