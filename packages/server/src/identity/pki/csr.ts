import { sign, verify, type KeyObject } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { bitString, childrenOf, DerError, expectTag, integer, parseOne, readBitString, readOid, sequence, Tag, type Tlv } from './der.js';
import { checkDeviceKey, type DeviceKey } from './key-policy.js';
import { commonNameOf, distinguishedName } from './names.js';
import { Oid } from './oids.js';
import { ecdsaAlgorithm, hashForCurve, rsaAlgorithm, type Signer } from './signer.js';
import { fromPem } from './certificate.js';

/** A CSR (PKCS#10, RFC 2986) that parsed and whose signature proves possession of its key. */
export interface CertificateRequest {
  /** The subject Name, DER. */
  readonly subject: Buffer;
  readonly subjectCommonName: string | null;
  readonly subjectPublicKeyInfo: Buffer;
  readonly key: DeviceKey;
}

/** Largest CSR accepted, before any parsing. */
export const MAX_CSR_BYTES = 16_384;

/** Signature algorithms accepted on a CSR: no SHA-1 anywhere, no MD5. */
const SIGNATURE_HASHES: Readonly<Record<string, 'sha256' | 'sha384' | 'sha512' | null>> = {
  [Oid.ecdsaWithSha256]: 'sha256',
  [Oid.ecdsaWithSha384]: 'sha384',
  [Oid.ecdsaWithSha512]: 'sha512',
  [Oid.sha256WithRsa]: 'sha256',
  [Oid.sha384WithRsa]: 'sha384',
  [Oid.sha512WithRsa]: 'sha512',
  [Oid.ed25519]: null,
};

/**
 * Parses a CSR from PEM or DER and checks it: structure, accepted key, accepted signature
 * algorithm matching the key, and a valid signature. Refusals are FW_ERR_CSR_MALFORMED,
 * FW_ERR_KEY_REJECTED or FW_ERR_CSR_SIGNATURE; nothing else about the request is trusted (the
 * profile, not the CSR, decides what the certificate says).
 */
export function parseCertificateRequest(input: Buffer | string): CertificateRequest {
  const der = typeof input === 'string' || looksLikePem(input) ? fromPemOnce(input.toString()) : input;
  if (der.length > MAX_CSR_BYTES) throw malformed(`larger than ${MAX_CSR_BYTES} bytes`);
  let parts: { info: Tlv; subject: Tlv; spki: Tlv; algorithm: string; signature: Buffer };
  try {
    parts = structure(der);
  } catch (error) {
    if (error instanceof DerError) throw malformed(error.message);
    throw error;
  }
  const key = checkDeviceKey(parts.spki.raw);
  if (!(parts.algorithm in SIGNATURE_HASHES)) {
    throw new FleetwardError('FW_ERR_KEY_REJECTED', `the CSR is signed with an algorithm that is not accepted (${parts.algorithm}); SHA-1 and MD5 are refused`, { algorithm: parts.algorithm });
  }
  const hash = SIGNATURE_HASHES[parts.algorithm] ?? null;
  const family = parts.algorithm === Oid.ed25519 ? 'Ed25519' : parts.algorithm.startsWith('1.2.840.10045') ? 'EC' : 'RSA';
  const keyFamily = key.algorithm === 'Ed25519' ? 'Ed25519' : key.algorithm === 'RSA' ? 'RSA' : 'EC';
  if (family !== keyFamily) throw new FleetwardError('FW_ERR_CSR_SIGNATURE', 'the CSR signature algorithm does not match its key');
  let valid = false;
  try {
    valid = verify(hash, parts.info.raw, key.publicKey, parts.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new FleetwardError('FW_ERR_CSR_SIGNATURE', 'the CSR signature does not verify: the request was altered or not signed by its key');
  let subjectCommonName: string | null;
  try {
    subjectCommonName = commonNameOf(parts.subject);
  } catch (error) {
    throw malformed(error instanceof Error ? error.message : 'bad subject');
  }
  return { subject: Buffer.from(parts.subject.raw), subjectCommonName, subjectPublicKeyInfo: Buffer.from(parts.spki.raw), key };
}

function structure(der: Buffer): { info: Tlv; subject: Tlv; spki: Tlv; algorithm: string; signature: Buffer } {
  const [info, algorithm, signature, ...extra] = childrenOf(parseOne(der, Tag.Sequence), 3);
  if (extra.length > 0 || info === undefined || algorithm === undefined || signature === undefined) throw new DerError('CertificationRequest must have three parts');
  const [version, subject, spki, attributes] = childrenOf(expectTag(info, Tag.Sequence, 'CertificationRequestInfo'), 4);
  if (expectTag(version, Tag.Integer, 'version').content.toString('hex') !== '00') throw new DerError('CSR version must be 1 (0)');
  expectTag(subject, Tag.Sequence, 'subject');
  const [spkiAlgorithm] = childrenOf(expectTag(spki, Tag.Sequence, 'subjectPKInfo'), 2);
  expectTag(spkiAlgorithm, Tag.Sequence, 'subjectPKInfo algorithm');
  if (attributes !== undefined) expectTag(attributes, 0xa0, 'attributes');
  const [algorithmOid] = childrenOf(expectTag(algorithm, Tag.Sequence, 'signatureAlgorithm'), 2);
  return { info, subject: subject as Tlv, spki: spki as Tlv, algorithm: readOid(expectTag(algorithmOid, Tag.Oid, 'signature algorithm')), signature: readBitString(signature) };
}

function looksLikePem(input: Buffer): boolean {
  return input.subarray(0, 64).toString('latin1').includes('-----BEGIN');
}

function fromPemOnce(text: string): Buffer {
  if (text.length > MAX_CSR_BYTES * 2) throw malformed('larger than the size limit');
  const blocks = fromPem(text, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  if (blocks.length !== 1) throw malformed(blocks.length === 0 ? 'no CERTIFICATE REQUEST PEM block' : 'more than one CSR');
  return blocks[0] as Buffer;
}

function malformed(why: string): FleetwardError {
  return new FleetwardError('FW_ERR_CSR_MALFORMED', `the CSR cannot be parsed: ${why}`);
}

/** Builds a CSR with any signer (a CA key in custody asking an offline root for its certificate). */
export async function buildCertificateRequestWith(subject: Buffer, subjectPublicKeyInfo: Buffer, signer: Signer): Promise<Buffer> {
  const info = sequence(integer(0), subject, subjectPublicKeyInfo, Buffer.from([0xa0, 0x00]));
  return sequence(info, signer.algorithm, bitString(await signer.sign(info)));
}

/**
 * Builds a CSR for a key pair: what a device does to enrol (the agent), and what tests use.
 * Subject CN only; the certificate's content is decided by the issuing profile.
 */
export function buildCertificateRequest(commonName: string, keys: { readonly publicKey: KeyObject; readonly privateKey: KeyObject }): Buffer {
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const info = sequence(integer(0), distinguishedName([['CN', commonName]]), spki, Buffer.from([0xa0, 0x00]));
  const type = keys.privateKey.asymmetricKeyType;
  const hash = type === 'ed25519' ? null : hashForCurve(keys.privateKey.asymmetricKeyDetails?.namedCurve);
  const algorithm = type === 'ed25519' ? sequence(Buffer.from([0x06, 0x03, 0x2b, 0x65, 0x70])) : type === 'rsa' ? rsaAlgorithm() : ecdsaAlgorithm(hash ?? 'sha256');
  return sequence(info, algorithm, bitString(sign(hash, info, keys.privateKey)));
}
