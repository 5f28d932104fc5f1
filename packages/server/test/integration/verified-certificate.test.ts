import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { serialOf } from '../../src/identity/certificates.js';
import { VerifiedCertificate } from '../../src/identity/verified-certificate.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetward-verified-certificate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const file = (name: string) => join(dir, name);
const openssl = (args: readonly string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A CA, and a certificate it signs for `name` with the given serial (OpenSSL: a third-party tool). */
function issue(name: string, serial: string, newkey: readonly string[] = EC, ca = 'ca'): { readonly key: Buffer; readonly cert: Buffer } {
  openssl(['req', '-new', ...newkey, '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}/O=Devices, Inc.`]);
  openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`), '-set_serial', serial, '-days', '30', '-out', file(`${name}.pem`)]);
  return { key: readFileSync(file(`${name}.key`)), cert: readFileSync(file(`${name}.pem`)) };
}
for (const ca of ['ca', 'other-ca']) openssl(['req', '-x509', ...EC, '-nodes', '-keyout', file(`${ca}.key`), '-out', file(`${ca}.pem`), '-subj', `/CN=Test ${ca}/O=Fleetward Tests`, '-days', '30']);
const caPem = readFileSync(file('ca.pem'));
const server = issue('localhost', '2');

/** Connects with `client` to a server requiring (or, with `optional`, only requesting) a certificate; returns what each reading of the peer certificate gave. */
async function handshake(client: { key: Buffer; cert: Buffer } | null, optional = false): Promise<{ verified: VerifiedCertificate | undefined; x509: X509Certificate | undefined }> {
  const tls = createServer({ key: server.key, cert: server.cert, ca: caPem, requestCert: true, rejectUnauthorized: !optional });
  const seen = new Promise<{ verified: VerifiedCertificate | undefined; x509: X509Certificate | undefined }>((resolve) => {
    tls.once('secureConnection', (socket: TLSSocket) => {
      const verified = VerifiedCertificate.ofSocket(socket);
      resolve({ verified, x509: socket.authorized ? socket.getPeerX509Certificate() : undefined });
      socket.end();
    });
  });
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  const port = (tls.address() as { port: number }).port;
  const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, ...(client ?? {}) });
  socket.on('error', () => undefined);
  try {
    return await seen;
  } finally {
    socket.destroy();
    tls.close();
  }
}

describe('a verified client certificate read from the handshake', () => {
  const serials = { 'one byte': '1', 'high bit set (DER adds a zero byte)': '0x80', 'leading zero byte given': '0x00ff00', '20 bytes': '0x7fffffffffffffffffffffffffffffffffffff01' };
  for (const [label, serial] of Object.entries(serials)) {
    it(`ok/matches X509Certificate field for field: serial ${label}`, async () => {
      const { verified, x509 } = await handshake(issue(`device-${serial}`, serial));
      expect(x509).toBeDefined();
      const parsed = x509 as X509Certificate;
      expect(verified).toMatchObject({ serialNumber: parsed.serialNumber, validFrom: parsed.validFrom, validTo: parsed.validTo });
      expect(verified?.raw.equals(parsed.raw)).toBe(true);
      expect(serialOf(verified as VerifiedCertificate)).toBe(serialOf(parsed));
      expect(verified?.issuer).toBe(parsed.issuer);
      expect(verified?.x509.fingerprint256).toBe(parsed.fingerprint256);
    });
  }

  it('ok/an RSA certificate reads alike', async () => {
    const { verified, x509 } = await handshake(issue('device-rsa', '0x1234', ['-newkey', 'rsa:2048']));
    expect(verified).toMatchObject({ serialNumber: x509?.serialNumber, validFrom: x509?.validFrom, validTo: x509?.validTo });
  });

  it('fail/nothing is read from a handshake that sent no certificate or one that did not verify', async () => {
    expect((await handshake(null, true)).verified).toBeUndefined();
    const untrusted = issue('device-untrusted', '3', EC, 'other-ca');
    expect((await handshake(untrusted, true)).verified).toBeUndefined();
  });

  it('ok/one parsed already is kept as it is', () => {
    const parsed = new X509Certificate(readFileSync(file('localhost.pem')));
    const verified = VerifiedCertificate.fromX509(parsed);
    expect(verified.x509).toBe(parsed);
    expect(verified).toMatchObject({ serialNumber: parsed.serialNumber, validFrom: parsed.validFrom, validTo: parsed.validTo, issuer: parsed.issuer });
  });
});
