import { randomBytes, X509Certificate } from 'node:crypto';
import { keyIdentifier, signCertificate } from './pki/certificate.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { authorityKeyIdentifier, basicConstraints, keyUsage, subjectKeyIdentifier } from './pki/extensions.js';
import type { DeviceKeyAlgorithm } from './pki/key-policy.js';
import { distinguishedName } from './pki/names.js';
import type { Signer } from './pki/signer.js';
import { certificatesToPem, daysAfter, randomSerialNumber, type CaKeyAlgorithm } from './keys.js';

/** Fleetward's own root and issuing CAs, and third-party CAs registered for just-in-time registration. */
export type CaRole = 'root' | 'issuing' | 'external';
export type CaStatus = 'active' | 'retired';

export interface CaCertificate {
  readonly id: string;
  readonly role: CaRole;
  readonly status: CaStatus;
  /** Fleetward's CAs use CaKeyAlgorithm; a registered third-party CA may use any accepted key. */
  readonly keyAlgorithm: CaKeyAlgorithm | DeviceKeyAlgorithm;
  readonly certificate: X509Certificate;
}

interface CaParameters {
  readonly id: string;
  readonly organization: string;
  readonly algorithm: CaKeyAlgorithm;
  readonly validityDays: number;
  readonly now: Date;
}

/** Allowance for devices whose clocks run a little behind. */
export const BACKDATE_MS = 5 * 60_000;

/** A self-signed root: CA, key usage certificate and CRL signing only (RFC 5280 §4.2.1.3, §4.2.1.9). */
export async function createRootCa(params: CaParameters & { readonly key: { readonly subjectPublicKeyInfo: Buffer; readonly signer: Signer } }): Promise<CaCertificate> {
  const spki = params.key.subjectPublicKeyInfo;
  const name = distinguishedName([['CN', `${params.organization} Root CA ${params.id.slice(0, 8)}`], ['O', params.organization]]);
  const der = await signCertificate(
    {
      serial: randomSerialNumber(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(params.now.getTime() - BACKDATE_MS),
      notAfter: daysAfter(params.now, params.validityDays),
      extensions: [basicConstraints(true, 1), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(spki))],
    },
    params.key.signer,
  );
  return { id: params.id, role: 'root', status: 'active', keyAlgorithm: params.algorithm, certificate: new X509Certificate(der) };
}

/**
 * An issuing CA signed by the root: it signs end-entity certificates, CRLs and OCSP responses
 * only (path length 0), and never outlives its root. The root may sign here or, kept offline,
 * on another machine (`fleetward ca sign-issuing`).
 */
export async function createIssuingCa(params: CaParameters & { readonly subjectPublicKeyInfo: Buffer; readonly root: X509Certificate; readonly rootSigner: Signer; readonly subject?: Buffer }): Promise<CaCertificate> {
  const spki = params.subjectPublicKeyInfo;
  const rootNotAfter = new Date(params.root.validTo).getTime();
  const der = await signCertificate(
    {
      serial: randomSerialNumber(),
      issuer: subjectOf(params.root),
      subject: params.subject ?? issuingCaName(params.organization, params.id),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(params.now.getTime() - BACKDATE_MS),
      notAfter: new Date(Math.min(daysAfter(params.now, params.validityDays).getTime(), rootNotAfter)),
      extensions: [
        basicConstraints(true, 0),
        keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign']),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(keyIdentifier(subjectPublicKeyInfoOf(params.root))),
      ],
    },
    params.rootSigner,
  );
  return { id: params.id, role: 'issuing', status: 'active', keyAlgorithm: params.algorithm, certificate: new X509Certificate(der) };
}

export function issuingCaName(organization: string, id: string): Buffer {
  return distinguishedName([['CN', `${organization} Issuing CA ${id.slice(0, 8)}`], ['O', organization]]);
}

/** The chain clients trust: issuing CAs first, then the root. */
export function chainPem(issuing: readonly CaCertificate[], root: CaCertificate): string {
  return certificatesToPem([...issuing.map((c) => c.certificate), root.certificate]);
}

export function newCaId(): string {
  return randomBytes(16).toString('hex');
}
