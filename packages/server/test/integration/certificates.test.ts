import { X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { csrFor, openssl, opensslCsr, OPENSSL_KEYS, p256 } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, type Dialect, type TestClock } from '../helpers/environment.js';
import { refusalCode } from '../helpers/refusals.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const alice = { name: 'operator:alice' };

async function fresh(dialect: Dialect, clock?: TestClock): Promise<NodeContext & { files: string }> {
  const env = await testEnvironment(dialect);
  const { context } = await openHome(env.config(), { create: true, ...(clock && { clock }) });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  await writeFile(context.layout.caFile, (await context.identity.cas.hierarchy()).chainPem);
  return { ...context, files: await mkdtemp(join(tmpdir(), 'fw-certs-')) };
}

async function certificateCount(context: NodeContext): Promise<number> {
  return (await context.store.db.selectFrom('certificates').select('serial').execute()).length;
}

describe.each(DIALECTS)('certificate issuance on %s', (dialect) => {
  for (const [keyType, newkey] of Object.entries(OPENSSL_KEYS)) {
    it(`issues from an OpenSSL ${keyType} CSR a certificate OpenSSL verifies against ca.pem, with the device profile`, async () => {
      const context = await fresh(dialect);
      await context.identity.things.create({ name: 'dev-1' }, alice);
      const { csr } = await opensslCsr('dev-1', newkey);
      const issued = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr, via: 'operator' }, alice);
      const certFile = join(context.files, 'dev.pem');
      await writeFile(certFile, issued.certificatePem);
      const verified = await openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', context.layout.caFile, certFile]);
      expect(verified.stdout.trim(), verified.stderr).toBe(`${certFile}: OK`);
      const text = (await openssl(['x509', '-in', certFile, '-noout', '-text'])).stdout;
      expect(text).toMatch(/Subject: CN ?= ?dev-1\n/);
      expect(text).toContain('URI:urn:fleetward:thing:dev-1');
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
      expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
      expect(text).toMatch(/X509v3 Extended Key Usage: \s+TLS Web Client Authentication\n/);
      expect(text).toMatch(/X509v3 Subject Key Identifier/);
      expect(text).toMatch(/X509v3 Authority Key Identifier/);
      expect(text).toMatch(/CRL Distribution Points:\s+Full Name:\s+URI:https:\/\/.*\/pki\/crl\/[a-f0-9]{32}/);
      expect(text).toMatch(/OCSP - URI:https:\/\/.*\/pki\/ocsp/);
      const cert = new X509Certificate(issued.certificatePem);
      const lifetimeDays = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
      expect(lifetimeDays).toBeGreaterThan(29.99);
      expect(lifetimeDays).toBeLessThan(30.01);
      expect(issued.chainPem).toBe(await (await import('node:fs/promises')).readFile(context.layout.caFile, 'utf8'));
    });
  }

  it('activates a pending thing with its first certificate and records the key provenance', async () => {
    const context = await fresh(dialect);
    await context.identity.things.create({ name: 'dev-1' }, alice);
    const issued = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'manufacturing', keyStorage: 'pkcs11', attestation: { token: 'SoftHSM', label: 'dev-1' } }, alice);
    expect((await context.identity.things.get('dev-1')).state).toBe('active');
    expect(await context.identity.certificates.get(issued.serial)).toMatchObject({ thing: 'dev-1', status: 'active', keyAlgorithm: 'ECDSA-P256', keyStorage: 'pkcs11', attestation: { token: 'SoftHSM', label: 'dev-1' }, issuedVia: 'manufacturing', issuedBy: 'operator:alice' });
    const [event] = await context.audit.list({ limit: 5, action: 'certificate.issue' });
    expect(event).toMatchObject({ actor: 'operator:alice', outcome: 'success', target: 'thing:dev-1' });
  });

  it('refuses, audits and writes nothing for each bad request', async () => {
    const context = await fresh(dialect);
    const { things, certificates, thingTypes } = context.identity;
    await things.create({ name: 'dev-1' }, alice);
    await things.create({ name: 'dev-2' }, alice);
    const shared = p256();
    await certificates.issue({ subject: 'dev-2', kind: 'device', csr: csrFor('dev-2', shared), via: 'operator' }, alice);
    await thingTypes.create({ name: 'secure', requireHardwareKey: true }, alice);
    await things.create({ name: 'hsm-1', type: 'secure' }, alice);
    await things.create({ name: 'gone' }, alice);
    await things.setState('gone', 'decommissioned', alice);
    await things.create({ name: 'paused' }, alice);
    await things.setState('paused', 'active', alice);
    await things.setState('paused', 'suspended', alice);

    const good = csrFor('dev-1');
    const der = Buffer.from(good.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    const flipped = Buffer.from(der);
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 0xff;
    const tamperedInfo = Buffer.from(der);
    const at = tamperedInfo.indexOf(Buffer.from('dev-1'));
    tamperedInfo[at + 4] = '2'.charCodeAt(0);
    const cases: [string, Parameters<typeof certificates.issue>[0], string][] = [
      ['not a CSR at all', { subject: 'dev-1', kind: 'device', csr: 'hello', via: 'operator' }, 'FW_ERR_CSR_MALFORMED'],
      ['a truncated PEM', { subject: 'dev-1', kind: 'device', csr: good.slice(0, good.length / 2), via: 'operator' }, 'FW_ERR_CSR_MALFORMED'],
      ['truncated DER', { subject: 'dev-1', kind: 'device', csr: der.subarray(0, der.length - 20), via: 'operator' }, 'FW_ERR_CSR_MALFORMED'],
      ['a CSR with a corrupted signature', { subject: 'dev-1', kind: 'device', csr: flipped, via: 'operator' }, 'FW_ERR_CSR_SIGNATURE'],
      ['a CSR whose signed content was altered', { subject: 'dev-2', kind: 'device', csr: tamperedInfo, via: 'operator' }, 'FW_ERR_CSR_SIGNATURE'],
      ['a CSR for another thing\'s name', { subject: 'dev-1', kind: 'device', csr: csrFor('dev-2'), via: 'operator' }, 'FW_ERR_NAME_MISMATCH'],
      ['a key that already belongs to another thing', { subject: 'dev-1', kind: 'device', csr: csrFor('dev-1', shared), via: 'operator' }, 'FW_ERR_KEY_REUSED'],
      ['a thing that does not exist', { subject: 'ghost', kind: 'device', csr: csrFor('ghost'), via: 'operator' }, 'FW_ERR_NOT_FOUND'],
      ['a decommissioned thing', { subject: 'gone', kind: 'device', csr: csrFor('gone'), via: 'operator' }, 'FW_ERR_THING_STATE'],
      ['a suspended thing', { subject: 'paused', kind: 'device', csr: csrFor('paused'), via: 'operator' }, 'FW_ERR_THING_STATE'],
      ['a software key for a type that requires hardware', { subject: 'hsm-1', kind: 'device', csr: csrFor('hsm-1'), via: 'operator', keyStorage: 'software' }, 'FW_ERR_KEY_REJECTED'],
      ['a validity above the maximum', { subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'operator', validityDays: 398 }, 'FW_ERR_VALIDATION'],
    ];
    for (const [keyType, args, code] of [
      ['RSA 1024', ['-newkey', 'rsa:1024'], 'FW_ERR_KEY_REJECTED'],
      ['secp256k1', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], 'FW_ERR_KEY_REJECTED'],
      ['a SHA-1 signature', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha1'], 'FW_ERR_KEY_REJECTED'],
    ] as const) {
      cases.push([`a CSR with ${keyType}`, { subject: 'dev-1', kind: 'device', csr: (await opensslCsr('dev-1', args)).csr, via: 'operator' }, code]);
    }
    const before = await certificateCount(context);
    const deniedBefore = (await context.audit.list({ limit: 1000, action: 'certificate.issue' })).filter((e) => e.outcome === 'denied').length;
    for (const [what, request, code] of cases) expect(await refusalCode(certificates.issue(request, alice)), what).toBe(code);
    expect(await certificateCount(context)).toBe(before);
    const denied = (await context.audit.list({ limit: 1000, action: 'certificate.issue' })).filter((e) => e.outcome === 'denied');
    expect(denied.length - deniedBefore).toBe(cases.length);
    expect(denied.map((e) => (JSON.parse(e.details) as { reason: string }).reason)).toEqual(expect.arrayContaining(cases.map(([, , code]) => code)));
    expect((await things.get('dev-1')).state).toBe('pending');
  });

  it('a public key can never serve two things, even when both ask at once', async () => {
    const context = await fresh(dialect);
    const keys = p256();
    await context.identity.things.create({ name: 'a' }, alice);
    await context.identity.things.create({ name: 'b' }, alice);
    const results = await Promise.allSettled(['a', 'b'].map((name) => context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name, keys), via: 'operator' }, alice)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r.reason as { code: string }).code)).toEqual(['FW_ERR_KEY_REUSED']);
  });

  it('issues many certificates concurrently, each distinct and recorded once', async () => {
    const context = await fresh(dialect);
    const names = Array.from({ length: 150 }, (_, i) => `bulk-${i}`);
    for (const name of names) await context.identity.things.create({ name }, alice);
    const issued = await Promise.all(names.map((name) => context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name), via: 'operator' }, alice)));
    expect(new Set(issued.map((c) => c.serial)).size).toBe(150);
    expect(await certificateCount(context)).toBe(150);
    expect((await context.audit.verify()).ok).toBe(true);
  });

  it('revocation is final: a revoked certificate cannot be revoked again, and the database refuses to un-revoke it', async () => {
    const context = await fresh(dialect);
    await context.identity.things.create({ name: 'dev-1' }, alice);
    const issued = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'operator' }, alice);
    const revokedEvents: string[][] = [];
    context.identity.events.on('certificatesRevoked', (e) => revokedEvents.push([...e.serials]));
    const revoked = await context.identity.certificates.revoke(issued.serial, 'keyCompromise', alice);
    expect(revoked).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    expect(revokedEvents).toEqual([[issued.serial]]);
    expect(await refusalCode(context.identity.certificates.revoke(issued.serial, 'unspecified', alice))).toBe('FW_ERR_CONFLICT');
    await expect(sql`update certificates set status = 'active' where serial = ${issued.serial}`.execute(context.store.db)).rejects.toThrow(/revocation is final/);
  });

  it('decommissioning a thing revokes all its certificates in the same transaction', async () => {
    const context = await fresh(dialect);
    await context.identity.things.create({ name: 'dev-1' }, alice);
    const first = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'operator' }, alice);
    const second = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'operator' }, alice);
    await context.identity.things.setState('dev-1', 'decommissioned', alice, 'end of life');
    for (const serial of [first.serial, second.serial]) expect(await context.identity.certificates.get(serial)).toMatchObject({ status: 'revoked', revocationReason: 'cessationOfOperation' });
  });

  it('marks a certificate "must rotate" and tells listeners', async () => {
    const context = await fresh(dialect);
    await context.identity.things.create({ name: 'dev-1' }, alice);
    const issued = await context.identity.certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1'), via: 'operator' }, alice);
    const asked: string[] = [];
    context.identity.events.on('rotationRequested', (e) => asked.push(e.serial));
    expect((await context.identity.certificates.requestRotation(issued.serial, alice)).mustRotate).toBe(true);
    expect(asked).toEqual([issued.serial]);
  });
});
