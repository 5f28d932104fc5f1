import { webcrypto } from 'node:crypto';
import type { DeviceKeyPair } from './key-file.js';

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/**
 * A PKCS#10 request for `thing`, signed with the device's own key: the proof of possession the
 * platform checks before it issues. The X.509 library is loaded only when a request is made, so an
 * agent that is already provisioned never pays for it in memory.
 */
export async function certificateRequestPem(thing: string, key: DeviceKeyPair): Promise<string> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', key.privateKey.export({ type: 'pkcs8', format: 'der' }), ECDSA, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', key.publicKey.export({ type: 'spki', format: 'der' }), ECDSA, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${thing}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } }, webcrypto);
  return `${csr.toString('pem')}\n`;
}
