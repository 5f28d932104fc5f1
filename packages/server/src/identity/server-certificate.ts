import { createPrivateKey, createPublicKey, X509Certificate as NodeX509 } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { readPrivateFile, writePrivateFile, writePublicFile, type HomeLayout } from '../config/home.js';
import { normalizeHost } from '../config/values.js';
import type { CaHierarchy } from './ca-hierarchy.js';
import type { KeyRing } from './key-ring.js';
import { BACKDATE_MS } from './certificate-authority.js';
import { certificatesToPem, daysAfter, exportPkcs8, generateKeyPair, notAfterOf, randomSerialNumber, spkiOf } from './keys.js';
import { keyIdentifier, signCertificate, toPem } from './pki/certificate.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { authorityKeyIdentifier, basicConstraints, extendedKeyUsage, keyUsage, subjectAltName, subjectKeyIdentifier } from './pki/extensions.js';
import { distinguishedName } from './pki/names.js';
import { Oid } from './pki/oids.js';

/** The node's TLS identity: its certificate chain and private key, in the PEM forms node:tls takes. */
export interface ServerCredentials {
  /** Leaf then issuing CA. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
  readonly hostnames: readonly string[];
}

export interface ServerCertificateRequest {
  readonly layout: HomeLayout;
  readonly keyRing: KeyRing;
  readonly hierarchy: CaHierarchy;
  readonly hostnames: readonly string[];
  readonly validityDays: number;
  readonly now: Date;
}

/**
 * Returns the node's TLS server credentials, issuing new ones when there are none, when the
 * certificate is not from the current issuing CA, names other hosts than configured, does not
 * match its key, or has used two thirds of its life.
 */
export async function ensureServerCertificate(request: ServerCertificateRequest): Promise<{ credentials: ServerCredentials; issued: boolean }> {
  const existing = await readExisting(request);
  if (existing !== null && isCurrent(existing, request)) return { credentials: existing, issued: false };
  const credentials = await issueServerCertificate(request);
  await writePrivateFile(request.layout.serverKeyFile, request.keyRing.seal(Buffer.from(credentials.keyPem), 'tls:server'));
  await writePublicFile(request.layout.serverCertFile, credentials.certPem);
  return { credentials, issued: true };
}

async function issueServerCertificate(request: ServerCertificateRequest): Promise<ServerCredentials> {
  const { hierarchy, hostnames, now } = request;
  const keys = await generateKeyPair('ECDSA-P256');
  const spki = spkiOf(keys.publicKey);
  const notAfter = new Date(Math.min(daysAfter(now, request.validityDays).getTime(), notAfterOf(hierarchy.issuing.certificate).getTime()));
  const der = await signCertificate(
    {
      serial: randomSerialNumber(),
      issuer: subjectOf(hierarchy.issuing.certificate),
      subject: distinguishedName([['CN', hostnames[0] ?? 'localhost']]),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      extensions: [
        basicConstraints(false),
        keyUsage(['digitalSignature']),
        extendedKeyUsage([Oid.serverAuth]),
        subjectAltName(hostnames.map((name) => (isIP(name) ? { ip: name } : { dns: name }))),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(keyIdentifier(subjectPublicKeyInfoOf(hierarchy.issuing.certificate))),
      ],
    },
    hierarchy.issuingSigner,
  );
  return {
    certPem: certificatesToPem([new NodeX509(der), hierarchy.issuing.certificate]),
    keyPem: toPem(exportPkcs8(keys.privateKey), 'PRIVATE KEY'),
    notAfter,
    hostnames,
  };
}

async function readExisting(request: ServerCertificateRequest): Promise<(ServerCredentials & { leaf: NodeX509 }) | null> {
  let certPem: string;
  try {
    certPem = await readFile(request.layout.serverCertFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let sealed: Buffer;
  try {
    sealed = await readPrivateFile(request.layout.serverKeyFile, 'server key file');
  } catch (error) {
    if ((error as { code?: string }).code === 'FW_ERR_HOME_NOT_INITIALIZED') return null;
    throw error;
  }
  const keyPem = request.keyRing.open(sealed.toString('utf8'), 'tls:server').toString('utf8');
  let leaf: NodeX509;
  try {
    leaf = new NodeX509(certPem);
  } catch {
    return null;
  }
  return { certPem, keyPem, notAfter: new Date(leaf.validTo), hostnames: subjectAltNames(leaf), leaf };
}

function isCurrent(existing: ServerCredentials & { leaf: NodeX509 }, request: ServerCertificateRequest): boolean {
  const { leaf } = existing;
  const issuing = request.hierarchy.issuing.certificate;
  if (!leaf.checkIssued(issuing) || !leaf.verify(issuing.publicKey)) return false;
  const spki = (key: ReturnType<typeof createPublicKey>) => key.export({ type: 'spki', format: 'der' }).toString('base64');
  if (spki(leaf.publicKey) !== spki(createPublicKey(createPrivateKey(existing.keyPem)))) return false;
  const wanted = [...new Set(request.hostnames)].sort().join(',');
  if (existing.hostnames.slice().sort().join(',') !== wanted) return false;
  const notBefore = new Date(leaf.validFrom).getTime();
  const notAfter = existing.notAfter.getTime();
  return request.now.getTime() < notBefore + ((notAfter - notBefore) * 2) / 3;
}

function subjectAltNames(leaf: NodeX509): string[] {
  return (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.length > 0)
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
    // Node prints IPv6 SANs expanded (`0:0:0:0:0:0:0:1`); compare in the configuration's form.
    .map(normalizeHost);
}
