import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DerError, explicit, integer, octetString, oid, sequence } from '../../src/identity/pki/der.js';
import { buildOcspResponse, OcspOid, ocspStatusOnly, parseOcspRequest } from '../../src/identity/pki/ocsp.js';
import { softwareSigner } from '../../src/identity/pki/signer.js';

/** An OCSPRequest as OpenSSL sends it: one SHA-1 CertID and a 16-byte nonce. */
function request(serial: Buffer, nonce = Buffer.alloc(16, 7), certIds = 1): Buffer {
  const certId = sequence(sequence(oid(OcspOid.sha1), Buffer.from([0x05, 0x00])), octetString(Buffer.alloc(20, 1)), octetString(Buffer.alloc(20, 2)), integer(serial));
  const nonceExtension = sequence(oid(OcspOid.nonce), octetString(octetString(nonce)));
  const list = sequence(...Array.from({ length: certIds }, () => sequence(certId)));
  return sequence(sequence(list, explicit(2, sequence(nonceExtension))));
}

describe('OCSP codec', () => {
  it('parses a CertID and the nonce; serials lose the sign byte, as stored', () => {
    const parsed = parseOcspRequest(request(Buffer.from('00ff01', 'hex')), 20);
    expect(parsed.certIds).toHaveLength(1);
    expect(parsed.certIds[0]).toMatchObject({ hashAlgorithm: OcspOid.sha1, serial: 'ff01' });
    expect(parsed.nonce?.toString('hex')).toContain('07'.repeat(16));
  });

  it('refuses too many CertIDs, an empty list and an oversized nonce', () => {
    expect(() => parseOcspRequest(request(Buffer.from([1]), undefined, 21), 20)).toThrow(DerError);
    expect(() => parseOcspRequest(sequence(sequence(sequence())), 20)).toThrow(DerError);
    expect(() => parseOcspRequest(request(Buffer.from([1]), Buffer.alloc(100, 1)), 20)).toThrow(DerError);
  });

  it('any mutation of a valid request parses or fails with DerError, never anything else', () => {
    const valid = request(Buffer.from('1234', 'hex'));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(valid.length), (edits, cut) => {
        const mutated = Buffer.from(valid);
        for (const [at, value] of edits) mutated[at] = value;
        for (const input of [mutated, mutated.subarray(0, cut)]) {
          try {
            parseOcspRequest(input, 20);
          } catch (error) {
            expect(error).toBeInstanceOf(DerError);
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('random bytes fail with DerError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseOcspRequest(Buffer.from(bytes), 20);
        } catch (error) {
          expect(error).toBeInstanceOf(DerError);
        }
      }),
    );
  });

  it('error statuses are bare OCSPResponses; a signed response repeats the CertID bytes and the nonce', async () => {
    expect(ocspStatusOnly(1).toString('hex')).toBe('30030a0101');
    const parsed = parseOcspRequest(request(Buffer.from([5])), 20);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = new Date('2026-11-25T12:00:00Z');
    const der = await buildOcspResponse({ responderName: sequence(), producedAt: now, responses: [{ certId: parsed.certIds[0] as never, status: { kind: 'revoked', at: now, reason: 1 }, thisUpdate: now, nextUpdate: now }], nonce: parsed.nonce }, softwareSigner(privateKey));
    expect(der.includes((parsed.certIds[0] as { raw: Buffer }).raw)).toBe(true);
    expect(der.includes(parsed.nonce as Buffer)).toBe(true);
    // revoked [1] { GeneralizedTime, [0] { ENUMERATED keyCompromise } }
    expect(der.toString('hex')).toContain('a11618' + '0f' + Buffer.from('20261125120000Z').toString('hex') + 'a0030a0101');
  });
});
