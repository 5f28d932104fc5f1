import type { MqttClient } from 'mqtt';
import {
  bucketDateTime,
  bucketEpochSeconds,
  bucketOf,
  FleetwardError,
  isErrorCode,
  parseDeviceContracts,
  RFC3339_DATE_TIME,
  roundTo,
  SEALED_KEY,
  topicFilterMatches,
  Topics,
  truncate,
  type DeviceContract,
  type DeviceTransform,
  type RequestRejected,
} from '@fleetward/protocol';
import { subscribeOne, withTimeout } from '../session/mqtt-requests.js';
import { ReadingSchemas } from '../telemetry/reading-schemas.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The data contracts for the device's own topics (rule 9), asked of the gateway on every connection
 * (`$fw/things/{thing}/contracts/get`). A reading on a contract's topic is checked against its schema
 * here and minimized before it is queued: dropped fields never reach the disk queue or the network,
 * generalized ones leave coarsened. Before the first answer readings go out as they are: the server
 * enforces every contract on ingest whatever the device did.
 */
export class LocalContracts {
  readonly #thing: string;
  #contracts: readonly DeviceContract[] = [];
  #schemas = new ReadingSchemas();
  #waiting: { resolve(contracts: readonly DeviceContract[]): void; reject(error: Error): void } | null = null;

  constructor(thing: string) {
    this.#thing = thing;
  }

  /** The contracts last received, `name@version`, in the order they are matched. */
  get names(): readonly string[] {
    return this.#contracts.map((c) => `${c.name}@${c.version}`);
  }

  /** Asks for the contracts in force on this connection; resolves once they are in use here. */
  async fetch(client: MqttClient, timeoutMs = 10_000): Promise<readonly DeviceContract[]> {
    const answer = new Promise<readonly DeviceContract[]>((resolve, reject) => (this.#waiting = { resolve, reject }));
    for (const filter of [Topics.contracts(this.#thing), Topics.contractsRejected(this.#thing)]) await subscribeOne(client, filter);
    await client.publishAsync(Topics.contractsRequest(this.#thing), '{}', { qos: 1 });
    return withTimeout(answer, timeoutMs, 'the data contracts did not arrive in time');
  }

  /** Handles a message on the answer topics; true when it was one. */
  receive(topic: string, payload: Buffer): boolean {
    if (topic !== Topics.contracts(this.#thing) && topic !== Topics.contractsRejected(this.#thing)) return false;
    const waiting = this.#waiting;
    this.#waiting = null;
    try {
      if (topic === Topics.contractsRejected(this.#thing)) {
        const rejected = JSON.parse(payload.toString()) as RequestRejected;
        throw new FleetwardError(isErrorCode(rejected.code) ? rejected.code : 'FW_ERR_FORBIDDEN', `the data contracts were refused: ${String(rejected.message)}`);
      }
      const answer = parseDeviceContracts(payload);
      if (answer.thing !== this.#thing) throw new FleetwardError('FW_ERR_VALIDATION', `the data contracts are for ${answer.thing}, not this device`, { field: 'thing' });
      // All compiled before any is used: one schema this device cannot compile keeps the previous set whole.
      const schemas = new ReadingSchemas();
      for (const contract of answer.contracts) schemas.declare(schemaName(contract), standardSchema(contract.schema, true));
      this.#schemas = schemas;
      this.#contracts = answer.contracts;
      waiting?.resolve(this.#contracts);
    } catch (error) {
      waiting?.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return true;
  }

  /**
   * The payload to queue for a topic: null when no contract covers it (sent as the application
   * gave it). Otherwise checked and minimized; FW_ERR_PAYLOAD_REJECTED when it breaks the contract.
   */
  apply(topic: string, payload: string | Buffer | object): Buffer | null {
    const contract = this.#contracts.find((c) => topicFilterMatches(c.topic, topic));
    if (contract === undefined) return null;
    const value = Buffer.isBuffer(payload) || typeof payload === 'string' ? parseJson(payload.toString(), contract) : (JSON.parse(JSON.stringify(payload)) as Json);
    this.#schemas.check(schemaName(contract), value);
    const reading = value as { [key: string]: Json };
    for (const { path, transform } of contract.fields) minimizeAt(reading, path.split('.'), transform);
    return Buffer.from(JSON.stringify(reading));
  }
}

function schemaName(contract: DeviceContract): string {
  return `contract ${contract.name}@${contract.version}`;
}

function parseJson(text: string, contract: DeviceContract): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw new FleetwardError('FW_ERR_PAYLOAD_REJECTED', `${schemaName(contract)}: the payload is not JSON`, { schema: schemaName(contract), path: '' });
  }
}

function isSealed(value: Json | undefined): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, SEALED_KEY);
}

/** Applies a field's transform in place; a sealed value (or one inside a sealed value) is left as it is. */
function minimizeAt(reading: { [key: string]: Json }, names: readonly string[], transform: DeviceTransform): void {
  let parent: Json = reading;
  for (const name of names.slice(0, -1)) {
    if (typeof parent !== 'object' || parent === null || Array.isArray(parent) || isSealed(parent)) return;
    parent = parent[name] ?? null;
  }
  if (typeof parent !== 'object' || parent === null || Array.isArray(parent) || isSealed(parent)) return;
  const last = names[names.length - 1] as string;
  const value = parent[last];
  if (value === undefined || isSealed(value)) return;
  if (transform.kind === 'drop') delete parent[last];
  else parent[last] = generalized(value, transform);
}

function generalized(value: Json, t: DeviceTransform): Json {
  switch (t.kind) {
    case 'keep':
    case 'drop':
      return value;
    case 'round':
      return mapNumbers(value, (n) => roundTo(n, t.decimals));
    case 'bucket':
      return mapNumbers(value, (n) => bucketOf(n, t.size));
    case 'time-bucket':
      return typeof value === 'number' ? bucketEpochSeconds(value, t.seconds) : typeof value === 'string' ? bucketDateTime(value, t.seconds) : value;
    case 'truncate':
      return typeof value === 'string' ? truncate(value, t.length) : value;
  }
}

/** Applies `f` to every number in a value (a coordinate object, an array of readings), not inside sealed values. */
function mapNumbers(value: Json, f: (n: number) => number): Json {
  if (typeof value === 'number') return f(value);
  if (Array.isArray(value)) return value.map((item) => mapNumbers(item, f));
  if (value !== null && typeof value === 'object' && !isSealed(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapNumbers(v, f)]));
  return value;
}

const SEALED_VALUE = { type: 'object', required: [SEALED_KEY], properties: { [SEALED_KEY]: {} }, additionalProperties: false };

/**
 * The contract's schema (the data contract subset, docs/rule-09-data.md) as standard JSON Schema
 * for the device's validator, with the subset's meaning spelled out: unknown fields are refused
 * (`additionalProperties: false` is the subset's default), `date-time` is RFC 3339 §5.6, a list of
 * types is one branch per type, and any field may hold a sealed value instead (ingest opens it and
 * checks what it holds).
 */
export function standardSchema(node: Readonly<Record<string, unknown>>, root = false): object {
  const types = (Array.isArray(node.type) ? node.type : [node.type]) as string[];
  const branches = types.map((type) => branchOf(node, type));
  const typed: Record<string, unknown> = branches.length === 1 ? (branches[0] as Record<string, unknown>) : { anyOf: branches };
  if (node.enum !== undefined) typed.enum = node.enum;
  return root ? typed : { anyOf: [typed, SEALED_VALUE] };
}

const KEYWORDS_BY_TYPE: Readonly<Record<string, readonly string[]>> = {
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  integer: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  string: ['minLength', 'maxLength'],
  array: ['minItems', 'maxItems'],
  object: ['required'],
};

function branchOf(node: Readonly<Record<string, unknown>>, type: string): Record<string, unknown> {
  const branch: Record<string, unknown> = { type };
  for (const key of KEYWORDS_BY_TYPE[type] ?? []) if (node[key] !== undefined) branch[key] = node[key];
  if (type === 'string' && node.format === 'date-time') branch.pattern = RFC3339_DATE_TIME.source;
  if (type === 'object') {
    const properties = (node.properties ?? {}) as Readonly<Record<string, Readonly<Record<string, unknown>>>>;
    branch.properties = Object.fromEntries(Object.entries(properties).map(([name, child]) => [name, standardSchema(child)]));
    branch.additionalProperties = false;
  }
  if (type === 'array' && node.items !== undefined) branch.items = standardSchema(node.items as Readonly<Record<string, unknown>>);
  return branch;
}
