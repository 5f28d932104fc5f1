import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FleetwardError,
  MAX_SEALED_PLAINTEXT_BYTES,
  openSealed,
  parseSealedEnvelope,
  parseSealingKey,
  SEALED_ALG,
  sealingPublicKeyOf,
  sealJson,
  sealToRecipient,
  thingSealingInfo,
  type ErrorCode,
  type SealedEnvelope,
} from '../src/index.js';

const backend = generateKeyPairSync('x25519');
const other = generateKeyPairSync('x25519');
const recipient = { keyId: 'k1', publicKey: backend.publicKey };
const keys = new Map<string, KeyObject>([['k1', backend.privateKey]]);
const lookup = (kid: string) => keys.get(kid);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

/** The code a failed open throws; anything but a FleetwardError is a bug. */
function refusal(open: () => unknown): ErrorCode | 'opened' {
  try {
    open();
    return 'opened';
  } catch (error) {
    if (error instanceof FleetwardError) return error.code;
    throw error;
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Flips one bit of the decoded bytes of a field and re-encodes it (canonically). */
function flipped(envelope: SealedEnvelope, field: 'epk' | 'iv' | 'ct', index: number, bit: number): SealedEnvelope {
  const bytes = Buffer.from(envelope[field], 'base64url');
  bytes[index] = (bytes[index] as number) ^ (1 << bit);
  return { ...envelope, [field]: bytes.toString('base64url') };
}

describe('sealed envelopes (X25519 + HKDF-SHA-256 + AES-256-GCM)', () => {
  it('round-trips any bytes, with a fresh ephemeral key and nonce each time, and its JSON form parses back unchanged', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.string({ maxLength: 40 }), (plain, info) => {
        const envelope = sealToRecipient(plain, recipient, info);
        const parsed = parseSealedEnvelope(JSON.parse(JSON.stringify(envelope)));
        expect(parsed).toEqual(envelope);
        expect(openSealed(parsed, lookup, info).equals(Buffer.from(plain))).toBe(true);
      }),
      { numRuns: 100 },
    );
    const a = sealToRecipient(Buffer.from('same'), recipient);
    const b = sealToRecipient(Buffer.from('same'), recipient);
    expect(a.epk).not.toBe(b.epk);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
    expect(Object.keys(a)).toEqual(['v', 'alg', 'kid', 'epk', 'iv', 'ct']);
    expect(a).toMatchObject({ v: 1, alg: SEALED_ALG, kid: 'k1' });
  });

  it('seals to a raw 32-byte public key and to a published sealing key, and never shows the plaintext', () => {
    const published = { alg: SEALED_ALG, keyId: 'k1', publicKey: sealingPublicKeyOf(backend.privateKey) };
    expect(published.publicKey).toBe(sealingPublicKeyOf(backend.publicKey));
    const sealed = sealJson({ ssid: 'home-wifi', rssi: -61 }, parseSealingKey(published), thingSealingInfo('sensor-1'));
    expect(JSON.stringify(sealed)).not.toContain('home-wifi');
    expect(JSON.parse(text(openSealed(sealed.$sealed, lookup, thingSealingInfo('sensor-1'))))).toEqual({ ssid: 'home-wifi', rssi: -61 });
    const raw = Buffer.from(published.publicKey, 'base64url');
    expect(text(openSealed(sealToRecipient(Buffer.from('x'), { keyId: 'k1', publicKey: new Uint8Array(raw) }), lookup))).toBe('x');
  });

  it('fail/another key, an unknown key id, another context: FW_ERR_SEALED_INVALID', () => {
    const envelope = sealToRecipient(Buffer.from('secret'), recipient, thingSealingInfo('sensor-1'));
    expect(refusal(() => openSealed(envelope, () => other.privateKey, thingSealingInfo('sensor-1')))).toBe('FW_ERR_SEALED_INVALID');
    expect(refusal(() => openSealed(envelope, () => undefined, thingSealingInfo('sensor-1')))).toBe('FW_ERR_SEALED_INVALID');
    // A value sealed by one device does not open when another device sends it.
    expect(refusal(() => openSealed(envelope, lookup, thingSealingInfo('sensor-2')))).toBe('FW_ERR_SEALED_INVALID');
    expect(refusal(() => openSealed(envelope, lookup))).toBe('FW_ERR_SEALED_INVALID');
    // A public key where a private one belongs opens nothing either.
    expect(refusal(() => openSealed(envelope, () => backend.publicKey, thingSealingInfo('sensor-1')))).toBe('FW_ERR_SEALED_INVALID');
  });

  it('fail/the key id relabelled, even when the new label maps to the very same private key', () => {
    const envelope = sealToRecipient(Buffer.from('secret'), recipient);
    const both = (kid: string) => (kid === 'k1' || kid === 'k2' ? backend.privateKey : undefined);
    expect(text(openSealed(envelope, both))).toBe('secret');
    expect(refusal(() => openSealed({ ...envelope, kid: 'k2' }, both))).toBe('FW_ERR_SEALED_INVALID');
  });

  it('fail/every bit of the ephemeral key, nonce, ciphertext and tag: each single flip is refused', () => {
    const envelope = sealToRecipient(Buffer.from('{"ssid":"home"}'), recipient);
    for (const field of ['epk', 'iv', 'ct'] as const) {
      const length = Buffer.from(envelope[field], 'base64url').length;
      for (let index = 0; index < length; index++) {
        for (let bit = 0; bit < 8; bit++) {
          expect(refusal(() => openSealed(flipped(envelope, field, index, bit), lookup)), `${field}[${index}] bit ${bit}`).toBe('FW_ERR_SEALED_INVALID');
        }
      }
    }
  });

  it('fail/any single character of kid, epk, iv or ct replaced in the JSON form', () => {
    const envelope = sealToRecipient(Buffer.from('{"ssid":"home"}'), recipient);
    const both = (kid: string) => (kid.length > 0 ? backend.privateKey : undefined);
    fc.assert(
      fc.property(fc.constantFrom('kid', 'epk', 'iv', 'ct'), fc.nat(), fc.constantFrom(...B64URL), (field, at, replacement) => {
        const value = envelope[field as 'kid'];
        const index = at % value.length;
        fc.pre(value[index] !== replacement);
        const tampered = { ...envelope, [field]: value.slice(0, index) + replacement + value.slice(index + 1) };
        // Either the parser refuses it (not canonical base64url, wrong length) or the open does.
        expect(['FW_ERR_VALIDATION', 'FW_ERR_SEALED_INVALID']).toContain(refusal(() => openSealed(parseSealedEnvelope(JSON.parse(JSON.stringify(tampered))), both)));
      }),
      { numRuns: 500 },
    );
  });

  it('fail/low-order and all-zero X25519 points, as the ephemeral key and as the recipient key (RFC 7748 §6.1)', () => {
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    ].map((hex) => Buffer.from(hex, 'hex'));
    const envelope = sealToRecipient(Buffer.from('secret'), recipient);
    for (const point of lowOrder) {
      expect(refusal(() => openSealed({ ...envelope, epk: point.toString('base64url') }, lookup)), point.toString('hex')).toBe('FW_ERR_SEALED_INVALID');
      expect(refusal(() => sealToRecipient(Buffer.from('secret'), { keyId: 'evil', publicKey: point })), point.toString('hex')).toBe('FW_ERR_KEY_REJECTED');
    }
    expect(refusal(() => sealToRecipient(Buffer.from('x'), { keyId: 'k', publicKey: Buffer.alloc(31, 9) }))).toBe('FW_ERR_KEY_REJECTED');
    expect(refusal(() => sealToRecipient(Buffer.from('x'), { keyId: 'k', publicKey: generateKeyPairSync('ed25519').publicKey }))).toBe('FW_ERR_KEY_REJECTED');
    expect(refusal(() => sealToRecipient(Buffer.from('x'), { keyId: 'k', publicKey: backend.privateKey }))).toBe('FW_ERR_KEY_REJECTED');
  });

  it('the parser refuses anything but the exact shape: unknown fields, wrong versions, padding, oversize', () => {
    const envelope = sealToRecipient(Buffer.from('x'), recipient);
    const bad: [string, unknown][] = [
      ['not an object', 'fwseal'],
      ['an array', [envelope]],
      ['null', null],
      ['an unknown field', { ...envelope, extra: 1 }],
      ['a missing field', { ...envelope, ct: undefined }],
      ['version 2', { ...envelope, v: 2 }],
      ['another suite', { ...envelope, alg: 'X25519-HKDF-SHA256-CHACHA20POLY1305' }],
      ['an empty key id', { ...envelope, kid: '' }],
      ['a key id with a separator', { ...envelope, kid: 'k1|x' }],
      ['a key id too long', { ...envelope, kid: 'k'.repeat(65) }],
      ['padded base64', { ...envelope, iv: `${envelope.iv}==` }],
      ['standard base64', { ...envelope, epk: envelope.epk.replace(/[-_]/g, '+').replace(/^./, '+') }],
      ['a short nonce', { ...envelope, iv: envelope.iv.slice(0, 12) }],
      ['a short key', { ...envelope, epk: envelope.epk.slice(0, 40) }],
      ['no tag', { ...envelope, ct: 'AAAA' }],
      ['a number for ct', { ...envelope, ct: 5 }],
      ['too large', { ...envelope, ct: 'A'.repeat(Math.ceil(((MAX_SEALED_PLAINTEXT_BYTES + 16) * 4) / 3) + 4) }],
    ];
    for (const [what, value] of bad) expect(refusal(() => parseSealedEnvelope(value)), what).toBe('FW_ERR_VALIDATION');
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(refusal(() => parseSealedEnvelope(value))).toBe('FW_ERR_VALIDATION');
      }),
    );
    expect(refusal(() => sealToRecipient(Buffer.alloc(MAX_SEALED_PLAINTEXT_BYTES + 1), recipient))).toBe('FW_ERR_PAYLOAD_TOO_LARGE');
    expect(refusal(() => sealToRecipient(Buffer.from('x'), { ...recipient, keyId: 'a b' }))).toBe('FW_ERR_VALIDATION');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [undefined, () => 1, 1n, cycle]) expect(refusal(() => sealJson(value, recipient))).toBe('FW_ERR_VALIDATION');
    for (const key of [{ alg: SEALED_ALG, keyId: 'k1' }, { alg: 'RSA', keyId: 'k1', publicKey: sealingPublicKeyOf(backend.publicKey) }, { alg: SEALED_ALG, keyId: 'k1', publicKey: sealingPublicKeyOf(backend.publicKey), x: 1 }]) {
      expect(refusal(() => parseSealingKey(key))).toBe('FW_ERR_VALIDATION');
    }
  });
});
