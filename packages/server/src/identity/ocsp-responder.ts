import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { SigningCa } from './ca-hierarchy.js';
import { REVOCATION_REASONS, type RevocationReason } from './certificate-repository.js';
import { childrenOf, parseOne, readBitString, Tag } from './pki/der.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { buildOcspResponse, OcspOid, ocspStatusOnly, OcspStatus, parseOcspRequest, type CertId, type OcspRequest, type SingleStatus } from './pki/ocsp.js';

/** How long a good or revoked answer may be cached by relying parties. */
const ANSWER_VALIDITY_MS = 3_600_000;
const MAX_CERT_IDS = 20;

interface CaHashes {
  readonly ca: SigningCa;
  /** issuerNameHash and issuerKeyHash under SHA-1 and SHA-256, hex. */
  readonly hashes: ReadonlyMap<string, { readonly name: string; readonly key: string }>;
}

/**
 * Answers OCSP requests (RFC 6960) for the certificates of Fleetward's issuing CAs, signed by the
 * CA that issued them. CertIDs hashed with SHA-1 (what `openssl ocsp` sends by default) and
 * SHA-256 are both understood; a nonce is echoed. Bad input gets `malformedRequest`, never an
 * exception; a serial Fleetward never issued is `unknown`.
 */
export class OcspResponder {
  readonly #deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>> };
  #hashes: { readonly source: ReadonlyMap<string, SigningCa>; readonly cas: readonly CaHashes[] } | undefined;

  constructor(deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>> }) {
    this.#deps = deps;
  }

  async respond(requestDer: Buffer): Promise<Buffer> {
    let request: OcspRequest;
    try {
      request = parseOcspRequest(requestDer, MAX_CERT_IDS);
    } catch {
      return ocspStatusOnly(OcspStatus.malformedRequest);
    }
    const cas = this.#caHashes(await this.#deps.cas());
    const matched = request.certIds.map((certId) => ({ certId, ca: matchCa(cas, certId) }));
    const signer = matched.find((m) => m.ca !== null)?.ca;
    // A responder may only answer for CAs it speaks for (RFC 6960 §2.3).
    if (signer === undefined || signer === null) return ocspStatusOnly(OcspStatus.unauthorized);

    const serials = matched.filter((m) => m.ca === signer).map((m) => m.certId.serial);
    const rows = await this.#deps.store.db.selectFrom('certificates').select(['serial', 'status', 'revoked_at', 'revocation_reason']).where('ca_id', '=', signer.ca.id).where('serial', 'in', serials).execute();
    const now = wholeSeconds(this.#deps.clock.now());
    const nextUpdate = new Date(now.getTime() + ANSWER_VALIDITY_MS);
    const responses = matched.map(({ certId, ca }) => ({ certId, status: statusOf(ca === signer ? rows.find((r) => r.serial === certId.serial) : undefined), thisUpdate: now, nextUpdate }));
    return buildOcspResponse({ responderName: subjectOf(signer.ca.certificate), producedAt: now, responses, nonce: request.nonce }, signer.signer);
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
              [OcspOid.sha1, { name: digest('sha1', name), key: digest('sha1', keyBits) }],
              [OcspOid.sha256, { name: digest('sha256', name), key: digest('sha256', keyBits) }],
            ]),
          };
        }),
      };
    }
    return this.#hashes.cas;
  }
}

function matchCa(cas: readonly CaHashes[], certId: CertId): SigningCa | null {
  const name = certId.issuerNameHash.toString('hex');
  const key = certId.issuerKeyHash.toString('hex');
  return cas.find((c) => c.hashes.get(certId.hashAlgorithm)?.name === name && c.hashes.get(certId.hashAlgorithm)?.key === key)?.ca ?? null;
}

function statusOf(row: { status: string; revoked_at: string | null; revocation_reason: string | null } | undefined): SingleStatus {
  if (row === undefined) return { kind: 'unknown' };
  if (row.status !== 'revoked') return { kind: 'good' };
  return { kind: 'revoked', at: wholeSeconds(new Date(row.revoked_at ?? 0)), reason: REVOCATION_REASONS[(row.revocation_reason ?? 'unspecified') as RevocationReason] };
}

/** GeneralizedTime without fractional seconds, as RFC 5280 profiles it. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
