import type { X509Certificate } from 'node:crypto';
import { keyIdentifier, type CertificateFields } from './pki/certificate.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, extendedKeyUsage, keyUsage, subjectAltName, subjectKeyIdentifier } from './pki/extensions.js';
import { distinguishedName } from './pki/names.js';
import { Oid } from './pki/oids.js';

/** Who a certificate is for: a thing, or a provisioning template (claim certificates). */
export type CertificateKind = 'device' | 'claim';

/** The URLs relying parties use to check a certificate: CRL of its CA, OCSP, the CA chain. */
export interface PkiUrls {
  readonly base: string;
}

export function crlUrl(base: string, caId: string): string {
  return `${base}/pki/crl/${caId}`;
}

/**
 * The device certificate profile of one issuing CA. The parts that are the same for every
 * certificate it issues are encoded once; `fields` adds what is particular to one certificate.
 * Profile (issue 3): CN = thing name, SAN URI `urn:fleetward:thing:<name>` (claim certificates:
 * `urn:fleetward:claim:<template>`), clientAuth only, digitalSignature only, not a CA, AKI/SKI,
 * CRL distribution point and OCSP/CA issuers access.
 */
export class IssuanceProfile {
  readonly caId: string;
  readonly #issuer: Buffer;
  readonly #common: readonly Buffer[];

  constructor(caId: string, issuing: X509Certificate, urls: PkiUrls) {
    this.caId = caId;
    this.#issuer = subjectOf(issuing);
    this.#common = [
      basicConstraints(false),
      keyUsage(['digitalSignature']),
      extendedKeyUsage([Oid.clientAuth]),
      authorityKeyIdentifier(keyIdentifier(subjectPublicKeyInfoOf(issuing))),
      crlDistributionPoints([crlUrl(urls.base, caId)]),
      authorityInfoAccess({ ocsp: `${urls.base}/pki/ocsp`, caIssuers: `${urls.base}/pki/ca.pem` }),
    ];
  }

  fields(request: { readonly serial: Buffer; readonly kind: CertificateKind; readonly name: string; readonly subjectPublicKeyInfo: Buffer; readonly notBefore: Date; readonly notAfter: Date }): CertificateFields {
    return {
      serial: request.serial,
      issuer: this.#issuer,
      subject: distinguishedName([['CN', request.name]]),
      subjectPublicKeyInfo: request.subjectPublicKeyInfo,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      extensions: [...this.#common, subjectAltName([{ uri: subjectUri(request.kind, request.name) }]), subjectKeyIdentifier(keyIdentifier(request.subjectPublicKeyInfo))],
    };
  }
}

export function subjectUri(kind: CertificateKind, name: string): string {
  return kind === 'device' ? `urn:fleetward:thing:${name}` : `urn:fleetward:claim:${name}`;
}
