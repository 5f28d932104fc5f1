// @peculiar/x509 needs the Reflect metadata API before it is first imported.
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * Certificate building (@peculiar/x509). It is large, so it is imported only where a certificate
 * is made (`await import('./x509.js')`); parsing and checking use node:crypto's X509Certificate.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

export function fromNode(certificate: X509Certificate): x509.X509Certificate {
  return new x509.X509Certificate(certificate.raw);
}

export function toNode(certificate: x509.X509Certificate): X509Certificate {
  return new X509Certificate(Buffer.from(certificate.rawData));
}
