import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A manufacturer's own CA, made with OpenSSL, that can sign certificates on demand. */
export async function externalCa(dir: string, name: string) {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}/O=Acme`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  let serial = 1;
  const sign = async (cn: string, extra: readonly string[] = []): Promise<string> => {
    const leafKey = join(dir, `${cn}-${serial}.key`);
    const csr = join(dir, `${cn}-${serial}.csr`);
    const out = join(dir, `${cn}-${serial}.pem`);
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-subj', `/CN=${cn}`, '-out', csr]);
    // Small, sequential serials, as many manufacturer CAs use: they may collide with other CAs'.
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', cert, '-CAkey', key, '-set_serial', String(serial++), '-days', '10', '-out', out, ...extra]);
    return readFile(out, 'utf8');
  };
  return { pem: await readFile(cert, 'utf8'), sign };
}

/** The same, built in-process and valid from 2020 on: for tests whose clock is fixed in the past. */
export async function backdatedExternalCa(name: string): Promise<{ pem: string; sign: (cn: string) => Promise<string> }> {
  const { generateKeyPairSync, randomBytes } = await import('node:crypto');
  const { keyIdentifier, signCertificate, toPem } = await import('../../src/identity/pki/certificate.js');
  const { basicConstraints, keyUsage, subjectKeyIdentifier } = await import('../../src/identity/pki/extensions.js');
  const { distinguishedName } = await import('../../src/identity/pki/names.js');
  const { softwareSigner } = await import('../../src/identity/pki/signer.js');
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const subject = distinguishedName([['CN', name], ['O', 'Acme']]);
  const signer = softwareSigner(keys.privateKey);
  const validity = { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') };
  const ca = await signCertificate({ serial: randomBytes(8), issuer: subject, subject, subjectPublicKeyInfo: spki, ...validity, extensions: [basicConstraints(true), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(spki))] }, signer);
  const sign = async (cn: string): Promise<string> => {
    const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = await signCertificate({ serial: randomBytes(8), issuer: subject, subject: distinguishedName([['CN', cn]]), subjectPublicKeyInfo: leaf.publicKey.export({ type: 'spki', format: 'der' }), ...validity, extensions: [basicConstraints(false)] }, signer);
    return toPem(der, 'CERTIFICATE');
  };
  return { pem: toPem(ca, 'CERTIFICATE'), sign };
}
