import type { DeviceKey } from './device-key.js';

/**
 * A PKCS#10 request for `thing`, signed with the device's own key where it lives (in memory or in
 * the token): the proof of possession the platform checks before it issues. The X.509 library is
 * loaded only when a request is made, so an agent that is already provisioned never pays for it.
 */
export async function certificateRequestPem(thing: string, key: DeviceKey): Promise<string> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const { keys, crypto } = await key.signing();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${thing}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } }, crypto);
  return `${csr.toString('pem')}\n`;
}
