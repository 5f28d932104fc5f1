import { createPrivateKey, generateKeyPair as generate, randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import type { Config } from '../config/settings.js';
import { toPem } from './pki/certificate.js';

export type CaKeyAlgorithm = Config['ca']['keyAlgorithm'];

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

const CURVES: Readonly<Record<CaKeyAlgorithm, string>> = { 'ECDSA-P256': 'P-256', 'ECDSA-P384': 'P-384' };

const generateEc = promisify((namedCurve: string, done: (error: Error | null, keys: KeyPair) => void) =>
  generate('ec', { namedCurve }, (error, publicKey, privateKey) => done(error, { publicKey, privateKey })),
);

export function generateKeyPair(algorithm: CaKeyAlgorithm): Promise<KeyPair> {
  return generateEc(CURVES[algorithm]);
}

export function exportPkcs8(key: KeyObject): Buffer {
  return key.export({ type: 'pkcs8', format: 'der' });
}

export function importPrivateKey(pkcs8: Buffer): KeyObject {
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

export function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** 16 random bytes with the top bit clear: positive and unique (RFC 5280 §4.1.2.2, CA/B BR 7.1). */
export function randomSerialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f || 0x01;
  return bytes;
}

/** PEM of one or more certificates, one block each. */
export function certificatesToPem(certificates: readonly X509Certificate[]): string {
  return certificates.map((c) => toPem(c.raw, 'CERTIFICATE')).join('');
}

export function daysAfter(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 86_400_000);
}

export function notAfterOf(certificate: X509Certificate): Date {
  return new Date(certificate.validTo);
}

/** Whether `now` lies in the certificate's validity period, both ends included (RFC 5280, as OpenSSL checks it). */
export function validAt(certificate: Pick<X509Certificate, 'validFrom' | 'validTo'>, now: Date): boolean {
  const at = now.getTime();
  return Date.parse(certificate.validFrom) <= at && at <= Date.parse(certificate.validTo);
}
