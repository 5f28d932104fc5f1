import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainVerifier, chainHash, GENESIS_HASH, type ChainBreak } from '../../src/audit/audit-chain.js';
import type { AuditRecord } from '../../src/audit/audit-events.js';
import { canonicalJson, type JsonValue } from '../../src/json.js';

function chain(length: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= length; seq++) {
    const fields = { seq, ts: new Date(1_764_000_000_000 + seq).toISOString(), actor: 'operator:alice', action: 'operator.create', target: `operator:o${seq}`, outcome: 'success', source: '127.0.0.1', details: canonicalJson({ n: seq }), prevHash };
    prevHash = chainHash(fields);
    records.push({ ...fields, hash: prevHash });
  }
  return records;
}

function verify(records: readonly AuditRecord[], head: { seq: number; hash: string } | null): ChainBreak | null {
  const verifier = new ChainVerifier();
  for (const record of records) {
    const failure = verifier.push(record);
    if (failure) return failure;
  }
  return verifier.finish(head);
}

function headOf(records: readonly AuditRecord[]) {
  const last = records.at(-1);
  return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH };
}

describe('audit hash chain', () => {
  it('an untouched chain verifies, including the empty one', () => {
    expect(verify(chain(50), headOf(chain(50)))).toBeNull();
    expect(verify([], { seq: 0, hash: GENESIS_HASH })).toBeNull();
  });

  it('a modified field of any event is found at that event (property)', () => {
    const records = chain(20);
    const fields = ['ts', 'actor', 'action', 'target', 'outcome', 'source', 'details'] as const;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 19 }), fc.constantFrom(...fields), fc.string({ minLength: 1 }), (index, field, value) => {
        const original = records[index] as AuditRecord;
        fc.pre(original[field] !== value);
        const tampered = records.map((r, i) => (i === index ? { ...r, [field]: value } : r));
        expect(verify(tampered, headOf(records))).toMatchObject({ kind: 'modified', seq: index + 1 });
      }),
    );
  });

  it('a deleted event is found where the sequence jumps', () => {
    const records = chain(10);
    expect(verify([...records.slice(0, 4), ...records.slice(5)], headOf(records))).toMatchObject({ kind: 'missing', seq: 5 });
  });

  it('events deleted and renumbered, or a forged chain recomputed from the middle, break the link or the hash', () => {
    const records = chain(10);
    const renumbered = [...records.slice(0, 4), ...records.slice(5).map((r) => ({ ...r, seq: r.seq - 1 }))];
    expect(verify(renumbered, headOf(records))).toMatchObject({ kind: 'modified', seq: 5 });
    // An attacker rewrites event 5 and recomputes its hash, but cannot make event 6 point at it.
    const forged = { ...(records[4] as AuditRecord), actor: 'operator:mallory' };
    const reHashed = { ...forged, hash: chainHash(forged) };
    expect(verify(records.map((r, i) => (i === 4 ? reHashed : r)), headOf(records))).toMatchObject({ kind: 'unlinked', seq: 6 });
  });

  it('two events swapped (with their sequence numbers) break the chain at the first of them', () => {
    const records = chain(10);
    const swapped = [...records];
    swapped[3] = { ...(records[4] as AuditRecord), seq: 4 };
    swapped[4] = { ...(records[3] as AuditRecord), seq: 5 };
    expect(verify(swapped, headOf(records))).toMatchObject({ kind: 'modified', seq: 4 });
  });

  it('truncation (the newest events deleted) is found against the head', () => {
    const records = chain(10);
    expect(verify(records.slice(0, 7), headOf(records))).toMatchObject({ kind: 'truncated', seq: 8 });
    expect(verify([], headOf(records))).toMatchObject({ kind: 'truncated', seq: 1 });
  });

  it('events appended without moving the head, a replaced last event, or a missing head are found', () => {
    const records = chain(10);
    expect(verify(records, headOf(records.slice(0, 8)))).toMatchObject({ kind: 'head-mismatch', seq: 9 });
    expect(verify(records, { seq: 10, hash: 'f'.repeat(64) })).toMatchObject({ kind: 'head-mismatch', seq: 10 });
    expect(verify(records, null)).toMatchObject({ kind: 'head-mismatch' });
  });
});

const json: fc.Arbitrary<JsonValue> = fc.jsonValue() as fc.Arbitrary<JsonValue>;

describe('canonical JSON', () => {
  it('is valid JSON for the same value (property)', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('does not depend on key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), json), (object) => {
        const reversed = Object.fromEntries(Object.entries(object).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(object));
      }),
    );
  });

  it('sorts keys and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 0, y: -1.5 } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":-1.5,"z":0}}');
  });

  it('refuses numbers JSON cannot represent', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow();
    expect(() => canonicalJson({ x: Number.POSITIVE_INFINITY })).toThrow();
  });
});
