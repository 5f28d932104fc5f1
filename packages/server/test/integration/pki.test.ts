import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPem } from '../../src/identity/pki/certificate.js';
import { closeContext, openHome } from '../../src/node.js';
import { csrFor, openssl } from '../helpers/csr.js';
import { DIALECTS } from '../helpers/environment.js';
import { call } from '../helpers/https-client.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const alice = { name: 'operator:alice' };

describe.each(DIALECTS)('CRL and OCSP over HTTPS on %s', (dialect) => {
  let t: TestNode;
  let base: string;
  let files: string;
  let caFile: string;
  let issuingFile: string;
  const serials: Record<string, string> = {};
  const certFile = (name: string) => join(files, `${name}.pem`);
  const fetchBinary = async (path: string, init: { method?: 'POST'; body?: Buffer; contentType?: string } = {}) => {
    const answer = await fetchRaw(base + path, t.node.hierarchy.chainPem, init);
    return answer;
  };

  beforeAll(async () => {
    t = await startTestNode(dialect);
    base = (await t.node.listen()).apiUrl;
    files = await mkdtemp(join(tmpdir(), 'fw-pki-'));
    caFile = t.node.context.layout.caFile;
    issuingFile = join(files, 'issuing.pem');
    await writeFile(issuingFile, t.node.hierarchy.issuing.certificate.toString());
    for (const name of ['good', 'bad', 'worse']) {
      await t.node.context.identity.things.create({ name }, alice);
      const issued = await t.node.context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name), via: 'operator' }, alice);
      serials[name] = issued.serial;
      await writeFile(certFile(name), issued.certificatePem);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  async function crlPem(): Promise<string> {
    const answer = await fetchBinary('/pki/crl');
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/pkix-crl');
    return toPem(answer.body, 'X509 CRL');
  }

  it('publishes a CRL signed by the issuing CA that OpenSSL verifies; revocations appear at once with their reason', async () => {
    const before = await crlPem();
    const beforeFile = join(files, 'before.crl');
    await writeFile(beforeFile, before);
    const checked = await openssl(['crl', '-in', beforeFile, '-CAfile', caFile, '-noout', '-text']);
    expect(checked.stderr).toContain('verify OK');
    expect(checked.stdout).toContain('No Revoked Certificates');
    expect(checked.stdout).toMatch(/X509v3 CRL Number: \s+1\n/);

    await t.node.context.identity.certificates.revoke(serials.bad as string, 'keyCompromise', alice);
    await t.node.context.identity.certificates.revoke(serials.worse as string, 'unspecified', alice);
    const after = await crlPem();
    const afterFile = join(files, 'after.crl');
    await writeFile(afterFile, after);
    const text = (await openssl(['crl', '-in', afterFile, '-CAfile', caFile, '-noout', '-text'])).stdout;
    expect(text).toMatch(/X509v3 CRL Number: \s+2\n/);
    expect(text).toContain(`Serial Number: ${(serials.bad as string).toUpperCase()}`);
    expect(text).toMatch(/Key Compromise/);
    expect(text).toContain(`Serial Number: ${(serials.worse as string).toUpperCase()}`);
    expect(text).not.toContain(`Serial Number: ${(serials.good as string).toUpperCase()}`);

    // A relying party checking the CRL: the revoked certificate fails, the good one passes.
    const crlChain = join(files, 'crls.pem');
    await writeFile(crlChain, after);
    const untrusted = ['-untrusted', issuingFile];
    const good = await openssl(['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlChain, ...untrusted, certFile('good')]);
    expect(good.stdout.trim()).toBe(`${certFile('good')}: OK`);
    const bad = await openssl(['verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlChain, ...untrusted, certFile('bad')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('certificate revoked');
  });

  it('publishes at once a revocation made by another process on the same database (the CLI, another node)', async () => {
    await crlPem();
    await t.node.context.identity.things.create({ name: 'elsewhere' }, alice);
    const issued = await t.node.context.identity.certificates.issue({ subject: 'elsewhere', kind: 'device', csr: csrFor('elsewhere'), via: 'operator' }, alice);
    const { context } = await openHome(t.env.config(), { create: false });
    try {
      await context.identity.certificates.revoke(issued.serial, 'keyCompromise', alice);
    } finally {
      await closeContext(context);
    }
    const file = join(files, 'elsewhere.crl');
    await writeFile(file, await crlPem());
    expect((await openssl(['crl', '-in', file, '-noout', '-text'])).stdout).toContain(`Serial Number: ${issued.serial.toUpperCase()}`);
  });

  it('serves the CA chain and the CRL of a CA by id; an unknown CA is a 404', async () => {
    expect((await call(t.node.hierarchy.chainPem, `${base}/pki/ca.pem`)).text).toBe(await readFile(caFile, 'utf8'));
    const byId = await fetchBinary(`/pki/crl/${t.node.hierarchy.issuing.id}`);
    expect(byId.status).toBe(200);
    expect((await fetchBinary(`/pki/crl/${'0'.repeat(32)}`)).status).toBe(404);
  });

  async function ocsp(args: readonly string[]): Promise<string> {
    const requestFile = join(files, 'request.der');
    const responseFile = join(files, 'response.der');
    const made = await openssl(['ocsp', '-issuer', issuingFile, ...args, '-reqout', requestFile]);
    expect(made.code, made.stderr).toBe(0);
    const answer = await fetchBinary('/pki/ocsp', { method: 'POST', body: await readFile(requestFile), contentType: 'application/ocsp-request' });
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('application/ocsp-response');
    await writeFile(responseFile, answer.body);
    // The original request (its nonce) must match the response; `-cert` here would make OpenSSL build a new request.
    const nonceChecked = await openssl(['ocsp', '-reqin', requestFile, '-respin', responseFile, '-CAfile', caFile, '-verify_other', issuingFile]);
    expect(nonceChecked.stdout + nonceChecked.stderr).toContain('Response verify OK');
    expect(nonceChecked.stdout + nonceChecked.stderr).not.toContain('Nonce Verify error');
    const checked = await openssl(['ocsp', '-respin', responseFile, '-issuer', issuingFile, '-CAfile', caFile, '-no_nonce', ...args, '-resp_text']);
    return checked.stdout + checked.stderr;
  }

  it('answers OCSP for OpenSSL (SHA-1 CertIDs, nonce): good, revoked with reason, unknown; responses verify', async () => {
    await t.node.context.identity.certificates.revoke(serials.bad as string, 'keyCompromise', alice).catch(() => undefined);
    const good = await ocsp(['-cert', certFile('good')]);
    expect(good).toContain('Response verify OK');
    expect(good).toContain(`${certFile('good')}: good`);
    const bad = await ocsp(['-cert', certFile('bad')]);
    expect(bad).toContain('Response verify OK');
    expect(bad).toContain(`${certFile('bad')}: revoked`);
    expect(bad).toContain('Reason: keyCompromise');
    const unknown = await ocsp(['-serial', '0x7e57']);
    expect(unknown).toContain('Response verify OK');
    expect(unknown).toContain('0x7e57: unknown');
  });

  it('answers SHA-256 CertIDs too', async () => {
    const answer = await ocsp(['-sha256', '-cert', certFile('good')]);
    expect(answer).toContain('Response verify OK');
    expect(answer).toContain(`${certFile('good')}: good`);
  });

  it('answers malformed requests with malformedRequest, over POST and GET, and keeps serving', async () => {
    for (const body of [Buffer.from('not DER'), Buffer.alloc(0), Buffer.from([0x30, 0x82, 0xff, 0xff, 0x00])]) {
      const answer = await fetchBinary('/pki/ocsp', { method: 'POST', body, contentType: 'application/ocsp-request' });
      expect(answer.status).toBe(200);
      // OCSPResponse { responseStatus ENUMERATED malformedRequest(1) }
      expect(answer.body.toString('hex')).toBe('30030a0101');
    }
    const requestFile = join(files, 'get-request.der');
    await openssl(['ocsp', '-issuer', issuingFile, '-cert', certFile('good'), '-no_nonce', '-reqout', requestFile]);
    const encoded = encodeURIComponent((await readFile(requestFile)).toString('base64'));
    const answer = await fetchBinary(`/pki/ocsp/${encoded}`);
    expect(answer.status).toBe(200);
    await writeFile(join(files, 'get-response.der'), answer.body);
    const checked = await openssl(['ocsp', '-respin', join(files, 'get-response.der'), '-issuer', issuingFile, '-CAfile', caFile, '-cert', certFile('good'), '-no_nonce']);
    expect(checked.stdout + checked.stderr).toContain(`${certFile('good')}: good`);
  });
});

async function fetchRaw(url: string, ca: string, init: { method?: 'POST'; body?: Buffer; contentType?: string }): Promise<{ status: number; contentType: string; body: Buffer }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', ca, headers: init.contentType ? { 'content-type': init.contentType } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
