import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { Config } from '../config/settings.js';
import type { CaDependencies } from './ca-hierarchy.js';
import { allCas } from './ca-repository.js';
import { activateIssuingCa, type IssuingRotation } from './ca-rotation.js';
import { createIssuingCa, issuingCaName, newCaId } from './certificate-authority.js';
import type { IdentityEvents } from './events.js';
import { spkiOf, type CaKeyAlgorithm } from './keys.js';
import { fromPem, keyFingerprint, toPem } from './pki/certificate.js';
import { subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { buildCertificateRequestWith, parseCertificateRequest } from './pki/csr.js';
import { softwareSigner } from './pki/signer.js';

/** The smallest passphrase accepted for an offline root key: it is the key's only protection. */
export const ROOT_PASSPHRASE_MIN_LENGTH = 12;

export interface IssuingRequest {
  readonly id: string;
  readonly csrPem: string;
  /** SHA-256 of the new key's SubjectPublicKeyInfo, to compare on the offline machine. */
  readonly keyFingerprint: string;
}

/**
 * Step 1 of a rotation under an offline root, on the node: the new issuing CA's key is made in
 * custody (sealed or in the token) and a CSR for it is written out. The key waits, unused, until
 * its certificate is imported.
 */
export async function requestIssuingCa(deps: CaDependencies, config: Config['ca'], actor: Actor): Promise<IssuingRequest> {
  const cas = await allCas(deps.store.db);
  const root = cas.find((c) => c.ca.role === 'root' && c.ca.status === 'active');
  if (!root) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy; run `fleetward init`');
  if (root.sealedKey !== null) throw new FleetwardError('FW_ERR_CONFLICT', 'the root key is online: rotate with `fleetward ca rotate-issuing`');
  const id = newCaId();
  const key = await deps.custody.generate(id, config.keyAlgorithm);
  const csrPem = toPem(await buildCertificateRequestWith(issuingCaName(config.name, id), key.subjectPublicKeyInfo, key.signer), 'CERTIFICATE REQUEST');
  const fingerprint = keyFingerprint(key.subjectPublicKeyInfo);
  const now = deps.clock.now().toISOString();
  await deps.store.db.transaction().execute(async (trx) => {
    await trx.insertInto('pending_issuing_cas').values({ id, key_reference: key.reference, key_fingerprint: fingerprint, key_algorithm: config.keyAlgorithm, csr_pem: csrPem, created_by: actor.name, created_at: now }).execute();
    await deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'ca.issuing-request', outcome: 'success', target: `ca:${id}`, details: { keyFingerprint: fingerprint, custody: deps.custody.mode } }]);
  });
  return { id, csrPem, keyFingerprint: fingerprint };
}

export interface OfflineSigning {
  readonly rootKeyPem: string;
  readonly passphrase: string;
  readonly rootCertificatePem: string;
  readonly csrPem: string;
  readonly validityDays: number;
  readonly now: Date;
}

/**
 * Step 2, on the offline machine, with no data folder: the root signs the issuing CA's CSR.
 * Pure: it reads nothing but its arguments, so it runs on an air-gapped host.
 */
export async function signIssuingCa(input: OfflineSigning): Promise<{ certificatePem: string; subject: string; keyFingerprint: string; notAfter: string }> {
  const rootKey = decryptRootKey(input.rootKeyPem, input.passphrase);
  const root = rootCertificateOf(input.rootCertificatePem, spkiOf(createPublicKey(rootKey)));
  if (input.now.getTime() >= new Date(root.validTo).getTime()) throw new FleetwardError('FW_ERR_VALIDATION', `the root certificate expired on ${new Date(root.validTo).toISOString()}`);
  const request = parseCertificateRequest(input.csrPem);
  const algorithm = caAlgorithmOf(request.key.algorithm, request.key.bits);
  const issuing = await createIssuingCa({
    id: newCaId(),
    organization: '',
    algorithm,
    validityDays: input.validityDays,
    now: input.now,
    subjectPublicKeyInfo: request.subjectPublicKeyInfo,
    subject: request.subject,
    root,
    rootSigner: softwareSigner(rootKey),
  });
  return {
    certificatePem: issuing.certificate.toString(),
    subject: issuing.certificate.subject.split('\n').join(', '),
    keyFingerprint: keyFingerprint(request.subjectPublicKeyInfo),
    notAfter: new Date(issuing.certificate.validTo).toISOString(),
  };
}

/**
 * Step 3, on the node: the signed certificate becomes the active issuing CA. It must be for a
 * key this node asked for, and signed by the active root; then the rotation runs as when the root
 * is online.
 */
export async function importIssuingCa(deps: CaDependencies & { readonly events: IdentityEvents }, certificatePem: string, actor: Actor, options: { readonly requestRotation: boolean }): Promise<IssuingRotation> {
  const certificate = onlyCertificate(certificatePem, 'issuing CA certificate');
  const fingerprint = keyFingerprint(subjectPublicKeyInfoOf(certificate));
  const pending = await deps.store.db.selectFrom('pending_issuing_cas').selectAll().where('key_fingerprint', '=', fingerprint).executeTakeFirst();
  if (!pending) throw new FleetwardError('FW_ERR_NOT_FOUND', 'this certificate is not for a key this node requested; run `fleetward ca issuing-request` first', { keyFingerprint: fingerprint });
  const cas = await allCas(deps.store.db);
  const root = cas.find((c) => c.ca.role === 'root' && c.ca.status === 'active');
  const previous = cas.find((c) => c.ca.role === 'issuing' && c.ca.status === 'active');
  if (!root || !previous) throw new FleetwardError('FW_ERR_CA_UNAVAILABLE', 'no active CA hierarchy; run `fleetward init`');
  const now = deps.clock.now();
  if (!certificate.checkIssued(root.ca.certificate) || !certificate.verify(root.ca.certificate.publicKey)) {
    throw new FleetwardError('FW_ERR_VALIDATION', 'the certificate is not signed by the active root CA');
  }
  if (!certificate.ca) throw new FleetwardError('FW_ERR_VALIDATION', 'the certificate is not a CA certificate');
  if (now.getTime() < new Date(certificate.validFrom).getTime() || now.getTime() >= new Date(certificate.validTo).getTime()) {
    throw new FleetwardError('FW_ERR_VALIDATION', `the certificate is not valid now (${new Date(certificate.validFrom).toISOString()} to ${new Date(certificate.validTo).toISOString()})`);
  }
  const next = { id: pending.id, role: 'issuing' as const, status: 'active' as const, keyAlgorithm: pending.key_algorithm as CaKeyAlgorithm, certificate };
  return activateIssuingCa(deps, { next, reference: pending.key_reference, previous: previous.ca.id, now }, actor, options);
}

function decryptRootKey(pem: string, passphrase: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', 'the root key cannot be decrypted: wrong passphrase, or not a PEM private key');
  }
}

/** The root certificate for this key, from a file that may hold the whole chain (ca.pem). */
function rootCertificateOf(pem: string, keySpki: Buffer): X509Certificate {
  const certificates = certificatesOf(pem, 'root certificate');
  const root = certificates.find((c) => subjectPublicKeyInfoOf(c).equals(keySpki));
  if (!root) throw new FleetwardError('FW_ERR_VALIDATION', `the root key belongs to none of the ${certificates.length} certificate(s) given as the root certificate`);
  if (!root.ca || !root.checkIssued(root) || !root.verify(root.publicKey)) throw new FleetwardError('FW_ERR_VALIDATION', 'the certificate of the root key is not a self-signed CA certificate');
  return root;
}

function onlyCertificate(pem: string, what: string): X509Certificate {
  const certificates = certificatesOf(pem, what);
  if (certificates.length !== 1) throw new FleetwardError('FW_ERR_VALIDATION', `expected one PEM certificate as the ${what}, found ${certificates.length}`);
  return certificates[0] as X509Certificate;
}

function certificatesOf(pem: string, what: string): X509Certificate[] {
  try {
    return fromPem(pem, ['CERTIFICATE']).map((der) => new X509Certificate(der));
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `the ${what} cannot be parsed: ${(error as Error).message}`);
  }
}

function caAlgorithmOf(algorithm: string, bits: number): CaKeyAlgorithm {
  if (algorithm === 'ECDSA-P256' || algorithm === 'ECDSA-P384') return algorithm;
  throw new FleetwardError('FW_ERR_KEY_REJECTED', `an issuing CA key must be ECDSA P-256 or P-384, not ${algorithm} (${bits} bits)`);
}
