import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { caSummaries } from '../../src/identity/ca-repository.js';
import { createIssuingCa, createRootCa } from '../../src/identity/certificate-authority.js';
import { spkiOf } from '../../src/identity/keys.js';
import { signIssuingCa } from '../../src/identity/offline-root.js';
import { parseCertificateRequest } from '../../src/identity/pki/csr.js';
import { softwareSigner } from '../../src/identity/pki/signer.js';
import { closeContext, issuingCaOperations, openHome, type NodeContext } from '../../src/node.js';
import { csrFor, openssl } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, type TestEnvironment } from '../helpers/environment.js';
import { refused } from '../helpers/refusals.js';

const alice = { name: 'operator:alice' };
const PASSPHRASE = 'correct horse battery staple';

describe.each(DIALECTS)('issuing CAs under an offline root on %s', (dialect) => {
  let env: TestEnvironment;
  let context: NodeContext;
  let rootKeyPem = '';
  let files: string;

  beforeAll(async () => {
    env = await testEnvironment(dialect);
    files = await mkdtemp(join(tmpdir(), 'fw-offline-root-'));
    ({ context } = await openHome(env.config(), { create: true, hierarchy: { offlineRoot: { passphrase: PASSPHRASE, saveKey: (pem) => Promise.resolve(void (rootKeyPem = pem)) } } }));
  });
  afterAll(async () => {
    await closeContext(context);
    await env.cleanup();
  });

  const chainPem = async () => (await context.identity.cas.hierarchy()).chainPem;
  const sign = async (csrPem: string, overrides: Partial<Parameters<typeof signIssuingCa>[0]> = {}) =>
    signIssuingCa({ rootKeyPem, passphrase: PASSPHRASE, rootCertificatePem: await chainPem(), csrPem, validityDays: 365, now: new Date(), ...overrides });

  it('hands the root key out once, encrypted, and keeps only the root certificate', async () => {
    expect(rootKeyPem).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    const keyFile = join(files, 'root.key');
    await writeFile(keyFile, rootKeyPem);
    expect((await openssl(['pkey', '-in', keyFile, '-passin', `pass:${PASSPHRASE}`, '-noout'])).code).toBe(0);
    expect((await openssl(['pkey', '-in', keyFile, '-passin', 'pass:wrong passphrase', '-noout'])).code).not.toBe(0);
    const root = await context.store.db.selectFrom('certificate_authorities').select('key_sealed').where('role', '=', 'root').executeTakeFirstOrThrow();
    expect(root.key_sealed).toBeNull();
    expect((await caSummaries(context.store.db)).map((c) => [c.role, c.keyOnline])).toEqual([['root', false], ['issuing', true]]);
    const created = await context.audit.list({ limit: 10, action: 'ca.create' });
    expect(created.map((e) => (JSON.parse(e.details) as { custody: string }).custody)).toEqual(['offline', 'sealed']);
  });

  it('refuses an online rotation: the root is not here to sign', async () => {
    const refusal = await refused(issuingCaOperations(context).rotate(alice, { requestRotation: false }));
    expect(refusal.code).toBe('FW_ERR_CA_UNAVAILABLE');
    expect(refusal.message).toContain('issuing-request');
  });

  it('request, offline signing and import make a new issuing CA; old device certificates stay valid and are asked to rotate', async () => {
    const before = await context.identity.cas.hierarchy();
    await context.identity.things.create({ name: 'old-dev' }, alice);
    const old = await context.identity.certificates.issue({ subject: 'old-dev', kind: 'device', csr: csrFor('old-dev'), via: 'operator' }, alice);

    const request = await issuingCaOperations(context).request(alice);
    expect(parseCertificateRequest(request.csrPem).subjectCommonName).toContain('Issuing CA');
    expect(await context.store.db.selectFrom('pending_issuing_cas').select('id').execute()).toEqual([{ id: request.id }]);
    expect((await context.identity.cas.hierarchy()).issuing.id).toBe(before.issuing.id);

    const signed = await sign(request.csrPem);
    expect(signed.keyFingerprint).toBe(request.keyFingerprint);
    const rotation = await issuingCaOperations(context).import(signed.certificatePem, alice, { requestRotation: true });
    expect(rotation).toEqual({ previous: before.issuing.id, current: request.id, rotationRequested: 1 });
    expect(await context.store.db.selectFrom('pending_issuing_cas').select('id').execute()).toEqual([]);
    expect(await context.identity.certificates.get(old.serial)).toMatchObject({ mustRotate: true });

    await context.identity.things.create({ name: 'new-dev' }, alice);
    const fresh = await context.identity.certificates.issue({ subject: 'new-dev', kind: 'device', csr: csrFor('new-dev'), via: 'operator' }, alice);
    const chainFile = join(files, `${dialect}-chain.pem`);
    await writeFile(chainFile, await chainPem());
    for (const [name, pem] of [['new', fresh.certificatePem], ['old', old.certificatePem]] as const) {
      const file = join(files, `${dialect}-${name}.pem`);
      await writeFile(file, pem);
      expect((await openssl(['verify', '-CAfile', chainFile, file])).stdout.trim()).toBe(`${file}: OK`);
    }
    expect(fresh.chainPem).toContain(signed.certificatePem.trim());
    expect((await context.audit.list({ limit: 10, action: 'ca.issuing-request' })).map((e) => e.target)).toEqual([`ca:${request.id}`]);
  });

  it('refuses to import a certificate twice, or one for a key it never asked for', async () => {
    const request = await issuingCaOperations(context).request(alice);
    const signed = await sign(request.csrPem);
    await issuingCaOperations(context).import(signed.certificatePem, alice, { requestRotation: false });
    expect((await refused(issuingCaOperations(context).import(signed.certificatePem, alice, { requestRotation: false }))).code).toBe('FW_ERR_NOT_FOUND');
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const foreign = await sign(csrFor('Intruder Issuing CA', stranger));
    expect((await refused(issuingCaOperations(context).import(foreign.certificatePem, alice, { requestRotation: false }))).code).toBe('FW_ERR_NOT_FOUND');
  });

  it('refuses a certificate for the pending key signed by another root, or already expired; nothing changes', async () => {
    const request = await issuingCaOperations(context).request(alice);
    const active = (await context.identity.cas.hierarchy()).issuing.id;
    const rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = new Date();
    const rogueRoot = await createRootCa({ id: 'f'.repeat(32), organization: 'Fleetward', algorithm: 'ECDSA-P256', validityDays: 3650, now, key: { subjectPublicKeyInfo: spkiOf(rogue.publicKey), signer: softwareSigner(rogue.privateKey) } });
    const asked = parseCertificateRequest(request.csrPem);
    const forged = await createIssuingCa({ id: request.id, organization: 'Fleetward', algorithm: 'ECDSA-P256', validityDays: 365, now, subjectPublicKeyInfo: asked.subjectPublicKeyInfo, subject: asked.subject, root: rogueRoot.certificate, rootSigner: softwareSigner(rogue.privateKey) });
    const forgery = await refused(issuingCaOperations(context).import(forged.certificate.toString(), alice, { requestRotation: false }));
    expect(forgery.code).toBe('FW_ERR_VALIDATION');
    expect(forgery.message).toContain('not signed by the active root');

    const expired = await sign(request.csrPem, { now: new Date(Date.now() - 10 * 86_400_000), validityDays: 2 });
    const late = await refused(issuingCaOperations(context).import(expired.certificatePem, alice, { requestRotation: false }));
    expect(late.code).toBe('FW_ERR_VALIDATION');
    expect(late.message).toContain('not valid now');
    expect((await context.identity.cas.hierarchy()).issuing.id).toBe(active);
    expect(await context.store.db.selectFrom('pending_issuing_cas').select('id').where('id', '=', request.id).execute()).toHaveLength(1);
  });

  it('offline signing refuses a wrong passphrase, a tampered CSR, a certificate of another key, and a non-CA key type', async () => {
    const request = await issuingCaOperations(context).request(alice);
    expect((await refused(sign(request.csrPem, { passphrase: 'not the passphrase' }))).code).toBe('FW_ERR_KEY_UNREADABLE');
    const der = Buffer.from(request.csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await refused(sign(tampered))).code).toBe('FW_ERR_CSR_SIGNATURE');
    const issuingOnly = (await context.identity.cas.hierarchy()).issuing.certificate.toString();
    const mismatch = await refused(sign(request.csrPem, { rootCertificatePem: issuingOnly }));
    expect(mismatch.code).toBe('FW_ERR_VALIDATION');
    expect(mismatch.message).toContain('belongs to none');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect((await refused(sign(csrFor('RSA Issuing CA', rsa)))).code).toBe('FW_ERR_KEY_REJECTED');
  });
});

describe('offline root refusals at creation', () => {
  it('refuses a short passphrase before anything is created, and an offline root for an existing hierarchy', async () => {
    const env = await testEnvironment('sqlite');
    try {
      let saved = false;
      const saveKey = () => Promise.resolve(void (saved = true));
      const short = await refused(openHome(env.config(), { create: true, hierarchy: { offlineRoot: { passphrase: 'too short', saveKey } } }));
      expect(short.code).toBe('FW_ERR_VALIDATION');
      expect(saved).toBe(false);
      const { context } = await openHome(env.config(), { create: true });
      await closeContext(context);
      const again = await refused(openHome(env.config(), { create: true, hierarchy: { offlineRoot: { passphrase: PASSPHRASE, saveKey } } }));
      expect(again.code).toBe('FW_ERR_CONFLICT');
      expect(saved).toBe(false);
    } finally {
      await env.cleanup();
    }
  });

  it('refuses an issuing request while the root is online', async () => {
    const env = await testEnvironment('sqlite');
    const { context } = await openHome(env.config(), { create: true });
    try {
      const refusal = await refused(issuingCaOperations(context).request(alice));
      expect(refusal).toBeInstanceOf(FleetwardError);
      expect(refusal.code).toBe('FW_ERR_CONFLICT');
      expect(await context.store.db.selectFrom('pending_issuing_cas').select('id').execute()).toEqual([]);
    } finally {
      await closeContext(context);
      await env.cleanup();
    }
  });
});
