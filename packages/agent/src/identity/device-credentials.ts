import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { DeviceKey, DeviceKeyStore } from './device-key.js';
import { readSecretFile, writePrivateFile } from './key-file.js';

/** What the agent presents to the gateway: its key, its certificate and the chain to the issuing CA. */
export interface DeviceCredentials {
  readonly key: DeviceKey;
  /** The device certificate followed by its issuing CA, as TLS presents them. */
  readonly certPem: string;
  readonly certificate: X509Certificate;
}

/**
 * The files in the agent's folder; a manufacturing flow drops a pre-provisioned pair here. The key
 * file holds the key's PEM (software keys) or its label in the token (`device.p11`).
 */
export function credentialFiles(stateDir: string, store: Pick<DeviceKeyStore, 'file'> = { file: 'device.key' }): { readonly key: string; readonly cert: string } {
  return { key: join(stateDir, store.file), cert: join(stateDir, 'device.pem') };
}

/**
 * Loads the device's key and certificate, and refuses credentials that would be wrong to use: a key
 * others can read, a certificate for another thing, one that does not belong to the key, or one that
 * does not chain to the platform's CA. Finishes a renewal a crash interrupted first (see `saveCredentials`).
 * Returns null when the device has no certificate yet (it must provision).
 */
export async function loadCredentials(stateDir: string, store: DeviceKeyStore, thing: string, caPem: string): Promise<DeviceCredentials | null> {
  const files = credentialFiles(stateDir, store);
  await finishInterruptedSave(files);
  if (!(await exists(files.cert))) return null;
  const reference = await readSecretFile(files.key, 'key file');
  let key: DeviceKey;
  try {
    key = await store.load(reference);
  } catch (error) {
    if (error instanceof FleetwardError) throw error;
    throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `${files.key} does not hold a usable device key`, { file: files.key });
  }
  const certPem = await readFile(files.cert, 'utf8');
  return { key, certPem, certificate: checkCertificate(certPem, key.publicKey, thing, caPem) };
}

/** Checks a certificate the platform issued (or that manufacturing installed) before the agent relies on it. */
export function checkCertificate(certPem: string, publicKey: KeyObject, thing: string, caPem: string): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new FleetwardError('FW_ERR_CONFIG_INVALID', 'the device certificate cannot be parsed');
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(certificate.subject)?.[1];
  if (cn !== thing) throw new FleetwardError('FW_ERR_NAME_MISMATCH', `the device certificate is for ${cn ?? 'no thing'}, not for ${thing}`, { certificate: cn ?? null, thing });
  if (!certificate.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKey.export({ type: 'spki', format: 'der' }))) throw new FleetwardError('FW_ERR_KEY_REJECTED', 'the device certificate does not belong to the device key');
  const issuers = caCertificates(caPem);
  if (!issuers.some((ca) => certificate.checkIssued(ca) && certificate.verify(ca.publicKey))) {
    throw new FleetwardError('FW_ERR_CERT_REVOKED', 'the device certificate was not issued by the platform CA the agent trusts', { issuer: certificate.issuer });
  }
  return certificate;
}

/**
 * Replaces key and certificate. Both new files are written in full before either is moved into
 * place, so a crash at any point leaves either the old pair or a pair `loadCredentials` completes.
 */
export async function saveCredentials(stateDir: string, store: DeviceKeyStore, key: DeviceKey, certPem: string): Promise<void> {
  const files = credentialFiles(stateDir, store);
  await writePrivateFile(`${files.key}.new`, key.reference);
  await writePrivateFile(`${files.cert}.new`, certPem);
  await rename(`${files.key}.new`, files.key);
  await rename(`${files.cert}.new`, files.cert);
}

async function finishInterruptedSave(files: { readonly key: string; readonly cert: string }): Promise<void> {
  // The certificate's .new file is written last: once it exists, the new pair was complete.
  if (!(await exists(`${files.cert}.new`))) return;
  if (await exists(`${files.key}.new`)) await rename(`${files.key}.new`, files.key);
  await rename(`${files.cert}.new`, files.cert);
}

export function caCertificates(caPem: string): X509Certificate[] {
  const blocks = caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const certificates = blocks.flatMap((block) => {
    try {
      return [new X509Certificate(block)];
    } catch {
      return [];
    }
  });
  if (certificates.length === 0) throw new FleetwardError('FW_ERR_CONFIG_INVALID', 'the CA file holds no certificate');
  return certificates;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}
