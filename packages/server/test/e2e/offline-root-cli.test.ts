import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetward, serve } from '../helpers/cli.js';
import { openssl } from '../helpers/csr.js';
import { call } from '../helpers/https-client.js';
import { testEnvironment } from '../helpers/environment.js';

const PASSPHRASE = 'offline root passphrase 42';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

describe('an offline root with the CLI', () => {
  it('init writes the encrypted root key once; the issuing CA is renewed by request, offline signing and import over the API', async () => {
    const e = await testEnvironment('sqlite');
    cleanups.push(() => e.cleanup());
    const work = await mkdtemp(join(tmpdir(), 'fw-offline-cli-'));
    const rootKey = join(work, 'root.key');
    const withPassphrase = { ...e.env, FLEETWARD_ROOT_KEY_PASSPHRASE: PASSPHRASE };

    const init = await fleetward(['ca', 'init', '--offline-root', '--root-key-out', rootKey], withPassphrase);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`root key   ${rootKey}`);
    expect(init.stdout + init.stderr).not.toContain(PASSPHRASE);
    expect((await stat(rootKey)).mode & 0o777).toBe(0o600);
    expect((await openssl(['pkey', '-in', rootKey, '-passin', `pass:${PASSPHRASE}`, '-noout'])).code).toBe(0);
    expect((await fleetward(['ca', 'show'], e.env)).stdout).toMatch(/root\s+active\s+ECDSA-P256 offline/);
    const online = await fleetward(['ca', 'rotate-issuing'], e.env);
    expect(online.code).toBe(1);
    expect(online.stderr).toContain('FW_ERR_CA_UNAVAILABLE');

    const node = await serve(e.env);
    cleanups.push(() => node.stop());
    const operator = await fleetward(['operator', 'create', 'pki-admin', '--role', 'admin', '--json'], e.env);
    const admin = { ...e.env, FLEETWARD_URL: node.ready.apiUrl, FLEETWARD_TOKEN: (operator.json as { token: { token: string } }).token.token };
    const csr = join(work, 'next.csr');
    const requested = await fleetward(['ca', 'issuing-request', '--out', csr, '--json'], admin);
    expect(requested.code, requested.stderr).toBe(0);
    expect((await openssl(['req', '-in', csr, '-verify', '-noout'])).stderr).toContain('verify OK');

    // The offline machine has no data folder and no Fleetward settings, only the three files.
    const offline = await mkdtemp(join(tmpdir(), 'fw-offline-machine-'));
    const rootCert = join(offline, 'ca.pem');
    await writeFile(rootCert, await readFile(join(e.home, 'ca.pem')));
    const signedFile = join(offline, 'next.pem');
    const noPassphrase = await fleetward(['ca', 'sign-issuing', '--root-key', rootKey, '--root-cert', rootCert, '--csr', csr, '--out', signedFile], {}, offline);
    expect(noPassphrase.code).toBe(2);
    expect(noPassphrase.stderr).toContain('FLEETWARD_ROOT_KEY_PASSPHRASE');
    const wrong = await fleetward(['ca', 'sign-issuing', '--root-key', rootKey, '--root-cert', rootCert, '--csr', csr, '--out', signedFile], { FLEETWARD_ROOT_KEY_PASSPHRASE: 'a wrong passphrase' }, offline);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('FW_ERR_KEY_UNREADABLE');
    const signed = await fleetward(['ca', 'sign-issuing', '--root-key', rootKey, '--root-cert', rootCert, '--csr', csr, '--out', signedFile, '--validity-days', '400'], { FLEETWARD_ROOT_KEY_PASSPHRASE: PASSPHRASE }, offline);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toContain((requested.json as { keyFingerprint: string }).keyFingerprint);

    const imported = await fleetward(['ca', 'import-issuing', '--cert', signedFile, '--json'], admin);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.json).toMatchObject({ current: (requested.json as { id: string }).id, rotationRequested: 0 });
    // The running node now serves TLS from the new issuing CA and publishes the new chain.
    const chain = await readFile(join(e.home, 'ca.pem'), 'utf8');
    const newIssuing = new X509Certificate(await readFile(signedFile));
    expect(chain.startsWith(newIssuing.toString().trim())).toBe(true);
    const published = await call(chain, `${node.ready.apiUrl}/pki/ca.pem`);
    expect(published.text).toBe(chain);
    const again = await fleetward(['ca', 'import-issuing', '--cert', signedFile], admin);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('FW_ERR_NOT_FOUND');
  });

  it('refuses --offline-root without a passphrase, a short one, or an existing key file, and never overwrites it', async () => {
    const e = await testEnvironment('sqlite');
    cleanups.push(() => e.cleanup());
    const work = await mkdtemp(join(tmpdir(), 'fw-offline-cli-'));
    const rootKey = join(work, 'root.key');
    const missing = await fleetward(['init', '--offline-root', '--root-key-out', rootKey], e.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('FLEETWARD_ROOT_KEY_PASSPHRASE');
    const short = await fleetward(['init', '--offline-root', '--root-key-out', rootKey], { ...e.env, FLEETWARD_ROOT_KEY_PASSPHRASE: 'short' });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 12 characters');
    await expect(stat(rootKey)).rejects.toThrow();
    expect((await fleetward(['init', '--offline-root'], { ...e.env, FLEETWARD_ROOT_KEY_PASSPHRASE: PASSPHRASE })).code).toBe(2);
    await writeFile(rootKey, 'precious\n');
    const exists = await fleetward(['init', '--offline-root', '--root-key-out', rootKey], { ...e.env, FLEETWARD_ROOT_KEY_PASSPHRASE: PASSPHRASE });
    expect(exists.code).toBe(2);
    expect(exists.stderr).toContain('never overwritten');
    expect(await readFile(rootKey, 'utf8')).toBe('precious\n');
  });
});
