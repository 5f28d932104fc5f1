import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validAt } from '../../src/identity/keys.js';
import { openssl } from '../helpers/csr.js';

/** The validity check a resumed TLS session and third-party CA registration rely on. */
describe('validAt', () => {
  it('includes both ends of the validity period (RFC 5280) and nothing outside it', async () => {
    const { stdout, code } = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=validity', '-days', '2']);
    expect(code).toBe(0);
    const certificate = new X509Certificate(stdout);
    const from = Date.parse(certificate.validFrom);
    const to = Date.parse(certificate.validTo);
    expect(validAt(certificate, new Date(from))).toBe(true);
    expect(validAt(certificate, new Date(to))).toBe(true);
    expect(validAt(certificate, new Date(from - 1))).toBe(false);
    expect(validAt(certificate, new Date(to + 1))).toBe(false);
  });
});
