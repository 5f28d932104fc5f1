import { createHash } from 'node:crypto';
import type * as Asn1jsModule from 'asn1js';
import type * as PkijsModule from 'pkijs';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { SigningCa } from './ca-hierarchy.js';
import { REVOCATION_REASONS, type RevocationReason } from './certificate-repository.js';
import { childrenOf, parseOne, readBitString, Tag } from './pki/der.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';

/** RFC 6960 §4.2.1 OCSPResponseStatus. */
const Status = { successful: 0, malformedRequest: 1, internalError: 2, unauthorized: 6 } as const;

const OID = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  basicResponse: '1.3.6.1.5.5.7.48.1.1',
  nonce: '1.3.6.1.5.5.7.48.1.2',
} as const;

/** How long a good or revoked answer may be cached by relying parties. */
const ANSWER_VALIDITY_MS = 3_600_000;
const MAX_CERT_IDS = 20;

interface CaHashes {
  readonly ca: SigningCa;
  /** issuerNameHash and issuerKeyHash under SHA-1 and SHA-256, hex. */
  readonly hashes: ReadonlyMap<string, { readonly name: string; readonly key: string }>;
}

type Pkijs = typeof PkijsModule;
type Asn1js = typeof Asn1jsModule;

/**
 * Answers OCSP requests (RFC 6960) for the certificates of Fleetward's issuing CAs, signed by the
 * CA that issued them. CertIDs hashed with SHA-1 (what `openssl ocsp` sends by default) and
 * SHA-256 are both understood; a nonce is echoed. Bad input gets `malformedRequest`, never an
 * exception; a serial Fleetward never issued is `unknown`.
 */
export class OcspResponder {
  readonly #deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>> };
  #libraries: Promise<{ pkijs: Pkijs; asn1js: Asn1js }> | undefined;
  #hashes: { readonly source: ReadonlyMap<string, SigningCa>; readonly cas: readonly CaHashes[] } | undefined;

  constructor(deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>> }) {
    this.#deps = deps;
  }

  async respond(requestDer: Buffer): Promise<Buffer> {
    // pkijs is loaded on the first OCSP request, not at start-up.
    this.#libraries ??= Promise.all([import('pkijs'), import('asn1js')]).then(([pkijs, asn1js]) => ({ pkijs, asn1js }));
    const { pkijs, asn1js } = await this.#libraries;
    const statusOnly = (status: number) => Buffer.from(new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: status }) }).toSchema().toBER());
    let request: InstanceType<Pkijs['OCSPRequest']>;
    try {
      const asn1 = asn1js.fromBER(new Uint8Array(requestDer));
      if (asn1.offset === -1 || asn1.offset !== requestDer.length) return statusOnly(Status.malformedRequest);
      request = new pkijs.OCSPRequest({ schema: asn1.result });
    } catch {
      return statusOnly(Status.malformedRequest);
    }
    const certIds = request.tbsRequest.requestList.map((r) => r.reqCert);
    if (certIds.length === 0 || certIds.length > MAX_CERT_IDS) return statusOnly(Status.malformedRequest);

    const cas = this.#caHashes(await this.#deps.cas());
    const matched = certIds.map((id) => ({ id, ca: matchCa(cas, id.hashAlgorithm.algorithmId, hex(id.issuerNameHash.valueBlock.valueHexView), hex(id.issuerKeyHash.valueBlock.valueHexView)), serial: serialHex(id.serialNumber.valueBlock.valueHexView) }));
    const signer = matched.find((m) => m.ca !== null)?.ca;
    // A responder may only answer for CAs it speaks for (RFC 6960 §2.3).
    if (signer === undefined || signer === null) return statusOnly(Status.unauthorized);

    const serials = matched.filter((m) => m.ca === signer).map((m) => m.serial);
    const rows = await this.#deps.store.db.selectFrom('certificates').select(['serial', 'status', 'revoked_at', 'revocation_reason']).where('ca_id', '=', signer.ca.id).where('serial', 'in', serials).execute();
    const now = wholeSeconds(this.#deps.clock.now());
    const responses = matched.map(({ id, ca, serial }) => {
      const row = ca === signer ? rows.find((r) => r.serial === serial) : undefined;
      return new pkijs.SingleResponse({ certID: id, certStatus: certStatus(asn1js, row), thisUpdate: now, nextUpdate: new Date(now.getTime() + ANSWER_VALIDITY_MS) });
    });
    const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.nonce);
    const data = new pkijs.ResponseData({
      responderID: new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(new Uint8Array(subjectOf(signer.ca.certificate))).result }),
      producedAt: now,
      responses,
      ...(nonce && { responseExtensions: [nonce] }),
    });
    data.tbsView = new Uint8Array((data.toSchema(true) as Asn1jsModule.Sequence).toBER());
    const signature = await signer.signer.sign(Buffer.from(data.tbsView));
    const basic = new pkijs.BasicOCSPResponse({
      tbsResponseData: data,
      signatureAlgorithm: new pkijs.AlgorithmIdentifier({ schema: asn1js.fromBER(new Uint8Array(signer.signer.algorithm)).result }),
      signature: new asn1js.BitString({ valueHex: new Uint8Array(signature).buffer }),
    });
    const response = new pkijs.OCSPResponse({
      responseStatus: new asn1js.Enumerated({ value: Status.successful }),
      responseBytes: new pkijs.ResponseBytes({ responseType: OID.basicResponse, response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }) }),
    });
    return Buffer.from(response.toSchema().toBER());
  }

  #caHashes(source: ReadonlyMap<string, SigningCa>): readonly CaHashes[] {
    if (this.#hashes?.source !== source) {
      this.#hashes = {
        source,
        cas: [...source.values()].map((ca) => {
          const name = subjectOf(ca.ca.certificate);
          const [, key] = childrenOf(parseOne(subjectPublicKeyInfoOf(ca.ca.certificate), Tag.Sequence), 2);
          const keyBits = readBitString(key as NonNullable<typeof key>);
          const digest = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('hex');
          return {
            ca,
            hashes: new Map([
              [OID.sha1, { name: digest('sha1', name), key: digest('sha1', keyBits) }],
              [OID.sha256, { name: digest('sha256', name), key: digest('sha256', keyBits) }],
            ]),
          };
        }),
      };
    }
    return this.#hashes.cas;
  }
}

function matchCa(cas: readonly CaHashes[], hashAlgorithm: string, nameHash: string, keyHash: string): SigningCa | null {
  return cas.find((c) => c.hashes.get(hashAlgorithm)?.name === nameHash && c.hashes.get(hashAlgorithm)?.key === keyHash)?.ca ?? null;
}

/** good: [0] IMPLICIT NULL; revoked: [1] RevokedInfo; unknown: [2] IMPLICIT NULL (RFC 6960 §4.2.1). */
function certStatus(asn1js: Asn1js, row: { status: string; revoked_at: string | null; revocation_reason: string | null } | undefined) {
  if (row === undefined) return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
  if (row.status !== 'revoked') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
  const reason = REVOCATION_REASONS[(row.revocation_reason ?? 'unspecified') as RevocationReason];
  return new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 1 },
    value: [
      new asn1js.GeneralizedTime({ valueDate: wholeSeconds(new Date(row.revoked_at ?? 0)) }),
      ...(reason === 0 ? [] : [new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: reason })] })]),
    ],
  });
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Serials are stored as lower-case hex without the sign byte DER may add. */
function serialHex(bytes: Uint8Array): string {
  return hex(bytes).replace(/^(00)+(?=.)/, '');
}

/** GeneralizedTime without fractional seconds, as RFC 5280 profiles it. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
