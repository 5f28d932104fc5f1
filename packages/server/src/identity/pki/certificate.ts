import { createHash } from 'node:crypto';
import { bitString, childrenOf, explicit, integer, parseOne, readBitString, sequence, Tag, time } from './der.js';
import type { Signer } from './signer.js';

/** What a certificate says, already encoded: the issuer side comes from the CA, the rest from the profile. */
export interface CertificateFields {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly subjectPublicKeyInfo: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Buffer[];
}

/** A v3 TBSCertificate (RFC 5280 §4.1). */
export function tbsCertificate(fields: CertificateFields, signatureAlgorithm: Buffer): Buffer {
  return sequence(
    explicit(0, integer(2)),
    integer(fields.serial),
    signatureAlgorithm,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.subjectPublicKeyInfo,
    explicit(3, sequence(...fields.extensions)),
  );
}

/** Signs the fields and returns the certificate's DER. */
export async function signCertificate(fields: CertificateFields, signer: Signer): Promise<Buffer> {
  const tbs = tbsCertificate(fields, signer.algorithm);
  return sequence(tbs, signer.algorithm, bitString(await signer.sign(tbs)));
}

/**
 * Key identifier per RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the
 * subjectPublicKey bits (no SHA-1 anywhere in the device contract).
 */
export function keyIdentifier(subjectPublicKeyInfo: Buffer): Buffer {
  const [, key] = childrenOf(parseOne(subjectPublicKeyInfo, Tag.Sequence), 2);
  if (key === undefined) throw new Error('SubjectPublicKeyInfo without a key');
  return createHash('sha256').update(readBitString(key)).digest().subarray(0, 20);
}

/** SHA-256 of the whole SubjectPublicKeyInfo: the identity of a key pair across certificates. */
export function keyFingerprint(subjectPublicKeyInfo: Buffer): string {
  return createHash('sha256').update(subjectPublicKeyInfo).digest('hex');
}

export function toPem(der: Uint8Array, label: 'CERTIFICATE' | 'X509 CRL' | 'PRIVATE KEY' | 'CERTIFICATE REQUEST' | 'PUBLIC KEY'): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** The DER inside PEM blocks of one label, in order. */
export function fromPem(text: string, labels: readonly string[]): Buffer[] {
  const blocks: Buffer[] = [];
  const pattern = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const match of text.matchAll(pattern)) {
    if (labels.includes(match[1] as string)) blocks.push(Buffer.from((match[2] as string).replace(/\s+/g, ''), 'base64'));
  }
  return blocks;
}
