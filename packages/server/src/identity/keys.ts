import { randomBytes, webcrypto, type X509Certificate } from 'node:crypto';
import type { Config } from '../config/settings.js';

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type CaKeyAlgorithm = Config['ca']['keyAlgorithm'];

interface AlgorithmParameters {
  readonly generate: webcrypto.EcKeyGenParams;
  readonly sign: webcrypto.EcdsaParams;
}

const ALGORITHMS: Readonly<Record<CaKeyAlgorithm, AlgorithmParameters>> = {
  'ECDSA-P256': { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  'ECDSA-P384': { generate: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } },
};

export function signingAlgorithm(algorithm: CaKeyAlgorithm): webcrypto.EcdsaParams {
  return ALGORITHMS[algorithm].sign;
}

export async function generateKeyPair(algorithm: CaKeyAlgorithm): Promise<CryptoKeyPair> {
  // Extractable only so the private key can be sealed at rest; it is never written in clear.
  return webcrypto.subtle.generateKey(ALGORITHMS[algorithm].generate, true, ['sign', 'verify']);
}

export async function exportPkcs8(key: CryptoKey): Promise<Buffer> {
  return Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
}

export async function importSigningKey(pkcs8: Uint8Array, algorithm: CaKeyAlgorithm): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pkcs8, ALGORITHMS[algorithm].generate, false, ['sign']);
}

/** 16 random bytes with the top bit clear: positive and unique (RFC 5280 §4.1.2.2, CA/B BR 7.1). */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f || 0x01;
  return bytes.toString('hex');
}

export function toPem(der: Uint8Array, label: 'PRIVATE KEY' | 'CERTIFICATE'): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** PEM of one or more certificates, one block each, each ending in a newline. */
export function certificatesToPem(certificates: readonly X509Certificate[]): string {
  return certificates.map((c) => toPem(c.raw, 'CERTIFICATE')).join('');
}

export function daysAfter(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 86_400_000);
}

export function notAfterOf(certificate: X509Certificate): Date {
  return new Date(certificate.validTo);
}
