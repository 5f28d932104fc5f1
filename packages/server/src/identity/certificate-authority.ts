import { randomBytes, type X509Certificate } from 'node:crypto';
import { certificatesToPem, daysAfter, generateKeyPair, randomSerialNumber, signingAlgorithm, type CaKeyAlgorithm, type CryptoKey } from './keys.js';

export type CaRole = 'root' | 'issuing';
export type CaStatus = 'active' | 'retired';

export interface CaCertificate {
  readonly id: string;
  readonly role: CaRole;
  readonly status: CaStatus;
  readonly keyAlgorithm: CaKeyAlgorithm;
  readonly certificate: X509Certificate;
}

export interface NewCa {
  readonly ca: CaCertificate;
  readonly privateKey: CryptoKey;
}

interface CaParameters {
  readonly organization: string;
  readonly algorithm: CaKeyAlgorithm;
  readonly validityDays: number;
  readonly now: Date;
}

/** Allowance for devices whose clocks run a little behind. */
export const BACKDATE_MS = 5 * 60_000;

/** A self-signed root: CA, key usage certificate and CRL signing only (RFC 5280 §4.2.1.3, §4.2.1.9). */
export async function createRootCa(params: CaParameters): Promise<NewCa> {
  const { x509, toNode } = await import('./x509.js');
  const id = newCaId();
  const keys = await generateKeyPair(params.algorithm);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: new x509.Name([{ CN: [`${params.organization} Root CA ${id.slice(0, 8)}`] }, { O: [params.organization] }]),
    notBefore: new Date(params.now.getTime() - BACKDATE_MS),
    notAfter: daysAfter(params.now, params.validityDays),
    signingAlgorithm: signingAlgorithm(params.algorithm),
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { ca: { id, role: 'root', status: 'active', keyAlgorithm: params.algorithm, certificate: toNode(certificate) }, privateKey: keys.privateKey };
}

/**
 * The online issuing CA, signed by the root: it may sign end-entity certificates only
 * (path length 0), and never outlives its root.
 */
export async function createIssuingCa(params: CaParameters & { readonly root: CaCertificate; readonly rootKey: CryptoKey }): Promise<NewCa> {
  const { x509, fromNode, toNode } = await import('./x509.js');
  const id = newCaId();
  const keys = await generateKeyPair(params.algorithm);
  const root = fromNode(params.root.certificate);
  const notAfter = new Date(Math.min(daysAfter(params.now, params.validityDays).getTime(), root.notAfter.getTime()));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: new x509.Name([{ CN: [`${params.organization} Issuing CA ${id.slice(0, 8)}`] }, { O: [params.organization] }]),
    issuer: root.subjectName,
    notBefore: new Date(params.now.getTime() - BACKDATE_MS),
    notAfter,
    signingAlgorithm: signingAlgorithm(params.root.keyAlgorithm),
    publicKey: keys.publicKey,
    signingKey: params.rootKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.publicKey),
    ],
  });
  return { ca: { id, role: 'issuing', status: 'active', keyAlgorithm: params.algorithm, certificate: toNode(certificate) }, privateKey: keys.privateKey };
}

/** The chain clients trust: issuing CA first, then the root. */
export function chainPem(issuing: CaCertificate, root: CaCertificate): string {
  return certificatesToPem([issuing.certificate, root.certificate]);
}

function newCaId(): string {
  return randomBytes(16).toString('hex');
}
