import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TestPki {
  readonly caPem: string;
  /** For 127.0.0.1 and localhost. */
  readonly server: Issued;
  readonly client: (cn: string) => Promise<Issued>;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A platform CA made at test time, a server certificate for loopback and client certificates on demand. */
export async function testPki(name = 'Test Platform CA'): Promise<TestPki> {
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3_600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  }, webcrypto);
  let serial = 2;
  const issue = async (cn: string, extensions: x509.Extension[]): Promise<Issued> => {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (serial++).toString(16).padStart(2, '0'),
      subject: `CN=${cn}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [new x509.BasicConstraintsExtension(false), ...extensions],
    }, webcrypto);
    return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
  };
  const server = await issue('localhost', [
    new x509.SubjectAlternativeNameExtension([
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ]);
  return { caPem: ca.toString('pem'), server, client: (cn) => issue(cn, [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])]) };
}
