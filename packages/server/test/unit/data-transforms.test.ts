import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FieldCrypto, openFieldEnvelope, RecipientEncryptor } from '../../src/data/field-crypto.js';
import { bucketDateTime, bucketEpochSeconds, bucketOf, roundTo, truncate } from '../../src/data/generalize.js';
import { thrown } from '../helpers/refusals.js';

const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 });
const codePoints = (s: string) => [...s].length;

describe('generalizing transforms (properties)', () => {
  it('round: idempotent, within half a unit of the last kept decimal', () => {
    fc.assert(
      fc.property(finite, fc.integer({ min: 0, max: 10 }), (value, decimals) => {
        const rounded = roundTo(value, decimals);
        expect(roundTo(rounded, decimals)).toBe(rounded);
        expect(Math.abs(rounded - value)).toBeLessThanOrEqual(0.5 * 10 ** -decimals + Math.abs(value) * 1e-15 + 1e-300);
      }),
    );
  });

  it('bucket: the lower bound of the bucket holding the value; idempotent for whole sizes', () => {
    fc.assert(
      fc.property(finite, fc.integer({ min: 1, max: 1_000_000 }), (value, size) => {
        const bucket = bucketOf(value, size);
        expect(bucket).toBeLessThanOrEqual(value);
        expect(value - bucket).toBeLessThan(size * (1 + 1e-9));
        expect(bucketOf(bucket, size)).toBe(bucket);
      }),
    );
    fc.assert(
      fc.property(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), fc.constantFrom(0.1, 0.25, 0.001, 2.5), (value, size) => {
        const bucket = bucketOf(value, size);
        expect(bucket).toBeLessThanOrEqual(value);
        expect(bucket + size).toBeGreaterThan(value);
      }),
    );
  });

  it('time bucket: never later, less than a bucket earlier, on a bucket boundary, idempotent', () => {
    const instant = fc.integer({ min: Date.parse('1971-01-01T00:00:00Z'), max: Date.parse('2100-01-01T00:00:00Z') });
    fc.assert(
      fc.property(instant, fc.constantFrom(60, 900, 3600, 86_400, 7), (ms, seconds) => {
        const text = new Date(ms).toISOString();
        const bucketed = bucketDateTime(text, seconds);
        expect(bucketed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        const at = Date.parse(bucketed);
        expect(at).toBeLessThanOrEqual(ms);
        expect(ms - at).toBeLessThan(seconds * 1000);
        expect((at / 1000) % seconds).toBe(0);
        expect(bucketDateTime(bucketed, seconds)).toBe(bucketed);
        const epoch = Math.floor(ms / 1000);
        const bucketedEpoch = bucketEpochSeconds(epoch, seconds);
        expect(epoch - bucketedEpoch).toBeGreaterThanOrEqual(0);
        expect(epoch - bucketedEpoch).toBeLessThan(seconds);
      }),
    );
  });

  it('time bucket: offsets are converted to UTC first; the text fast path agrees with the clock', () => {
    expect(bucketDateTime('2026-11-25T13:47:12+01:00', 3600)).toBe('2026-11-25T12:00:00Z');
    expect(bucketDateTime('2026-11-25t13:47:12.123456z', 60)).toBe('2026-11-25T13:47:00Z');
    fc.assert(
      fc.property(fc.integer({ min: Date.parse('1971-01-01T00:00:00Z'), max: Date.parse('2100-01-01T00:00:00Z') }), fc.constantFrom(60, 3600, 86_400), fc.constantFrom('', '.5', '.123456789'), (ms, seconds, fraction) => {
        const text = new Date(ms).toISOString().slice(0, 19) + fraction + 'Z';
        expect(bucketDateTime(text, seconds)).toBe(new Date(Math.floor(ms / (seconds * 1000)) * seconds * 1000).toISOString().slice(0, 19) + 'Z');
      }),
    );
  });

  it('truncate: a prefix of at most N code points that never splits a surrogate pair; idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer({ min: 1, max: 30 }), (value, length) => {
        const cut = truncate(value, length);
        expect(value.startsWith(cut)).toBe(true);
        expect(codePoints(cut)).toBe(Math.min(length, codePoints(value)));
        expect(cut).toBe(Buffer.from(cut, 'utf8').toString('utf8'));
        expect(truncate(cut, length)).toBe(cut);
      }),
    );
  });
});

describe('keyed transforms', () => {
  const keys = { pseudonym: randomBytes(32), vault: randomBytes(32) };
  const crypto = new FieldCrypto(keys);

  it('ok/pseudonyms link equal values, differ across values, domains and keys, and reveal nothing', () => {
    const a = crypto.pseudonym('default', 'AA:BB:CC:DD:EE:FF');
    expect(a).toMatch(/^ps_[A-Za-z0-9_-]{22}$/);
    expect(crypto.pseudonym('default', 'AA:BB:CC:DD:EE:FF')).toBe(a);
    expect(crypto.pseudonym('default', 'AA:BB:CC:DD:EE:00')).not.toBe(a);
    expect(crypto.pseudonym('billing', 'AA:BB:CC:DD:EE:FF')).not.toBe(a);
    expect(crypto.pseudonym('default', 42)).not.toBe(crypto.pseudonym('default', '42'));
    expect(new FieldCrypto({ ...keys, pseudonym: randomBytes(32) }).pseudonym('default', 'AA:BB:CC:DD:EE:FF')).not.toBe(a);
  });

  it('ok/tokens are per thing and field; the sealed value opens only under its own token', () => {
    const token = crypto.tokenId('meter-1', 'env', 'owner', 'alice@example.com');
    expect(token).toMatch(/^tk_[A-Za-z0-9_-]{22}$/);
    expect(crypto.tokenId('meter-2', 'env', 'owner', 'alice@example.com')).not.toBe(token);
    const sealed = crypto.sealTokenValue(token, 'alice@example.com');
    expect(sealed).not.toContain('alice');
    expect(crypto.openToken(token, sealed)).toBe('alice@example.com');
    const other = crypto.tokenId('meter-1', 'env', 'owner', 'bob@example.com');
    expect(thrown(() => crypto.openToken(other, sealed))).toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
    expect(thrown(() => new FieldCrypto({ ...keys, vault: randomBytes(32) }).openToken(token, sealed))).toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
  });

  it('ok/field encryption opens only with the recipient key and for the same field', () => {
    const recipient = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const encryptor = new RecipientEncryptor(recipient.publicKey.export({ format: 'pem', type: 'spki' }) as string, 2);
    const envelopes = [1, 2, 3].map((n) => encryptor.encrypt(`"secret-${n}"`, encryptor.associatedData('env/serial')));
    for (const [i, envelope] of envelopes.entries()) {
      expect(envelope).toMatch(/^fwenc1\.[0-9a-f]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
      expect(openFieldEnvelope(envelope, recipient.privateKey, 'env/serial').toString()).toBe(`"secret-${i + 1}"`);
      expect(thrown(() => openFieldEnvelope(envelope, stranger.privateKey, 'env/serial'))).toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
      expect(thrown(() => openFieldEnvelope(envelope, recipient.privateKey, 'env/other'))).toMatchObject({ code: 'FW_ERR_KEY_UNREADABLE' });
    }
    // The ephemeral key rotates every `rotateEvery` values.
    const ephemeral = envelopes.map((e) => e.split('.')[2]);
    expect(ephemeral[0]).toBe(ephemeral[1]);
    expect(ephemeral[2]).not.toBe(ephemeral[0]);
  });

  it('fail/field encryption refuses a key that is not P-256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(thrown(() => new RecipientEncryptor(rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string))).toMatchObject({ code: 'FW_ERR_DATA_CONTRACT_INVALID' });
  });
});
