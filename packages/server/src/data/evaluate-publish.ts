import { errorCodes, type ErrorCode, type ReasonCode } from '@fleetward/protocol';
import type { JsonValue } from '../json.js';
import { parseBoundedJson, type JsonLimits, type JsonRefusal, type ParsedJson } from './bounded-json.js';
import { isViolation, type CompiledContract, type StorageGroup, type TokenizedValue } from './compiled-contract.js';

/** What to do with a topic no contract covers. */
export const UNMATCHED_MODES = ['refuse', 'pass-unclassified'] as const;
export type UnmatchedMode = (typeof UNMATCHED_MODES)[number];

/** One application PUBLISH, as the gateway saw it. */
export interface PublishInput {
  readonly thing: string;
  readonly thingType: string | null;
  readonly topic: string;
  readonly payload: Buffer;
  /** When the gateway received it (ms since the epoch). */
  readonly receivedAtMs: number;
}

export type RefusalReason = JsonRefusal | 'no-contract' | 'schema' | 'unknown-field' | 'value-too-large' | 'backlog' | 'sealed';

export interface Refused {
  readonly verdict: 'refuse';
  /** MQTT 5 PUBACK/PUBREC reason code (0x99 payload format invalid; 0x87 no contract; 0x97 backlog). */
  readonly reasonCode: ReasonCode;
  readonly code: ErrorCode;
  readonly reason: RefusalReason;
  /** Says what is wrong without echoing the payload. */
  readonly detail: string;
}

/** Opens the values a device sealed to the backend (sealed-values.ts), before the contract sees the payload. */
export type Unseal = (value: ParsedJson, input: PublishInput) => { readonly ok: true; readonly value: ParsedJson } | { readonly ok: false; readonly refused: Refused };

export type Evaluation =
  | { readonly verdict: 'accept'; readonly contract: CompiledContract; readonly payload: { [key: string]: JsonValue }; readonly payloadJson: string; readonly groups: readonly StorageGroup[]; readonly tokens: readonly TokenizedValue[] }
  /** No contract, and unmatched topics pass (reported as a finding): delivered as sent, never stored. */
  | { readonly verdict: 'unclassified' }
  | Refused;

/** The contracts in force, most specific first. */
export class ContractCatalog {
  readonly contracts: readonly CompiledContract[];

  constructor(contracts: readonly CompiledContract[]) {
    this.contracts = [...contracts].sort((a, b) => b.specificity - a.specificity || a.contract.name.localeCompare(b.contract.name));
  }

  /** The contract for a thing's topic: of the thing's type or of any type, the most specific filter. */
  find(thing: string, thingType: string | null, topic: string): CompiledContract | null {
    for (const compiled of this.contracts) {
      const type = compiled.contract.thingType;
      if ((type === null || type === thingType) && compiled.matches(thing, topic)) return compiled;
    }
    return null;
  }
}

export function refused(code: ErrorCode, reason: RefusalReason, detail: string): Refused {
  return { verdict: 'refuse', reasonCode: errorCodes[code].mqtt, code, reason, detail };
}

/** One object for every unclassified publish: nothing in it differs between them. */
const UNCLASSIFIED: Evaluation = Object.freeze({ verdict: 'unclassified' });

/** Decides one publish: which contract, whether the payload conforms, and its minimized form. Pure. */
export function evaluatePublish(catalog: ContractCatalog, input: PublishInput, options: { readonly unmatched: UnmatchedMode; readonly limits: JsonLimits; readonly unseal?: Unseal }): Evaluation {
  const compiled = catalog.find(input.thing, input.thingType, input.topic);
  if (compiled === null) {
    return options.unmatched === 'pass-unclassified' ? UNCLASSIFIED : refused('FW_ERR_DATA_NO_CONTRACT', 'no-contract', `no data contract covers topic ${input.topic}`);
  }
  const parsed = parseBoundedJson(input.payload, options.limits);
  if (!parsed.ok) return refused('FW_ERR_PAYLOAD_REJECTED', parsed.reason, parsed.detail);
  const opened = options.unseal === undefined ? parsed : options.unseal(parsed.value, input);
  if (!opened.ok) return opened.refused;
  const result = compiled.minimize(opened.value, input.thing);
  if (isViolation(result)) return refused('FW_ERR_PAYLOAD_REJECTED', result.reason, `${result.path}: ${result.detail} (contract ${compiled.contract.name} v${compiled.contract.version})`);
  return { verdict: 'accept', contract: compiled, ...result };
}
