import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cliEnv, fleetward, serve } from '../helpers/cli.js';
import { csrFor, openssl } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, type TestEnvironment } from '../helpers/environment.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function initialized(dialect: 'sqlite' | 'postgres' = 'sqlite'): Promise<TestEnvironment & { work: string }> {
  const e = await testEnvironment(dialect);
  cleanups.push(() => e.cleanup());
  expect((await fleetward(['init'], e.env)).code).toBe(0);
  return { ...e, work: await mkdtemp(join(tmpdir(), 'fw-identity-cli-')) };
}

function manufacturingCsv(count: number, prefix = 'dev'): string {
  return ['name,type,groups,attr.batch', ...Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, '0')},sensor,line-1,B${i % 7}`)].join('\n') + '\n';
}

describe.each(DIALECTS)('identity CLI on %s', (dialect) => {
  it('registers things, issues from a CSR file to --out (leaf + chain OpenSSL verifies), lists, revokes, decommissions', async () => {
    const e = await initialized(dialect);
    expect((await fleetward(['thing-types', 'create', 'sensor', '--description', 'Temperature'], e.env)).code).toBe(0);
    expect((await fleetward(['groups', 'create', 'site'], e.env)).code).toBe(0);
    expect((await fleetward(['things', 'create', 'dev-1', '--type', 'sensor', '--attr', 'floor=2', '--group', 'site'], e.env)).code).toBe(0);
    const csrFile = join(e.work, 'dev-1.csr');
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(e.work, 'dev-1.key'), '-subj', '/CN=dev-1', '-out', csrFile]);
    const out = join(e.work, 'dev-1.pem');
    const issued = await fleetward(['certs', 'issue', '--thing', 'dev-1', '--csr', csrFile, '--out', out, '--json'], e.env);
    expect(issued.code, issued.stderr).toBe(0);
    const serial = (issued.json as { serial: string }).serial;
    const verified = await openssl(['verify', '-CAfile', join(e.home, 'ca.pem'), '-untrusted', out, out]);
    expect(verified.stdout.trim()).toBe(`${out}: OK`);
    const listed = await fleetward(['things', 'list', '--attr', 'floor=2', '--json'], e.env);
    expect(listed.json).toMatchObject({ things: [{ name: 'dev-1', state: 'active', type: 'sensor', groups: ['site'] }] });
    expect((await fleetward(['certs', 'list', '--thing', 'dev-1'], e.env)).stdout).toContain(serial);
    const ghostCsr = join(e.work, 'ghost.csr');
    await writeFile(ghostCsr, csrFor('ghost'));
    const unknown = await fleetward(['certs', 'issue', '--thing', 'ghost', '--csr', ghostCsr], e.env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('FW_ERR_NOT_FOUND');
    expect((await fleetward(['things', 'create', 'dev-2'], e.env)).code).toBe(0);
    const mismatch = await fleetward(['certs', 'issue', '--thing', 'dev-2', '--csr', csrFile], e.env);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain('FW_ERR_NAME_MISMATCH');
    const bad = await fleetward(['things', 'set-state', 'dev-1', 'pending'], e.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('FW_ERR_INVALID_TRANSITION');
    expect((await fleetward(['things', 'set-state', 'dev-1', 'decommissioned', '--reason', 'broken'], e.env)).code).toBe(0);
    expect((await fleetward(['certs', 'show', serial, '--json'], e.env)).json).toMatchObject({ status: 'revoked', revocationReason: 'cessationOfOperation' });
    expect((await fleetward(['certs', 'revoke', '--reason', 'keyCompromise'], e.env)).code).toBe(2);
  });

  it('provisions a production run from CSRs over the API, and a re-run skips what is done', async () => {
    const e = await initialized(dialect);
    const node = await serve(e.env);
    cleanups.push(() => node.stop());
    const operator = await fleetward(['operator', 'create', 'line', '--role', 'operator', '--json'], e.env);
    const remote = { ...e.env, FLEETWARD_URL: node.ready.apiUrl, FLEETWARD_TOKEN: (operator.json as { token: { token: string } }).token.token };
    expect((await fleetward(['thing-types', 'create', 'sensor'], remote)).code).toBe(0);
    expect((await fleetward(['groups', 'create', 'line-1'], remote)).code).toBe(0);
    const csrDir = join(e.work, 'csrs');
    await mkdir(csrDir);
    const count = 120;
    for (let i = 0; i < count; i++) await writeFile(join(csrDir, `dev-${String(i).padStart(5, '0')}.csr`), csrFor(`dev-${String(i).padStart(5, '0')}`));
    await writeFile(join(e.work, 'devices.csv'), manufacturingCsv(count));
    const out = join(e.work, 'out');
    const run = await fleetward(['things', 'provision', '--from', join(e.work, 'devices.csv'), '--csr-dir', csrDir, '--out', out, '--batch', '50', '--json'], remote);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.json).toMatchObject({ provisioned: count, failed: 0 });
    const again = await fleetward(['things', 'provision', '--from', join(e.work, 'devices.csv'), '--csr-dir', csrDir, '--out', out, '--json'], remote);
    expect(again.json).toMatchObject({ provisioned: 0, skipped: count, failed: 0 });
    const listed = await fleetward(['things', 'list', '--group', 'line-1', '--attr', 'batch=B3', '--limit', '500', '--json'], remote);
    expect((listed.json as { things: { state: string }[] }).things.every((t) => t.state === 'active')).toBe(true);
    expect((await openssl(['verify', '-CAfile', join(e.home, 'ca.pem'), join(out, 'dev-00042.pem')])).stdout).toContain('OK');
  });
});

describe('credential audit from the CLI', () => {
  it('reports findings, as a table or JSON, and --fail-on sets the exit code', async () => {
    const e = await initialized();
    expect((await fleetward(['things', 'create', 'dev-1'], e.env)).code).toBe(0);
    const csr = join(e.work, 'dev-1.csr');
    await writeFile(csr, csrFor('dev-1'));
    expect((await fleetward(['certs', 'issue', '--thing', 'dev-1', '--csr', csr, '--out', join(e.work, 'dev-1.pem')], e.env)).code).toBe(0);
    const clean = await fleetward(['certs', 'audit', '--json', '--fail-on', 'low'], e.env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.json).toMatchObject({ counts: { high: 0, medium: 0, low: 0 }, findings: [] });
    expect((await fleetward(['things', 'set-state', 'dev-1', 'suspended'], e.env)).code).toBe(0);
    const stored = await fleetward(['certs', 'audit', '--stored', '--fail-on', 'medium'], e.env);
    expect(stored.code).toBe(1);
    expect(stored.stdout).toMatch(/medium\s+inactive-thing-certificate\s+dev-1/);
    expect((await fleetward(['certs', 'audit', '--fail-on', 'high', '--kind', 'inactive-thing-certificate'], e.env)).code).toBe(0);
    const bad = await fleetward(['certs', 'audit', '--severity', 'urgent'], e.env);
    expect(bad.code).toBe(2);
  });
});

describe('bulk provisioning survives a crash', () => {
  it('kill -9 in the middle: the re-run finishes every device whole, one certificate each, matching its key file', async () => {
    const e = await initialized();
    expect((await fleetward(['thing-types', 'create', 'sensor'], e.env)).code).toBe(0);
    expect((await fleetward(['groups', 'create', 'line-1'], e.env)).code).toBe(0);
    const count = 1500;
    await writeFile(join(e.work, 'devices.csv'), manufacturingCsv(count));
    const out = join(e.work, 'out');
    const args = ['things', 'provision', '--from', join(e.work, 'devices.csv'), '--generate-keys', '--out', out, '--batch', '25'];
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(e.env) });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));

    // Simulate the narrowest crash too: committed, key written, certificate file not yet renamed.
    const keys = (await readdir(out)).filter((f) => f.endsWith('.key'));
    if (keys.length > 0) {
      const victim = (keys[0] as string).replace(/\.key$/, '');
      await rename(join(out, `${victim}.key`), join(out, `${victim}.key.partial`));
      await rm(join(out, `${victim}.pem`));
    }

    const rerun = await fleetward([...args, '--json'], e.env);
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    const summary = rerun.json as { provisioned: number; recovered: number; skipped: number; failed: number };
    expect(summary.failed).toBe(0);
    expect(summary.provisioned + summary.recovered + summary.skipped).toBe(count);
    if (keys.length > 0) expect(summary.recovered).toBeGreaterThanOrEqual(1);

    const things = await fleetward(['things', 'list', '--state', 'pending', '--json'], e.env);
    expect((things.json as { things: unknown[] }).things).toEqual([]);
    const files = await readdir(out);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    const certificates: { serial: string; subject: string; status: string }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await fleetward(['certs', 'list', '--limit', '500', '--json', ...(after ? ['--after', after] : [])], e.env);
      const body = page.json as { certificates: { serial: string; subject: string; status: string }[]; next: string | null };
      certificates.push(...body.certificates);
      if (body.next === null) break;
      after = body.next;
    }
    expect(certificates.filter((c) => c.status === 'active')).toHaveLength(count);
    expect(new Set(certificates.map((c) => c.subject)).size).toBe(count);
    for (const name of ['dev-00000', 'dev-00749', 'dev-01499']) {
      const certificate = new X509Certificate(await readFile(join(out, `${name}.pem`)));
      const key = createPrivateKey(await readFile(join(out, `${name}.key`), 'utf8'));
      expect(certificate.publicKey.equals(createPublicKey(key)), name).toBe(true);
    }
  }, 120_000);
});
