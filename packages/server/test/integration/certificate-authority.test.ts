import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { ensureCaHierarchy, loadCaHierarchy } from '../../src/identity/ca-hierarchy.js';
import { loadKeyRing } from '../../src/identity/key-ring-file.js';
import { closeContext, initialize, localActor, openHome, rotateKeyEncryptionKey } from '../../src/node.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect, type TestEnvironment } from '../helpers/environment.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { KeyRing } from '../../src/identity/key-ring.js';
import { KeyCustody } from '../../src/identity/custody/key-custody.js';
import { AuditLog } from '../../src/audit/audit-log.js';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function initialized(dialect: Dialect, extra: Record<string, string> = {}): Promise<TestEnvironment> {
  const env = await testEnvironment(dialect, extra);
  cleanups.push(() => env.cleanup());
  await initialize(env.config());
  return env;
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

describe.each(DIALECTS)('CA bootstrap on %s', (dialect) => {
  it('creates a root and an issuing CA (ECDSA P-256) and writes the chain to ca.pem, which OpenSSL accepts', async () => {
    const env = await initialized(dialect);
    const caFile = join(env.home, 'ca.pem');
    const pems = (await readFile(caFile, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    expect(pems).toHaveLength(2);
    const [issuing, root] = pems.map((pem) => new X509Certificate(pem)) as [X509Certificate, X509Certificate];
    expect(root.ca).toBe(true);
    expect(issuing.ca).toBe(true);
    expect(issuing.checkIssued(root)).toBe(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const rootFile = join(env.home, 'root.pem');
    await writeFile(rootFile, root.toString());
    const issuingFile = join(env.home, 'issuing.pem');
    await writeFile(issuingFile, issuing.toString());
    expect(await openssl('verify', '-x509_strict', '-CAfile', rootFile, issuingFile)).toContain('OK');
    const text = await openssl('x509', '-in', issuingFile, '-noout', '-text');
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    const server = join(env.home, 'server.pem');
    expect(await openssl('verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', rootFile, '-untrusted', issuingFile, server)).toContain('OK');
  });

  it('seals both CA keys in the database: no private key in clear anywhere', async () => {
    const env = await initialized(dialect);
    const { context } = await openHome(env.config(), { create: false });
    cleanups.push(() => closeContext(context));
    const rows = await context.store.db.selectFrom('certificate_authorities').select(['role', 'key_sealed']).execute();
    expect(rows.map((r) => r.role).sort()).toEqual(['issuing', 'root']);
    for (const row of rows) expect(row.key_sealed).toMatch(/^fwseal1\.[a-f0-9]{16}\./);
    const everything = JSON.stringify(await sql`select * from certificate_authorities`.execute(context.store.db));
    expect(everything).not.toContain('PRIVATE KEY');
    expect(await readFile(join(env.home, 'server-key.sealed'), 'utf8')).toMatch(/^fwseal1\./);
  });

  it('is created once, even by nodes bootstrapping together on one empty database', async () => {
    const env = await testEnvironment(dialect);
    cleanups.push(() => env.cleanup());
    const config = env.config();
    await mkdir(env.home, { recursive: true, mode: 0o700 });
    const options = dialect === 'sqlite' ? ({ kind: 'sqlite', file: join(env.home, 'fleetward.db') } as const) : ({ kind: 'postgres', url: config.database.url as string, schema: config.database.schema, poolSize: 2 } as const);
    const stores = [await openStore(options), await openStore(options)];
    for (const store of stores) cleanups.push(() => store.close());
    await migrateToLatest(stores[0] as Store, config.database.schema);
    const custody = new KeyCustody(KeyRing.generate(new Date()), 'sealed', null);
    const results = await Promise.all(
      stores.map((store) => ensureCaHierarchy({ store, custody, audit: new AuditLog(store, new TestClock()), clock: new TestClock() }, config.ca)),
    );
    expect(results.map((r) => r.created).sort()).toEqual([false, true]);
    expect(await (stores[0] as Store).db.selectFrom('certificate_authorities').select('id').execute()).toHaveLength(2);
    expect((await new AuditLog(stores[0] as Store, new TestClock()).verify()).ok).toBe(true);
  });

  it('refuses to start with a CA key sealed under another key ring (a node given the wrong kek.json)', async () => {
    const env = await initialized(dialect);
    const { context } = await openHome(env.config(), { create: false });
    cleanups.push(() => closeContext(context));
    const error = await loadCaHierarchy(context.store, new KeyCustody(KeyRing.generate(new Date()), 'sealed', null), new Date()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetwardError);
    expect((error as FleetwardError).code).toBe('FW_ERR_KEY_UNREADABLE');
  });

  it('rotating the key-encryption key re-seals every key; the node still starts and the old key is gone', async () => {
    const env = await initialized(dialect);
    const { context } = await openHome(env.config(), { create: false });
    const oldId = context.keyRing.activeId;
    const result = await rotateKeyEncryptionKey(context, localActor());
    await closeContext(context);
    expect(result.resealed).toBe(5); // root and issuing CA keys, TLS server key, the two data keys
    const ring = await loadKeyRing(context.layout);
    expect(ring.keyIds).toEqual([result.active]);
    expect(ring.keyIds).not.toContain(oldId);
    const reopened = await openHome(env.config(), { create: false });
    cleanups.push(() => closeContext(reopened.context));
    await expect(loadCaHierarchy(reopened.context.store, reopened.context.identity.custody, new Date())).resolves.toBeDefined();
    expect(await reopened.context.audit.list({ limit: 1000, action: 'kek.rotate' })).toHaveLength(1);
  });
});

describe('server certificate', () => {
  it('names the configured hosts and is re-issued when they change, but not on a plain restart', async () => {
    const env = await initialized('sqlite', { FLEETWARD_TLS_HOSTNAMES: 'fleet.example.com,192.0.2.10' });
    const serverFile = join(env.home, 'server.pem');
    const first = new X509Certificate(await readFile(serverFile, 'utf8'));
    expect(first.subjectAltName).toBe('DNS:fleet.example.com, IP Address:192.0.2.10');
    await initialize(env.config({ FLEETWARD_TLS_HOSTNAMES: 'fleet.example.com,192.0.2.10' }));
    expect(new X509Certificate(await readFile(serverFile, 'utf8')).serialNumber).toBe(first.serialNumber);
    await initialize(env.config({ FLEETWARD_TLS_HOSTNAMES: 'fleet.example.com,192.0.2.11' }));
    const second = new X509Certificate(await readFile(serverFile, 'utf8'));
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.subjectAltName).toBe('DNS:fleet.example.com, IP Address:192.0.2.11');
  });
});
