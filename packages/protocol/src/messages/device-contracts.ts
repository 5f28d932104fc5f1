import { MessageReader } from './validate.js';

/**
 * The data contracts in force for one thing, as the device sees them (`$fw/things/{thing}/contracts`):
 * enough to check a reading and minimize it before it leaves the device. Transforms that need a
 * server key (pseudonymize, tokenize, encrypt) are `keep` here: the server applies them on ingest,
 * and enforces every contract there whatever the device did.
 */
export type DeviceTransform =
  | { readonly kind: 'keep' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'round'; readonly decimals: number }
  | { readonly kind: 'bucket'; readonly size: number }
  | { readonly kind: 'time-bucket'; readonly seconds: number }
  | { readonly kind: 'truncate'; readonly length: number };

export const DEVICE_TRANSFORM_KINDS: readonly DeviceTransform['kind'][] = ['keep', 'drop', 'round', 'bucket', 'time-bucket', 'truncate'];

export interface DeviceContractField {
  /** Dotted path from the payload root: `location.lat`. */
  readonly path: string;
  readonly transform: DeviceTransform;
}

export interface DeviceContract {
  readonly name: string;
  readonly version: number;
  /** MQTT topic filter with the thing's name in place of `${thing.name}`. */
  readonly topic: string;
  /** The contract's JSON Schema, as applied (the data contract subset: docs/rule-09-data.md). */
  readonly schema: Readonly<Record<string, unknown>>;
  readonly fields: readonly DeviceContractField[];
}

export interface DeviceContracts {
  readonly thing: string;
  /** In the order the server picks them: the first whose topic matches is the one it enforces. */
  readonly contracts: readonly DeviceContract[];
}

export const MAX_DEVICE_CONTRACTS_BYTES = 1024 * 1024;
export const MAX_DEVICE_CONTRACTS = 256;
export const MAX_DEVICE_CONTRACT_FIELDS = 1024;

const THING_NAME = /^[A-Za-z0-9:_-]{1,128}$/;
const CONTRACT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const FIELD_PATH = /^[A-Za-z][A-Za-z0-9_-]{0,63}(\.[A-Za-z][A-Za-z0-9_-]{0,63}){0,7}$/;

/** Parses the contracts answer; anything unexpected is FW_ERR_VALIDATION naming the field. */
export function parseDeviceContracts(payload: Uint8Array): DeviceContracts {
  const reader = MessageReader.of(payload, 'contracts answer', MAX_DEVICE_CONTRACTS_BYTES);
  const answer: DeviceContracts = {
    thing: reader.string('thing', { maxLength: 128, pattern: THING_NAME }),
    contracts: reader.objectArray('contracts', MAX_DEVICE_CONTRACTS, (c) => ({
      name: c.string('name', { maxLength: 64, pattern: CONTRACT_NAME }),
      version: c.integer('version', { min: 1, max: 1_000_000 }),
      topic: c.string('topic', { maxLength: 256, check: { name: 'an MQTT topic filter outside "$" topics', test: isTopicFilter } }),
      schema: schemaOf(c),
      fields: c.objectArray('fields', MAX_DEVICE_CONTRACT_FIELDS, (f) => ({
        path: f.string('path', { maxLength: 520, pattern: FIELD_PATH }),
        transform: f.object('transform', transformOf),
      })),
    })),
  };
  reader.done();
  return answer;
}

/** The schema stays a plain object: the agent compiles it with its own validator. */
function schemaOf(reader: MessageReader): Readonly<Record<string, unknown>> {
  // Absent: `object` refuses it, naming the field with its full path.
  return reader.optionalObject('schema') ?? reader.object('schema', () => ({}));
}

function transformOf(t: MessageReader): DeviceTransform {
  const kind = t.choice('kind', DEVICE_TRANSFORM_KINDS);
  switch (kind) {
    case 'keep':
    case 'drop':
      return { kind };
    case 'round':
      return { kind, decimals: t.integer('decimals', { min: 0, max: 10 }) };
    case 'bucket': {
      const size = t.number('size', { min: Number.MIN_VALUE, max: Number.MAX_VALUE });
      return { kind, size };
    }
    case 'time-bucket':
      return { kind, seconds: t.integer('seconds', { min: 1, max: 31 * 86_400 }) };
    case 'truncate':
      return { kind, length: t.integer('length', { min: 1, max: 4096 }) };
  }
}

function isTopicFilter(topic: string): boolean {
  if (topic.startsWith('$') || topic.includes('\0')) return false;
  const levels = topic.split('/');
  // MQTT-4.7.1-1: "#" only as the whole last level; "+" only as a whole level.
  return levels.length <= 16 && levels.every((level, i) => (level === '#' ? i === levels.length - 1 : level === '+' || !/[+#]/.test(level)));
}

/** Whether an MQTT topic filter matches a topic name (MQTT 4.7 wildcards; `#` also matches the parent level). */
export function topicFilterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // MQTT-4.7.1-2
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
