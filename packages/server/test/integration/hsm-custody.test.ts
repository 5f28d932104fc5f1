import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as graphene from 'graphene-pk11';
import { FleetwardError } from '@fleetward/protocol';
import { toPem } from '../../src/identity/pki/certificate.js';
import { createLogger } from '../../src/observability/logger.js';
import { buildNode, closeContext, issuingCaOperations, openHome } from '../../src/node.js';
import { csrFor, openssl } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, type Dialect } from '../helpers/environment.js';
import { call } from '../helpers/https-client.js';
import { pkcs11Env, softHsm, USER_PIN, type SoftHsm } from '../helpers/softhsm.js';
import { LogCapture, startTestNode, type TestNode } from '../helpers/test-node.js';

const alice = { name: 'operator:alice' };
const TOKENS = { sqlite: 'fw-sqlite', postgres: 'fw-postgres' } as const satisfies Record<Dialect, string>;
let hsm: SoftHsm;
let files: string;

beforeAll(async () => {
  hsm = await softHsm([...Object.values(TOKENS), 'fw-wrong-pin', 'fw-spare']);
  files = await mkdtemp(join(tmpdir(), 'fw-hsm-files-'));
});
afterAll(async () => {
  await hsm.cleanup();
});

/** The private key objects on a token, read through PKCS#11 the way an auditor would. */
function tokenPrivateKeys(tokenLabel: string): { label: string; sensitive: boolean; extractable: boolean }[] {
  const module = graphene.Module.load(hsm.module, 'inspect');
  try {
    module.initialize();
  } catch (error) {
    if (!/ALREADY_INITIALIZED/.test((error as Error).message)) throw error;
  }
  const slots = module.getSlots(true);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    if (slot.getToken().label.trim() !== tokenLabel) continue;
    const session = slot.open(graphene.SessionFlag.SERIAL_SESSION);
    try {
      session.login(USER_PIN);
    } catch (error) {
      if (!/ALREADY_LOGGED_IN/.test((error as Error).message)) throw error;
    }
    const found = session.find({ class: graphene.ObjectClass.PRIVATE_KEY });
    const keys = [];
    for (let k = 0; k < found.length; k++) {
      const key = found.items(k).toType<graphene.PrivateKey>();
      keys.push({ label: key.label, sensitive: key.sensitive, extractable: key.extractable });
    }
    session.close();
    return keys;
  }
  throw new Error(`no token ${tokenLabel}`);
}

describe.each(DIALECTS)('CA keys in a PKCS#11 token (SoftHSM2) on %s', (dialect) => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode(dialect, { env: pkcs11Env(hsm, TOKENS[dialect]) });
  });
  afterAll(async () => {
    await t.close();
  });

  it('makes the root and issuing keys in the token: the database holds only references, the keys are sensitive and non-extractable', async () => {
    const rows = await t.node.context.store.db.selectFrom('certificate_authorities').select(['id', 'role', 'key_sealed']).execute();
    expect(rows.map((r) => r.role).sort()).toEqual(['issuing', 'root']);
    for (const row of rows) expect(row.key_sealed).toBe(`pkcs11:fleetward-ca-${row.id}`);
    const keys = tokenPrivateKeys(TOKENS[dialect]);
    expect(keys.map((k) => k.label).sort()).toEqual(rows.map((r) => `fleetward-ca-${r.id}`).sort());
    for (const key of keys) expect(key).toMatchObject({ sensitive: true, extractable: false });
    const created = await t.node.context.audit.list({ limit: 10, action: 'ca.create' });
    expect(created.map((e) => (JSON.parse(e.details) as { custody: string }).custody)).toEqual(['pkcs11', 'pkcs11']);
    expect(t.log.text).not.toContain(USER_PIN);
  });

  it('signs device certificates, CRLs and OCSP answers with the token key; OpenSSL verifies each', async () => {
    const { identity, layout } = t.node.context;
    await identity.things.create({ name: 'hsm-dev' }, alice);
    const issued = await identity.certificates.issue({ subject: 'hsm-dev', kind: 'device', csr: csrFor('hsm-dev'), via: 'operator' }, alice);
    const certFile = join(files, `${dialect}-dev.pem`);
    const issuingFile = join(files, `${dialect}-issuing.pem`);
    await writeFile(certFile, issued.certificatePem);
    await writeFile(issuingFile, t.node.hierarchy.issuing.certificate.toString());
    expect((await openssl(['verify', '-CAfile', layout.caFile, '-untrusted', issuingFile, certFile])).stdout.trim()).toBe(`${certFile}: OK`);

    await identity.certificates.revoke(issued.serial, 'keyCompromise', alice);
    const crlFile = join(files, `${dialect}.crl`);
    await writeFile(crlFile, toPem(await identity.crl.crl(t.node.hierarchy.issuing.id), 'X509 CRL'));
    const crl = await openssl(['crl', '-in', crlFile, '-CAfile', layout.caFile, '-noout', '-text']);
    expect(crl.stderr).toContain('verify OK');
    expect(crl.stdout).toContain(`Serial Number: ${issued.serial.toUpperCase()}`);

    const requestFile = join(files, `${dialect}-ocsp.req`);
    const responseFile = join(files, `${dialect}-ocsp.resp`);
    await openssl(['ocsp', '-issuer', issuingFile, '-cert', certFile, '-reqout', requestFile]);
    const { readFile } = await import('node:fs/promises');
    await writeFile(responseFile, await identity.ocsp.respond(await readFile(requestFile)));
    const answer = await openssl(['ocsp', '-reqin', requestFile, '-respin', responseFile, '-CAfile', layout.caFile, '-verify_other', issuingFile, '-resp_text']);
    expect(answer.stdout + answer.stderr).toContain('Response verify OK');
    expect(answer.stdout).toContain('Cert Status: revoked');
  });

  it('serves HTTPS with a server certificate the token key signed', async () => {
    const { apiUrl } = await t.node.listen();
    const health = await call(t.node.hierarchy.chainPem, `${apiUrl}/healthz`);
    expect(health.status).toBe(200);
  });

  it('rotates the issuing CA into a new token key, and after a restart signs with token keys it finds again', async () => {
    const rotation = await issuingCaOperations(t.node.context).rotate(alice, { requestRotation: false });
    const row = await t.node.context.store.db.selectFrom('certificate_authorities').select('key_sealed').where('id', '=', rotation.current).executeTakeFirstOrThrow();
    expect(row.key_sealed).toBe(`pkcs11:fleetward-ca-${rotation.current}`);
    expect(tokenPrivateKeys(TOKENS[dialect]).map((k) => k.label)).toContain(`fleetward-ca-${rotation.current}`);

    // A second process on the same data folder and token: it opens the keys by reference.
    const { context } = await openHome(t.env.config(), { create: false });
    try {
      await context.identity.things.create({ name: 'after-restart' }, alice);
      const issued = await context.identity.certificates.issue({ subject: 'after-restart', kind: 'device', csr: csrFor('after-restart'), via: 'operator' }, alice);
      const hierarchy = await context.identity.cas.hierarchy();
      expect(hierarchy.issuing.id).toBe(rotation.current);
      const certFile = join(files, `${dialect}-after.pem`);
      const chainFile = join(files, `${dialect}-chain.pem`);
      await writeFile(certFile, issued.certificatePem);
      await writeFile(chainFile, hierarchy.chainPem);
      expect((await openssl(['verify', '-CAfile', chainFile, certFile])).code).toBe(0);
    } finally {
      await closeContext(context);
    }
  });
});

describe('PKCS#11 custody refusals', () => {
  async function initWith(env: Record<string, string>): Promise<{ error: unknown; log: string; cas: number }> {
    const environment = await testEnvironment('sqlite', env);
    const log = new LogCapture();
    try {
      const error = await openHome(environment.config(), { create: true, logger: createLogger('info', log) }).then(
        ({ context }) => closeContext(context).then(() => null),
        (e: unknown) => e,
      );
      const { context } = await openHome(environment.config({ FLEETWARD_PKI_KEY_CUSTODY: 'sealed' }), { create: false });
      const cas = (await context.store.db.selectFrom('certificate_authorities').select('id').execute()).length;
      await closeContext(context);
      return { error, log: log.text, cas };
    } finally {
      await environment.cleanup();
    }
  }

  it('refuses a wrong PIN, creating no CA; the PIN is never logged', async () => {
    const wrongPin = join(files, 'wrong-pin');
    await writeFile(wrongPin, 'not-the-pin-0000\n', { mode: 0o600 });
    const { error, log, cas } = await initWith({ ...pkcs11Env(hsm, 'fw-wrong-pin'), FLEETWARD_PKI_PKCS11_PIN_FILE: wrongPin });
    expect(error).toBeInstanceOf(FleetwardError);
    expect((error as FleetwardError).code).toBe('FW_ERR_CA_UNAVAILABLE');
    expect((error as FleetwardError).message).toContain('CKR_PIN_INCORRECT');
    expect((error as FleetwardError).message).not.toContain('not-the-pin');
    expect(log).not.toContain('not-the-pin');
    expect(cas).toBe(0);
    expect(tokenPrivateKeys('fw-wrong-pin')).toEqual([]);
  });

  it('refuses a token label the module does not have', async () => {
    const { error, cas } = await initWith(pkcs11Env(hsm, 'no-such-token'));
    expect((error as FleetwardError).code).toBe('FW_ERR_CA_UNAVAILABLE');
    expect((error as FleetwardError).message).toContain('no PKCS#11 token labelled no-such-token');
    expect(cas).toBe(0);
  });

  it('refuses a PIN file others can read', async () => {
    const open = join(files, 'open-pin');
    await writeFile(open, `${USER_PIN}\n`);
    await chmod(open, 0o644);
    const { error, cas } = await initWith({ ...pkcs11Env(hsm, 'fw-spare'), FLEETWARD_PKI_PKCS11_PIN_FILE: open });
    expect((error as FleetwardError).code).toBe('FW_ERR_HOME_INSECURE');
    expect(cas).toBe(0);
  });

  it('refuses pkcs11 custody without a module and token, and a token without a PIN', async () => {
    const environment = await testEnvironment('sqlite', { FLEETWARD_PKI_KEY_CUSTODY: 'pkcs11' });
    try {
      const error = await openHome(environment.config(), { create: true }).catch((e: unknown) => e);
      expect((error as FleetwardError).code).toBe('FW_ERR_CONFIG_INVALID');
    } finally {
      await environment.cleanup();
    }
    const withoutPin: Record<string, string> = pkcs11Env(hsm, 'fw-spare');
    delete withoutPin.FLEETWARD_PKI_PKCS11_PIN_FILE;
    const { error } = await initWith(withoutPin);
    expect((error as FleetwardError).code).toBe('FW_ERR_CONFIG_INVALID');
    expect((error as FleetwardError).message).toContain('PIN');
  });

  it('a node whose CA keys are in a token cannot start without it', async () => {
    const environment = await testEnvironment('sqlite');
    try {
      const { context } = await openHome(environment.config(pkcs11Env(hsm, 'fw-spare')), { create: true });
      await closeContext(context);
      const { context: reopened } = await openHome(environment.config(), { create: false });
      try {
        const error = await buildNode(reopened).catch((e: unknown) => e);
        expect((error as FleetwardError).code).toBe('FW_ERR_CA_UNAVAILABLE');
        expect((error as FleetwardError).message).toContain('PKCS#11');
      } finally {
        await closeContext(reopened);
      }
    } finally {
      await environment.cleanup();
    }
  });
});

