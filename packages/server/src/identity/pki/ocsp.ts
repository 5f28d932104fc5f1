import { bitString, childrenOf, DerError, enumerated, explicit, generalizedTime, octetString, oid, parseOne, readOid, sequence, Tag, tlv, type Tlv } from './der.js';
import type { Signer } from './signer.js';

/**
 * OCSP (RFC 6960) on Fleetward's own DER codec: request parsing and response building, pure. A
 * general ASN.1 library spent most of a response's time building object trees; this encodes
 * exactly the structures the RFC defines.
 */

/** §4.2.1 OCSPResponseStatus. */
export const OcspStatus = { successful: 0, malformedRequest: 1, internalError: 2, unauthorized: 6 } as const;

export const OcspOid = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  basicResponse: '1.3.6.1.5.5.7.48.1.1',
  nonce: '1.3.6.1.5.5.7.48.1.2',
} as const;

export interface CertId {
  /** The CertID as the client encoded it: the response must repeat it byte for byte. */
  readonly raw: Buffer;
  readonly hashAlgorithm: string;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  /** Lower-case hex without the sign byte, as Fleetward stores serials. */
  readonly serial: string;
}

export interface OcspRequest {
  readonly certIds: readonly CertId[];
  /** The nonce extension, whole, to echo (RFC 8954). */
  readonly nonce: Buffer | null;
}

/** A nonce above this is refused (RFC 8954 §2.1 allows 32 octets; this leaves room for the wrapping). */
const MAX_NONCE_EXTENSION = 64;

/** Parses an OCSPRequest; throws DerError on anything malformed. */
export function parseOcspRequest(der: Buffer, maxCertIds: number): OcspRequest {
  const [tbs] = childrenOf(parseOne(der, Tag.Sequence), 2);
  if (tbs?.tag !== Tag.Sequence) throw new DerError('OCSPRequest without TBSRequest');
  const fields = childrenOf(tbs, 4);
  let index = 0;
  if (fields[index]?.tag === 0xa0) {
    const [version] = childrenOf(fields[index] as Tlv, 1);
    if (version?.tag !== Tag.Integer || !version.content.equals(Buffer.from([0]))) throw new DerError('unsupported OCSP request version');
    index += 1;
  }
  if (fields[index]?.tag === 0xa1) index += 1; // requestorName: not used to decide anything
  const list = fields[index];
  if (list?.tag !== Tag.Sequence) throw new DerError('TBSRequest without requestList');
  const requests = childrenOf(list, maxCertIds);
  if (requests.length === 0) throw new DerError('empty requestList');
  const extensions = fields[index + 1];
  if (extensions !== undefined && extensions.tag !== 0xa2) throw new DerError('unexpected field in TBSRequest');
  if (fields.length > index + 2) throw new DerError('unexpected field in TBSRequest');
  return { certIds: requests.map(certIdOf), nonce: extensions ? nonceOf(extensions) : null };
}

function certIdOf(request: Tlv): CertId {
  if (request.tag !== Tag.Sequence) throw new DerError('Request is not a SEQUENCE');
  const [certId] = childrenOf(request, 2);
  if (certId?.tag !== Tag.Sequence) throw new DerError('Request without CertID');
  const [algorithm, nameHash, keyHash, serial] = childrenOf(certId, 4);
  if (algorithm?.tag !== Tag.Sequence || nameHash?.tag !== Tag.OctetString || keyHash?.tag !== Tag.OctetString || serial?.tag !== Tag.Integer || serial.content.length === 0) throw new DerError('malformed CertID');
  const [identifier] = childrenOf(algorithm, 2);
  if (identifier === undefined) throw new DerError('CertID without hash algorithm');
  return { raw: certId.raw, hashAlgorithm: readOid(identifier), issuerNameHash: nameHash.content, issuerKeyHash: keyHash.content, serial: serial.content.toString('hex').replace(/^(00)+(?=.)/, '') };
}

function nonceOf(wrapper: Tlv): Buffer | null {
  const [list] = childrenOf(wrapper, 1);
  if (list?.tag !== Tag.Sequence) throw new DerError('malformed requestExtensions');
  for (const extension of childrenOf(list, 16)) {
    const [id] = childrenOf(extension, 3);
    if (id === undefined || readOid(id) !== OcspOid.nonce) continue;
    if (extension.raw.length > MAX_NONCE_EXTENSION) throw new DerError('nonce too long');
    return extension.raw;
  }
  return null;
}

export type SingleStatus = { readonly kind: 'good' } | { readonly kind: 'unknown' } | { readonly kind: 'revoked'; readonly at: Date; readonly reason: number };

export interface OcspAnswer {
  /** DER of the responder's Name (ResponderID byName). */
  readonly responderName: Buffer;
  readonly producedAt: Date;
  readonly responses: readonly { readonly certId: CertId; readonly status: SingleStatus; readonly thisUpdate: Date; readonly nextUpdate: Date }[];
  readonly nonce: Buffer | null;
}

/** A successful OCSPResponse carrying a BasicOCSPResponse signed by `signer`. */
export async function buildOcspResponse(answer: OcspAnswer, signer: Signer): Promise<Buffer> {
  const responseData = sequence(
    explicit(1, answer.responderName),
    generalizedTime(answer.producedAt),
    sequence(...answer.responses.map((r) => sequence(r.certId.raw, certStatus(r.status), generalizedTime(r.thisUpdate), explicit(0, generalizedTime(r.nextUpdate))))),
    ...(answer.nonce === null ? [] : [explicit(1, sequence(answer.nonce))]),
  );
  const basic = sequence(responseData, signer.algorithm, bitString(await signer.sign(responseData)));
  return sequence(enumerated(OcspStatus.successful), explicit(0, sequence(oid(OcspOid.basicResponse), octetString(basic))));
}

/** An OCSPResponse with only an error status (§4.2.1: no responseBytes). */
export function ocspStatusOnly(status: number): Buffer {
  return sequence(enumerated(status));
}

/** good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL. */
function certStatus(status: SingleStatus): Buffer {
  if (status.kind === 'good') return Buffer.from([0x80, 0x00]);
  if (status.kind === 'unknown') return Buffer.from([0x82, 0x00]);
  const reason = status.reason === 0 ? [] : [explicit(0, enumerated(status.reason))];
  return tlv(0xa1, Buffer.concat([generalizedTime(status.at), ...reason]));
}
