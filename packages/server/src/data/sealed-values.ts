import type { KeyObject } from 'node:crypto';
import { FleetwardError, openSealed, parseSealedEnvelope, SEALED_KEY, thingSealingInfo } from '@fleetward/protocol';
import { parseBoundedJson, type JsonLimits, type ParsedJson } from './bounded-json.js';
import { refused, type Refused, type Unseal } from './evaluate-publish.js';

/** Where ingest finds the backend's private sealing keys by key id (SealingKeys). */
export interface SealedKeyLookup {
  lookup(keyId: string): KeyObject | undefined;
}

const MARK = Buffer.from(SEALED_KEY);
const ESCAPE = Buffer.from('\\u');

class Rejected extends Error {
  constructor(readonly refused: Refused) {
    super(refused.detail);
  }
}

/**
 * Opens, before the contract sees the payload, every value a device sealed to the backend: an
 * object whose only member is `$sealed` is replaced by the JSON value its envelope holds, opened
 * with the key its key id names and bound to the sending thing (a value sealed on one device does
 * not open when another sends it). One that cannot be opened refuses the whole message. What an
 * envelope holds is parsed within the same bounds as a payload (duplicate keys, depth, size), then
 * the whole opened document is checked against them again, so sealing never widens what ingest
 * accepts. At most `maxSealedValues` envelopes per message: each costs an X25519 agreement.
 * Refusal details never quote what was opened (they may reach logs).
 */
export function sealedValueOpener(keys: SealedKeyLookup, limits: JsonLimits, maxSealedValues: number): Unseal {
  const lookup = (keyId: string) => keys.lookup(keyId);
  return (value, input) => {
    // A payload that never spells the marker, even with escapes, holds nothing sealed: the usual case costs two byte searches.
    if (!input.payload.includes(MARK) && !input.payload.includes(ESCAPE)) return { ok: true, value };
    const info = thingSealingInfo(input.thing);
    let opened = 0;
    const open = (v: ParsedJson): ParsedJson => {
      if (typeof v !== 'object' || v === null) return v;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) v[i] = open(v[i] as ParsedJson);
        return v;
      }
      if (Object.hasOwn(v, SEALED_KEY)) {
        if (Object.keys(v).length !== 1) throw new Rejected(refused('FW_ERR_SEALED_INVALID', 'sealed', `an object with a "${SEALED_KEY}" member may have no other`));
        if (++opened > maxSealedValues) throw new Rejected(refused('FW_ERR_SEALED_INVALID', 'sealed', `more than ${maxSealedValues} sealed values in one message`));
        const plain = openSealed(parseSealedEnvelope(v[SEALED_KEY]), lookup, info);
        const parsed = parseBoundedJson(plain, limits);
        if (!parsed.ok) throw new Rejected(refused('FW_ERR_PAYLOAD_REJECTED', parsed.reason, `a sealed value, once opened, is refused (${parsed.reason})`));
        // What was sealed may itself hold sealed values; the count above bounds the nesting.
        return open(parsed.value);
      }
      for (const key of Object.keys(v)) {
        const next = open(v[key] as ParsedJson);
        // defineProperty, not assignment: a `__proto__` member must stay an own property.
        if (next !== v[key]) Object.defineProperty(v, key, { value: next, writable: true, enumerable: true, configurable: true });
      }
      return v;
    };
    try {
      const result = open(value);
      if (opened === 0) return { ok: true, value: result };
      const whole = parseBoundedJson(Buffer.from(JSON.stringify(result), 'utf8'), limits);
      if (!whole.ok) return { ok: false, refused: refused('FW_ERR_PAYLOAD_REJECTED', whole.reason, `the payload, once its sealed values are opened, is refused (${whole.reason})`) };
      return { ok: true, value: whole.value };
    } catch (error) {
      if (error instanceof Rejected) return { ok: false, refused: error.refused };
      if (error instanceof FleetwardError) return { ok: false, refused: refused('FW_ERR_SEALED_INVALID', 'sealed', error.message) };
      throw error;
    }
  };
}
