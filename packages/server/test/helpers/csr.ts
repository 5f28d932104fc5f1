import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { toPem } from '../../src/identity/pki/certificate.js';
import { buildCertificateRequest } from '../../src/identity/pki/csr.js';

const run = promisify(execFile);

export interface DeviceKeys {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function p256(): DeviceKeys {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A PEM CSR for `name`, made the way a device (and the agent) makes it. */
export function csrFor(name: string, keys: DeviceKeys = p256()): string {
  return toPem(buildCertificateRequest(name, keys), 'CERTIFICATE REQUEST');
}

/** A PEM CSR made by OpenSSL, a third-party tool, with any key OpenSSL can generate. */
export async function opensslCsr(name: string, newkey: readonly string[], extra: readonly string[] = []): Promise<{ csr: string; keyPem: string }> {
  const { stdout } = await run('openssl', ['req', '-new', ...newkey, '-nodes', '-keyout', '-', '-subj', `/CN=${name}`, ...extra]);
  const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(stdout)?.[0] ?? '';
  const csr = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----\n/.exec(stdout)?.[0] ?? '';
  return { csr, keyPem };
}

export const OPENSSL_KEYS = {
  'ECDSA P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ECDSA P-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  Ed25519: ['-newkey', 'ed25519'],
  'RSA 2048': ['-newkey', 'rsa:2048'],
} as const;

export async function openssl(args: readonly string[], input?: Buffer): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', [...args], { encoding: 'buffer' }, (error, stdout, stderr) => {
      resolve({ stdout: stdout.toString(), stderr: stderr.toString(), code: error ? ((error as { code?: number }).code ?? 1) : 0 });
    });
    if (input) child.stdin?.end(input);
  });
}
