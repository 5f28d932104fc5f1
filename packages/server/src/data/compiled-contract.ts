import type { JsonValue } from '../json.js';
import type { ParsedJson } from './bounded-json.js';
import { classRank, type Classification } from './classification.js';
import { THING_VARIABLE, type DataContract, type FieldSpec } from './contract.js';
import { RecipientEncryptor, type FieldCrypto } from './field-crypto.js';
import { bucketDateTime, bucketEpochSeconds, bucketOf, roundTo, truncate } from './generalize.js';
import { compileSchema, type Check, type Violation } from './schema-subset.js';

/** Fields of one message that share a retention: stored as one row, deleted together. */
export interface StorageGroup {
  /** The highest class among the fields (what the row is counted as). */
  readonly classification: Classification;
  readonly retentionSeconds: number;
  /** Field path → minimized value. */
  readonly fields: { [path: string]: JsonValue };
  /** `fields` as stored (JSON), made once per message on the ingest path. */
  readonly fieldsJson: string;
  /** JSON object: field path → its class. */
  readonly classesJson: string;
}

/** A value to put in the token vault: the token stands in for it everywhere else. */
export interface TokenizedValue {
  readonly token: string;
  readonly field: string;
  readonly value: string | number | boolean;
  readonly retentionSeconds: number;
}

export interface Minimized {
  /** What subscribers receive and what is stored: the payload after every transform. */
  readonly payload: { [key: string]: JsonValue };
  /** The payload as subscribers receive it (JSON). */
  readonly payloadJson: string;
  readonly groups: readonly StorageGroup[];
  readonly tokens: readonly TokenizedValue[];
}

type Apply = (value: ParsedJson, thing: string, tokens: TokenizedValue[]) => JsonValue | undefined;

interface Unit {
  readonly spec: FieldSpec;
  readonly names: readonly string[];
  readonly apply: Apply;
  /** Index of the unit's retention in the contract's list of retentions (its row). */
  readonly group: number;
}

/** One retention of a contract: the fields stored in its row. */
interface Retention {
  readonly seconds: number;
  readonly fields: number;
  /** The classes JSON of a row with every one of its fields (the usual case, so made once). */
  readonly fullClassesJson: string;
}

/** A row being filled while a message is minimized. */
interface RowDraft {
  classification: Classification;
  readonly fields: { [path: string]: JsonValue };
  count: number;
}

/**
 * A contract compiled once: its topic filter, its schema check and one function per field that
 * applies the field's transform. `minimize` then validates and minimizes a message in one pass
 * over its declared fields, with no interpretation of the contract per message.
 */
export class CompiledContract {
  readonly contract: DataContract;
  /** Higher wins when several contracts match one topic: more exact levels, no multi-level wildcard. */
  readonly specificity: number;
  readonly #levels: readonly string[];
  readonly #check: Check;
  readonly #units: readonly Unit[];
  readonly #retentions: readonly Retention[];
  /** Every field at the top level and one retention: a message's only row holds exactly its payload. */
  readonly #payloadIsRow: boolean;

  constructor(contract: DataContract, crypto: FieldCrypto) {
    this.contract = contract;
    this.#levels = contract.topic.split('/');
    this.specificity = this.#levels.filter((l) => l !== '+' && l !== '#').length * 2 - (this.#levels.at(-1) === '#' ? 1 : 0);
    this.#check = compileSchema(contract.schema);
    // Dropped fields are never stored: they belong to no row.
    const seconds = [...new Set(contract.fields.filter((f) => f.transform.kind !== 'drop').map((f) => f.retentionSeconds))];
    this.#units = contract.fields.map((spec) => ({ spec, names: spec.path.split('.'), apply: transformOf(contract, spec, crypto), group: seconds.indexOf(spec.retentionSeconds) }));
    this.#retentions = seconds.map((retention, group) => {
      const members = this.#units.filter((u) => u.group === group && u.spec.transform.kind !== 'drop');
      return { seconds: retention, fields: members.length, fullClassesJson: JSON.stringify(Object.fromEntries(members.map((u) => [u.spec.path, u.spec.classification]))) };
    });
    this.#payloadIsRow = seconds.length === 1 && this.#units.every((u) => u.names.length === 1);
  }

  /** Whether the contract's topic filter, with the variable bound to this thing, matches the topic (MQTT 4.7 wildcards). */
  matches(thing: string, topic: string): boolean {
    const levels = this.#levels;
    let start = 0;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i] as string;
      if (level === '#') return true; // MQTT-4.7.1-2: also matches the parent level
      if (start > topic.length) return false;
      let end = topic.indexOf('/', start);
      if (end === -1) end = topic.length;
      if (level !== '+') {
        const expected = level === THING_VARIABLE ? thing : level;
        if (end - start !== expected.length || !topic.startsWith(expected, start)) return false;
      }
      start = end + 1;
    }
    return start === topic.length + 1;
  }

  /** Validates a parsed payload and minimizes it; a Violation when it does not conform. */
  minimize(value: ParsedJson, thing: string): Minimized | Violation {
    const violation = this.#check(value);
    if (violation !== null) return { ...violation, path: `$${violation.path}` };
    const payload: { [key: string]: JsonValue } = {};
    const rows: (RowDraft | undefined)[] = new Array<RowDraft | undefined>(this.#retentions.length);
    const tokens: TokenizedValue[] = [];
    for (const unit of this.#units) {
      let current: ParsedJson | undefined = value;
      for (const name of unit.names) current = current !== null && typeof current === 'object' && !Array.isArray(current) ? current[name] : undefined;
      if (current === undefined) continue;
      const out = unit.apply(current, thing, tokens);
      if (out === undefined) continue;
      setPath(payload, unit.names, out);
      const { classification, path } = unit.spec;
      const row = rows[unit.group];
      if (row === undefined) rows[unit.group] = { classification, fields: { [path]: out }, count: 1 };
      else {
        if (classRank(classification) > classRank(row.classification)) row.classification = classification;
        row.fields[path] = out;
        row.count += 1;
      }
    }
    const payloadJson = JSON.stringify(payload);
    const groups: StorageGroup[] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (row === undefined) continue;
      const retention = this.#retentions[i] as Retention;
      groups.push({
        classification: row.classification,
        retentionSeconds: retention.seconds,
        fields: row.fields,
        // Same keys in the same order as the payload: the row's JSON is the payload's.
        fieldsJson: this.#payloadIsRow ? payloadJson : JSON.stringify(row.fields),
        classesJson: row.count === retention.fields ? retention.fullClassesJson : this.#classesJson(row),
      });
    }
    return { payload, payloadJson, groups, tokens };
  }

  /** A row missing some of its (optional) fields: the classes of those it has, in field order. */
  #classesJson(row: RowDraft): string {
    const classes: Record<string, Classification> = {};
    for (const unit of this.#units) if (unit.spec.path in row.fields) classes[unit.spec.path] = unit.spec.classification;
    return JSON.stringify(classes);
  }
}

export function isViolation(result: Minimized | Violation): result is Violation {
  return 'reason' in result;
}

function setPath(target: { [key: string]: JsonValue }, names: readonly string[], value: JsonValue): void {
  let node = target;
  for (let i = 0; i < names.length - 1; i++) {
    const name = names[i] as string;
    node = (node[name] ??= {}) as { [key: string]: JsonValue };
  }
  node[names[names.length - 1] as string] = value;
}

/** Applies `f` to every number in a value (a coordinate object, an array of readings). */
function mapNumbers(value: ParsedJson, f: (n: number) => number): JsonValue {
  if (typeof value === 'number') return f(value);
  if (Array.isArray(value)) return value.map((item) => mapNumbers(item, f));
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const key in value) out[key] = mapNumbers(value[key] as ParsedJson, f);
    return out;
  }
  return value;
}

function transformOf(contract: DataContract, spec: FieldSpec, crypto: FieldCrypto): Apply {
  const t = spec.transform;
  const scalar = (v: ParsedJson) => v as string | number | boolean;
  switch (t.kind) {
    case 'keep':
      return (v) => v;
    case 'drop':
      return () => undefined;
    case 'pseudonymize':
      return (v) => (v === null ? null : crypto.pseudonym(t.domain, scalar(v)));
    case 'tokenize':
      return (v, thing, tokens) => {
        if (v === null) return null;
        const token = crypto.tokenId(thing, contract.name, spec.path, scalar(v));
        tokens.push({ token, field: spec.path, value: scalar(v), retentionSeconds: spec.retentionSeconds });
        return token;
      };
    case 'round':
      return (v) => mapNumbers(v, (n) => roundTo(n, t.decimals));
    case 'bucket':
      return (v) => mapNumbers(v, (n) => bucketOf(n, t.size));
    case 'time-bucket':
      return (v) => (typeof v === 'number' ? bucketEpochSeconds(v, t.seconds) : typeof v === 'string' ? bucketDateTime(v, t.seconds) : v);
    case 'truncate':
      return (v) => (typeof v === 'string' ? truncate(v, t.length) : v);
    case 'encrypt': {
      const encryptor = new RecipientEncryptor(t.recipientKey);
      const associatedData = encryptor.associatedData(`${contract.name}/${spec.path}`);
      return (v) => (v === null ? null : encryptor.encrypt(JSON.stringify(v), associatedData));
    }
  }
}
