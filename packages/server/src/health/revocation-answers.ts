import { createHash, verify, type X509Certificate } from 'node:crypto';
import { childrenOf, expectTag, integer, nullValue, octetString, oid, parseOne, readBitString, readOid, readTlv, sequence, Tag, type Tlv } from '../identity/pki/der.js';
import { subjectOf, subjectPublicKeyInfoOf } from '../identity/pki/certificate-parts.js';
import { OcspOid } from '../identity/pki/ocsp.js';

/**
 * What a relying party reads from the node's CRL and OCSP answers, parsed and signature-checked the
 * way a relying party would (RFC 5280 §5, RFC 6960 §4.2): the canary for revocation checks that a
 * revoked certificate is listed, that the answers are signed by its CA and that they are fresh. Pure.
 */

export interface CrlFacts {
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | null;
  /** Revoked serials, lower-case hex without the sign byte. */
  readonly revoked: ReadonlySet<string>;
  readonly signatureValid: boolean;
}

export interface OcspFacts {
  readonly responseStatus: number;
  readonly certStatus: 'good' | 'revoked' | 'unknown' | null;
  readonly thisUpdate: Date | null;
  readonly nextUpdate: Date | null;
  readonly signatureValid: boolean;
}

const SIGNATURE_HASHES: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.113549.1.1.11': 'sha256',
};

/** Parses a DER CRL and checks its signature with the issuing CA's key. Throws DerError on malformed input. */
export function readCrl(der: Buffer, issuer: X509Certificate): CrlFacts {
  const [tbs, algorithm, signature] = childrenOf(parseOne(der, Tag.Sequence), 3);
  const fields = childrenOf(expectTag(tbs, Tag.Sequence, 'tbsCertList'), 8);
  let i = fields[0]?.tag === Tag.Integer ? 1 : 0; // version (v2) is optional
  i += 2; // signature algorithm, issuer
  const thisUpdate = readTime(fields[i++]);
  const next = fields[i];
  const nextUpdate = next !== undefined && (next.tag === Tag.UtcTime || next.tag === Tag.GeneralizedTime) ? readTime(fields[i++]) : null;
  const revoked = new Set<string>();
  const list = fields[i];
  if (list !== undefined && list.tag === Tag.Sequence) {
    for (const entry of childrenOf(list, 1_000_000)) revoked.add(serialHex(expectTag(childrenOf(entry, 3)[0], Tag.Integer, 'userCertificate')));
  }
  return { thisUpdate, nextUpdate, revoked, signatureValid: signatureValid(tbs as Tlv, algorithm, signature, issuer) };
}

/** An OCSP request (RFC 6960 §4.1.1) for one certificate, CertID hashed with SHA-256. */
export function ocspRequestFor(serialHexValue: string, issuer: X509Certificate): Buffer {
  const [, key] = childrenOf(parseOne(subjectPublicKeyInfoOf(issuer), Tag.Sequence), 2);
  const keyBits = readBitString(key as Tlv);
  const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
  const certId = sequence(sequence(oid(OcspOid.sha256), nullValue()), octetString(sha256(subjectOf(issuer))), octetString(sha256(keyBits)), integer(Buffer.from(serialHexValue.length % 2 === 0 ? serialHexValue : `0${serialHexValue}`, 'hex')));
  return sequence(sequence(sequence(sequence(certId))));
}

/** Parses an OCSP response for one certificate and checks its signature with the issuing CA's key. */
export function readOcspResponse(der: Buffer, issuer: X509Certificate): OcspFacts {
  const [status, bytes] = childrenOf(parseOne(der, Tag.Sequence), 2);
  const responseStatus = expectTag(status, Tag.Enumerated, 'responseStatus').content[0] ?? 255;
  const empty: OcspFacts = { responseStatus, certStatus: null, thisUpdate: null, nextUpdate: null, signatureValid: false };
  if (responseStatus !== 0 || bytes === undefined) return empty;
  const [type, response] = childrenOf(parseOne(bytes.content, Tag.Sequence), 2);
  if (readOid(type as Tlv) !== OcspOid.basicResponse) return empty;
  const [tbs, algorithm, signature] = childrenOf(parseOne(expectTag(response, Tag.OctetString, 'response').content, Tag.Sequence), 4);
  const data = childrenOf(expectTag(tbs, Tag.Sequence, 'tbsResponseData'), 5);
  const responses = data.find((element, index) => index > 0 && element.tag === Tag.Sequence);
  const single = responses === undefined ? undefined : childrenOf(responses, 20)[0];
  if (single === undefined) return { ...empty, signatureValid: signatureValid(tbs as Tlv, algorithm, signature, issuer) };
  const [, certStatus, thisUpdate, ...rest] = childrenOf(single, 5);
  const statusTag = (certStatus as Tlv).tag & 0x1f;
  const nextUpdate = rest.find((element) => element.tag === 0xa0);
  return {
    responseStatus,
    certStatus: statusTag === 0 ? 'good' : statusTag === 1 ? 'revoked' : 'unknown',
    thisUpdate: readTime(thisUpdate),
    nextUpdate: nextUpdate === undefined ? null : readTime(readTlv(nextUpdate.content).element),
    signatureValid: signatureValid(tbs as Tlv, algorithm, signature, issuer),
  };
}

function signatureValid(tbs: Tlv, algorithm: Tlv | undefined, signature: Tlv | undefined, issuer: X509Certificate): boolean {
  try {
    const hash = SIGNATURE_HASHES[readOid(childrenOf(expectTag(algorithm, Tag.Sequence, 'signatureAlgorithm'), 2)[0] as Tlv)];
    if (hash === undefined) return false;
    return verify(hash, tbs.raw, issuer.publicKey, readBitString(expectTag(signature, Tag.BitString, 'signature')));
  } catch {
    return false;
  }
}

function serialHex(element: Tlv): string {
  return element.content.toString('hex').replace(/^(00)+(?=.)/, '');
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function readTime(element: Tlv | undefined): Date {
  if (element === undefined) throw new Error('missing time');
  const text = element.content.toString('ascii');
  const full = element.tag === Tag.UtcTime ? `${Number(text.slice(0, 2)) >= 50 ? '19' : '20'}${text}` : text;
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(full);
  if (match === null) throw new Error(`unreadable time ${text}`);
  const [, y, mo, d, h, mi, s] = match as unknown as [string, string, string, string, string, string, string];
  return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
}
