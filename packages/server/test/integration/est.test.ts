import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuingCaOperations } from '../../src/node.js';
import { openssl } from '../helpers/csr.js';
import { DIALECTS } from '../helpers/environment.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const run = promisify(execFile);
const admin = { name: 'operator:admin' };

describe.each(DIALECTS)('EST (RFC 7030) with curl and OpenSSL on %s', (dialect) => {
  let t: TestNode;
  let base: string;
  let dir: string;
  let caFile: string;

  beforeAll(async () => {
    t = await startTestNode(dialect);
    base = (await t.node.listen()).apiUrl;
    dir = await mkdtemp(join(tmpdir(), 'fw-est-'));
    caFile = t.node.context.layout.caFile;
    await t.node.context.identity.templates.create('meter', { namePattern: 'meter-[0-9]{4}' }, admin);
  });
  afterAll(async () => {
    await t.close();
  });

  /** A key and a base64 DER CSR made by OpenSSL, as an EST client sends it. */
  async function csr(name: string): Promise<{ key: string; body: string }> {
    const key = join(dir, `${name}-${Date.now()}.key`);
    const der = join(dir, `${name}.der`);
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/CN=${name}`, '-outform', 'DER', '-out', der]);
    const body = join(dir, `${name}.b64`);
    await writeFile(body, (await readFile(der)).toString('base64'));
    return { key, body };
  }

  async function curl(path: string, args: readonly string[]): Promise<{ status: number; body: string }> {
    const { stdout } = await run('curl', ['--silent', '--cacert', caFile, '--write-out', '\n%{http_code}', ...args, `${base}${path}`]);
    const at = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
  }

  /** The certificates of a base64 certs-only PKCS#7, through OpenSSL. */
  async function certificatesOf(base64: string): Promise<string> {
    const p7 = join(dir, `answer-${Date.now()}.p7`);
    await writeFile(p7, Buffer.from(base64, 'base64'));
    return (await openssl(['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs'])).stdout;
  }

  const enroll = (path: string, request: { body: string }, auth: readonly string[]) => curl(path, ['-X', 'POST', '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${request.body}`, ...auth]);

  it('cacerts returns the CA chain as a certs-only PKCS#7', async () => {
    const answer = await curl('/.well-known/est/cacerts', []);
    expect(answer.status).toBe(200);
    const certs = await certificatesOf(answer.body);
    expect(certs.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(certs).toContain('Root CA');
  });

  it('simpleenroll with an enrollment token (HTTP Basic), then simplereenroll with the certificate it got (mutual TLS)', async () => {
    const token = await t.node.context.identity.enrollmentTokens.issue('meter', { uses: 1, ttlHours: 1 }, admin);
    const request = await csr('meter-0001');
    const answer = await enroll('/.well-known/est/meter/simpleenroll', request, ['--user', `meter:${token.token}`]);
    expect(answer.status, answer.body).toBe(200);
    const certPem = await certificatesOf(answer.body);
    const certFile = join(dir, 'meter-0001.pem');
    await writeFile(certFile, certPem);
    expect((await openssl(['verify', '-CAfile', caFile, certFile])).stdout).toContain('OK');
    expect((await t.node.context.identity.things.get('meter-0001')).state).toBe('active');

    // The same token again: spent.
    const again = await enroll('/.well-known/est/meter/simpleenroll', await csr('meter-0002'), ['--user', `meter:${token.token}`]);
    expect(again.status).toBe(403);
    expect(JSON.parse(again.body)).toMatchObject({ code: 'FW_ERR_ENROLLMENT_DENIED', reason: 'used-up' });

    const renewal = await csr('meter-0001');
    const renewed = await enroll('/.well-known/est/simplereenroll', renewal, ['--cert', certFile, '--key', request.key]);
    expect(renewed.status, renewed.body).toBe(200);
    const next = new X509Certificate(await certificatesOf(renewed.body));
    expect(next.subject).toBe('CN=meter-0001');
    expect(next.publicKey.equals(new X509Certificate(certPem).publicKey)).toBe(false);
  });

  it('simpleenroll with a claim certificate over mutual TLS; the claim certificate cannot re-enroll', async () => {
    const claimRequest = await csr('meter');
    const claimCsrPem = join(dir, 'claim.csr');
    await openssl(['req', '-in', claimRequest.body.replace('.b64', '.der'), '-inform', 'DER', '-out', claimCsrPem]);
    const claim = await t.node.context.identity.certificates.issue({ subject: 'meter', kind: 'claim', csr: await readFile(claimCsrPem, 'utf8'), via: 'operator', template: 'meter' }, admin);
    const claimFile = join(dir, 'claim.pem');
    await writeFile(claimFile, claim.certificatePem);
    const device = await csr('meter-0100');
    const answer = await enroll('/.well-known/est/simpleenroll', device, ['--cert', claimFile, '--key', claimRequest.key]);
    expect(answer.status, answer.body).toBe(200);
    expect(await certificatesOf(answer.body)).toContain('subject=CN = meter-0100');
    const reenroll = await enroll('/.well-known/est/simplereenroll', await csr('meter'), ['--cert', claimFile, '--key', claimRequest.key]);
    expect(reenroll.status).toBe(401);
  });

  it('refuses enrollment without a credential, with a certificate from another CA, and garbage bodies', async () => {
    const request = await csr('meter-0200');
    const none = await enroll('/.well-known/est/meter/simpleenroll', request, []);
    expect(none.status).toBe(401);
    const foreignKey = join(dir, 'foreign.key');
    const foreign = join(dir, 'foreign.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', foreignKey, '-subj', '/CN=meter', '-days', '1', '-out', foreign]);
    expect((await enroll('/.well-known/est/meter/simpleenroll', request, ['--cert', foreign, '--key', foreignKey])).status).toBe(401);
    const garbage = join(dir, 'garbage.b64');
    await writeFile(garbage, 'this is not base64 DER!!');
    const bad = await curl('/.well-known/est/meter/simpleenroll', ['-X', 'POST', '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${garbage}`, '--user', 'meter:x']);
    expect(bad.status).toBe(400);
    expect((JSON.parse(bad.body) as { code: string }).code).toBe('FW_ERR_CSR_MALFORMED');
    expect((await t.node.context.identity.things.list({ limit: 10, namePrefix: 'meter-02' })).things).toEqual([]);
  });

  it('issuing CA rotation: new certificates come from the new CA, both stay trusted while in use, and devices are asked to move over', async () => {
    const { identity } = t.node.context;
    await identity.things.create({ name: 'dev-rot' }, admin);
    const old = await identity.certificates.issue({ subject: 'dev-rot', kind: 'device', csr: await readFile((await csr('dev-rot')).body.replace('.b64', '.der')), via: 'operator' }, admin);
    const asked: string[] = [];
    identity.events.on('rotationRequested', (e) => asked.push(e.serial));
    const rotation = await issuingCaOperations(t.node.context).rotate(admin, { requestRotation: true });
    // What the job runner does on every tick: the node moves to the new issuing CA.
    expect(await t.node.refreshCertificateAuthorities()).toBe(true);
    expect(asked).toContain(old.serial);
    expect((await identity.certificates.get(old.serial)).mustRotate).toBe(true);
    const chain = await readFile(caFile, 'utf8');
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    const oldFile = join(dir, 'old.pem');
    await writeFile(oldFile, old.certificatePem);
    expect((await openssl(['verify', '-CAfile', caFile, oldFile])).stdout).toContain('OK');
    await identity.things.create({ name: 'dev-new' }, admin);
    const fresh = await identity.certificates.issue({ subject: 'dev-new', kind: 'device', csr: await readFile((await csr('dev-new')).body.replace('.b64', '.der')), via: 'operator' }, admin);
    expect((await identity.certificates.get(fresh.serial)).caId).toBe(rotation.current);
    const freshFile = join(dir, 'fresh.pem');
    await writeFile(freshFile, fresh.certificatePem);
    expect((await openssl(['verify', '-CAfile', caFile, freshFile])).stdout).toContain('OK');
    // The retired CA still publishes a CRL for its own certificates.
    const crlFile = join(dir, 'retired.crl');
    await writeFile(crlFile, await identity.crl.crl(rotation.previous));
    expect((await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-noout'])).stderr).toContain('verify OK');

    // The running node now trusts and serves the new hierarchy: a device renewed onto the new CA re-enrolls over mutual TLS.
    expect(await t.node.refreshCertificateAuthorities()).toBe(false);
    await identity.things.create({ name: 'dev-mtls' }, admin);
    const mtls = await csr('dev-mtls');
    const issued = await identity.certificates.issue({ subject: 'dev-mtls', kind: 'device', csr: await readFile(mtls.body.replace('.b64', '.der')), via: 'operator' }, admin);
    const mtlsFile = join(dir, 'dev-mtls.pem');
    await writeFile(mtlsFile, issued.certificatePem);
    const renewed = await enroll('/.well-known/est/simplereenroll', await csr('dev-mtls'), ['--cert', mtlsFile, '--key', mtls.key]);
    expect(renewed.status, renewed.body).toBe(200);
  });
});
