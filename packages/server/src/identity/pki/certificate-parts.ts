import type { X509Certificate } from 'node:crypto';
import { childrenOf, DerError, parseOne, readOid, Tag } from './der.js';

/** The raw parts of a parsed certificate that issuing from it needs. */
function tbsParts(certificate: X509Certificate) {
  const [tbs] = childrenOf(parseOne(certificate.raw, Tag.Sequence), 3);
  if (tbs === undefined) throw new DerError('certificate without TBSCertificate');
  const fields = childrenOf(tbs, 10);
  // version [0] is present in every v3 certificate Fleetward handles.
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  const spki = fields[offset + 5];
  if (subject === undefined || spki === undefined) throw new DerError('TBSCertificate too short');
  return { subject: Buffer.from(subject.raw), spki: Buffer.from(spki.raw) };
}

export function subjectOf(certificate: X509Certificate): Buffer {
  return tbsParts(certificate).subject;
}

export function subjectPublicKeyInfoOf(certificate: X509Certificate): Buffer {
  return tbsParts(certificate).spki;
}

/** The OID of the algorithm the issuer signed the certificate with. */
export function signatureAlgorithmOf(certificate: X509Certificate): string {
  const [, algorithm] = childrenOf(parseOne(certificate.raw, Tag.Sequence), 3);
  const [identifier] = algorithm === undefined ? [] : childrenOf(algorithm, 2);
  if (identifier === undefined) throw new DerError('certificate without signatureAlgorithm');
  return readOid(identifier);
}
