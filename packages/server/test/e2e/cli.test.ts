import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetward, serve, type RunningServe } from '../helpers/cli.js';
import { DIALECTS, testEnvironment, type TestEnvironment } from '../helpers/environment.js';
import { closedPort } from '../helpers/refusals.js';

const execute = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function env(dialect: 'sqlite' | 'postgres' = 'sqlite', extra: Record<string, string> = {}): Promise<TestEnvironment> {
  const e = await testEnvironment(dialect, extra);
  cleanups.push(() => e.cleanup());
  return e;
}

async function running(e: TestEnvironment, extra: Record<string, string> = {}): Promise<RunningServe> {
  const node = await serve({ ...e.env, ...extra });
  cleanups.push(() => (node.child.exitCode === null ? node.stop() : Promise.resolve()));
  return node;
}

async function curl(caFile: string, url: string): Promise<string> {
  const { stdout } = await execute('curl', ['--silent', '--show-error', '--fail', '--cacert', caFile, url]);
  return stdout;
}

describe('fleetward CLI usage', () => {
  it('--help works everywhere and exits 0', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['init', '--help'], ['config', 'check', '--help'], ['operator', 'create', '--help'], ['audit', 'verify', '--help'], ['kek', 'rotate', '--help']]) {
      const result = await fleetward(args, {});
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toContain('Usage: fleetward');
    }
  });

  it('bad usage exits 2: unknown command, unknown option, missing argument, bad choice', async () => {
    const e = await env();
    for (const args of [['launch'], ['serve', '--port', '1'], ['operator', 'create'], ['operator', 'create', 'x'], ['operator', 'create', 'x', '--role', 'god'], ['audit', 'events', '--limit', '0']]) {
      expect((await fleetward(args, e.env)).code, args.join(' ')).toBe(2);
    }
  });

  it('config check prints the effective configuration with secrets redacted', async () => {
    const e = await env('sqlite', { FLEETWARD_DATABASE_URL: 'postgres://fleet:hunter2@db.example:5432/fleet', FLEETWARD_API_PORT: '9443' });
    const human = await fleetward(['config', 'check'], e.env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/api\.port\s+9443\s+env FLEETWARD_API_PORT/);
    expect(human.stdout).not.toContain('hunter2');
    const json = await fleetward(['config', 'check', '--json', '--api-port', '9444'], e.env);
    expect(json.json).toMatchObject({ valid: true, config: { 'api.port': 9444, 'database.url': 'postgres://fleet:***@db.example:5432/fleet' }, sources: { 'api.port': 'flag --api-port' } });
  });

  it('invalid configuration stops with exit 2, naming key, value and expectation', async () => {
    const e = await env('sqlite', { FLEETWARD_TLS_MIN_VERSION: 'TLSv1.0' });
    for (const command of [['config', 'check'], ['serve'], ['init']]) {
      const result = await fleetward(command, e.env);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('tls.minVersion = "TLSv1.0" (from env FLEETWARD_TLS_MIN_VERSION): expected one of TLSv1.2, TLSv1.3');
      expect(result.stderr).toContain('FW_ERR_CONFIG_INVALID');
    }
    const json = await fleetward(['config', 'check', '--json'], e.env);
    expect(json.json).toMatchObject({ error: { code: 'FW_ERR_CONFIG_INVALID', details: { problems: [{ key: 'tls.minVersion' }] } } });
  });
});

describe('fleetward init', () => {
  it('creates a private data folder, prints the bootstrap token once, and is idempotent', async () => {
    const e = await env();
    const first = await fleetward(['init', '--json'], e.env);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({ initialized: true, caCreated: true, bootstrapToken: { token: expect.stringMatching(/^fwt_/) } });
    expect((await stat(e.home)).mode & 0o777).toBe(0o700);
    for (const file of ['kek.json', 'fleetward.db', 'server-key.sealed']) expect((await stat(join(e.home, file))).mode & 0o777, file).toBe(0o600);
    const second = await fleetward(['init'], e.env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('already initialized');
    expect(second.stdout).not.toContain('fwt_');
  });

  it.each(DIALECTS)('on %s, refuses a world-readable data folder or key file (exit 2) and a corrupt key file (exit 1)', async (dialect) => {
    const e = await env(dialect);
    expect((await fleetward(['init'], e.env)).code).toBe(0);
    await chmod(e.home, 0o755);
    let result = await fleetward(['serve'], e.env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`chmod 700 ${e.home}`);
    expect(result.stderr).toContain('FW_ERR_HOME_INSECURE');
    await chmod(e.home, 0o700);
    const kek = join(e.home, 'kek.json');
    await chmod(kek, 0o644);
    result = await fleetward(['serve'], e.env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${kek}`);
    await chmod(kek, 0o600);
    const original = await readFile(kek, 'utf8');
    await writeFile(kek, original.replace(/"key": "[^"]+"/, '"key": "dG9vIHNob3J0"'));
    result = await fleetward(['serve'], e.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FW_ERR_KEY_UNREADABLE');
    await writeFile(kek, original);
    const sealed = join(e.home, 'server-key.sealed');
    await writeFile(sealed, `${(await readFile(sealed, 'utf8')).slice(0, -8)}AAAAAAAA`);
    result = await fleetward(['serve'], e.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sealed secret tls:server cannot be opened');
  });

  it('commands on a data folder that was never initialized say so (exit 1)', async () => {
    const e = await env();
    const result = await fleetward(['operator', 'list'], e.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FW_ERR_HOME_NOT_INITIALIZED');
  });
});

describe('npm start quick start', () => {
  it('serves with embedded defaults in ./.fleetward on 127.0.0.1:8443, and curl trusts .fleetward/ca.pem', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'fw-quickstart-'));
    const node = await serve({}, [], cwd);
    cleanups.push(() => node.stop());
    expect(node.ready.apiUrl).toBe('https://127.0.0.1:8443');
    expect(node.ready.caFile).toBe(join(cwd, '.fleetward', 'ca.pem'));
    expect(node.ready.bootstrapToken?.token).toMatch(/^fwt_/);
    const { stdout } = await execute('curl', ['--silent', '--fail', '--cacert', '.fleetward/ca.pem', 'https://127.0.0.1:8443/readyz'], { cwd });
    expect(JSON.parse(stdout)).toMatchObject({ status: 'ready' });
    expect(await node.stop()).toBe(0);
  });
});

describe.each(DIALECTS)('fleetward serve on %s', (dialect) => {
  it('prints URLs and the token on first start only; drains and exits 0 on SIGTERM and SIGINT', async () => {
    const e = await env(dialect);
    const first = await running(e);
    expect(first.ready).toMatchObject({ apiUrl: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/), caFile: join(e.home, 'ca.pem'), home: e.home });
    const token = first.ready.bootstrapToken?.token ?? '';
    expect(token).toMatch(/^fwt_/);
    expect(JSON.parse(await curl(first.ready.caFile, `${first.ready.apiUrl}/readyz`))).toMatchObject({ status: 'ready', checks: { store: { detail: `${dialect} reachable` } } });
    expect(first.output().stdout.split('\n').filter((l) => l.includes(token))).toHaveLength(1);
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output().stderr).toContain('SIGTERM: draining and stopping');

    const second = await running(e);
    expect(second.ready.bootstrapToken).toBeNull();
    expect(await second.stop('SIGINT')).toBe(0);
    const events = await fleetward(['audit', 'events', '--json', '--limit', '1000'], e.env);
    const actions = (events.json as { events: { action: string }[] }).events.map((ev) => ev.action);
    expect(actions.filter((a) => a === 'node.start')).toHaveLength(2);
    expect(actions.filter((a) => a === 'node.stop')).toHaveLength(2);
  });

  it('a second node on a port in use fails with a clear message (exit 1)', async () => {
    const e = await env(dialect);
    const first = await running(e);
    const port = new URL(first.ready.apiUrl).port;
    const second = await fleetward(['serve'], { ...e.env, FLEETWARD_API_PORT: port });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(second.stderr).toContain('FW_ERR_PORT_IN_USE');
    expect(JSON.parse(await curl(first.ready.caFile, `${first.ready.apiUrl}/healthz`))).toEqual({ status: 'ok' });
  });

  it('operators are managed locally and over the API, with role checks and exit codes', async () => {
    const e = await env(dialect);
    const node = await running(e);
    const remote = (token: string) => ({ ...e.env, FLEETWARD_URL: node.ready.apiUrl, FLEETWARD_TOKEN: token });
    const bootstrap = node.ready.bootstrapToken?.token ?? '';

    const alice = await fleetward(['operator', 'create', 'alice', '--role', 'admin', '--json'], remote(bootstrap));
    expect(alice.code).toBe(0);
    const aliceToken = (alice.json as { token: { token: string } }).token.token;
    const vic = await fleetward(['operator', 'create', 'vic', '--role', 'viewer', '--json'], remote(aliceToken));
    const vicToken = (vic.json as { token: { token: string } }).token.token;

    const refused = await fleetward(['operator', 'create', 'eve', '--role', 'admin'], remote(vicToken));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FW_ERR_FORBIDDEN');
    const badToken = await fleetward(['operator', 'list'], remote(`fwt_${'x'.repeat(43)}`));
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('FW_ERR_TOKEN_INVALID');
    expect((await fleetward(['operator', 'list'], { ...e.env, FLEETWARD_URL: node.ready.apiUrl })).code).toBe(2);

    const token = await fleetward(['operator', 'token', 'vic', '--scope', 'metrics', '--json'], remote(aliceToken));
    const tokenId = (token.json as { id: string }).id;
    expect(await curl(e.home + '/ca.pem', `${node.ready.apiUrl}/healthz`)).toContain('ok');
    expect((await fleetward(['operator', 'revoke-token', tokenId], remote(aliceToken))).code).toBe(0);
    expect((await fleetward(['operator', 'revoke-token', tokenId], remote(aliceToken))).code).toBe(1);

    // Locally, on the data folder, beside the running node (break-glass recovery).
    const local = await fleetward(['operator', 'create', 'carol', '--role', 'auditor'], e.env);
    expect(local.code).toBe(0);
    expect(local.stdout).toMatch(/fwt_[A-Za-z0-9_-]{43}/);
    const listed = await fleetward(['operator', 'list', '--json'], remote(aliceToken));
    expect((listed.json as { operators: { name: string }[] }).operators.map((o) => o.name)).toEqual(['alice', 'bootstrap', 'carol', 'vic']);
    expect((await fleetward(['operator', 'revoke', 'bootstrap'], remote(aliceToken))).code).toBe(0);
    expect((await fleetward(['operator', 'list'], remote(bootstrap))).stderr).toContain('FW_ERR_TOKEN_REVOKED');

    const audit = await fleetward(['audit', 'verify', '--json'], remote(aliceToken));
    expect(audit.code).toBe(0);
    expect(audit.json).toMatchObject({ ok: true, firstBreak: null });
  });

  it('audit verify exits 1 and names the first tampered event', async () => {
    const e = await env(dialect);
    expect((await fleetward(['init'], e.env)).code).toBe(0);
    for (const name of ['a1', 'a2', 'a3']) expect((await fleetward(['operator', 'create', name, '--role', 'viewer'], e.env)).code).toBe(0);
    expect((await fleetward(['audit', 'verify'], e.env)).stdout).toMatch(/Audit trail intact: \d+ events verified/);
    await tamper(e, "update audit_events set actor = 'local:mallory' where seq = 5");
    const result = await fleetward(['audit', 'verify'], e.env);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('Audit trail BROKEN at event 5');
    const json = await fleetward(['audit', 'verify', '--json'], e.env);
    expect(json.code).toBe(1);
    expect(json.json).toMatchObject({ ok: false, firstBreak: { kind: 'modified', seq: 5 } });
  });
});

/** An attacker with owner rights on the database: removes the append-only guard, then edits. */
async function tamper(e: TestEnvironment, statement: string): Promise<void> {
  if (e.dialect === 'sqlite') {
    const db = new Database(join(e.home, 'fleetward.db'));
    db.exec('drop trigger audit_events_no_update; drop trigger audit_events_no_delete');
    db.exec(statement);
    db.close();
    return;
  }
  const client = new pg.Client({ connectionString: e.env.FLEETWARD_DATABASE_URL, options: `-c search_path=${e.env.FLEETWARD_DATABASE_SCHEMA}` });
  await client.connect();
  await client.query('alter table audit_events disable trigger user');
  await client.query(statement);
  await client.end();
}

describe('fleetward serve with PostgreSQL unreachable', () => {
  it('stops with FW_ERR_STORE_UNAVAILABLE (exit 1), naming the server but not the password', async () => {
    const port = await closedPort();
    const e = await env('sqlite', { FLEETWARD_DATABASE_URL: `postgres://fleet:hunter2@127.0.0.1:${port}/fleet` });
    const result = await fleetward(['serve'], e.env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FW_ERR_STORE_UNAVAILABLE');
    expect(result.stderr).toContain(`127.0.0.1:${port}`);
    expect(result.stderr + result.stdout).not.toContain('hunter2');
  });
});

describe('fleetward kek rotate', () => {
  it('re-seals every key; the node starts afterwards', async () => {
    const e = await env();
    expect((await fleetward(['init'], e.env)).code).toBe(0);
    const before = JSON.parse(await readFile(join(e.home, 'kek.json'), 'utf8')) as { active: string };
    const rotated = await fleetward(['kek', 'rotate', '--json'], e.env);
    expect(rotated.code).toBe(0);
    // The root and issuing CA keys, the TLS server key, and the data keys (pseudonyms, token vault).
    expect(rotated.json).toMatchObject({ previous: [before.active], resealed: 5 });
    const node = await running(e);
    expect(JSON.parse(await curl(node.ready.caFile, `${node.ready.apiUrl}/readyz`))).toMatchObject({ status: 'ready' });
  });
});
