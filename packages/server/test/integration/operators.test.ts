import { afterEach, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/access/api-tokens.js';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';
import { refusalCode } from '../helpers/refusals.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:root-admin' };

async function fresh(dialect: Dialect, clock = new TestClock()): Promise<{ context: NodeContext; bootstrap: string }> {
  const env = await testEnvironment(dialect);
  const { context, report } = await openHome(env.config(), { create: true, clock });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  if (!report.bootstrapToken) throw new Error('no bootstrap token');
  return { context, bootstrap: report.bootstrapToken.token };
}

async function counts(context: NodeContext) {
  const operators = await context.store.db.selectFrom('operators').select('id').execute();
  const tokens = await context.store.db.selectFrom('api_tokens').select('id').execute();
  return { operators: operators.length, tokens: tokens.length, audit: (await context.audit.verify()).checked };
}

describe.each(DIALECTS)('operators and API tokens on %s', (dialect) => {
  it('first start creates one bootstrap admin with a token that expires (hours, not months), and never again', async () => {
    const clock = new TestClock();
    const { context, bootstrap } = await fresh(dialect, clock);
    const principal = await context.operators.authenticate(bootstrap);
    expect(principal).toMatchObject({ operator: 'bootstrap', role: 'admin', scopes: ['api', 'metrics'] });
    expect(await context.operators.bootstrap(24)).toBeNull();
    clock.advance(24 * 3_600_000);
    expect(await refusalCode(context.operators.authenticate(bootstrap))).toBe('FW_ERR_TOKEN_EXPIRED');
  });

  it('stores only the SHA-256 of each token, never the token', async () => {
    const { context } = await fresh(dialect);
    const { token } = await context.operators.create({ name: 'alice', role: 'admin' }, admin);
    const rows = await context.store.db.selectFrom('api_tokens').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(token.token);
    expect(rows.map((r) => r.token_hash)).toContain(hashToken(token.token));
    expect(token.token).toMatch(/^fwt_[A-Za-z0-9_-]{43}$/);
  });

  it('creates, lists, issues and revokes, auditing each change with who did it', async () => {
    const { context } = await fresh(dialect);
    const { operator, token } = await context.operators.create({ name: 'alice', role: 'auditor', ttlDays: 7 }, admin);
    expect(operator).toMatchObject({ name: 'alice', role: 'auditor', createdBy: admin.name, revokedAt: null });
    const second = await context.operators.issueToken('alice', { scopes: ['metrics'] }, admin);
    expect((await context.operators.list()).map((o) => o.name)).toEqual(['alice', 'bootstrap']);
    await context.operators.revokeToken(token.id, admin);
    expect(await refusalCode(context.operators.authenticate(token.token))).toBe('FW_ERR_TOKEN_REVOKED');
    expect(await context.operators.authenticate(second.token)).toMatchObject({ operator: 'alice', scopes: ['metrics'] });
    await context.operators.revoke('alice', admin);
    expect(await refusalCode(context.operators.authenticate(second.token))).toBe('FW_ERR_TOKEN_REVOKED');
    expect((await context.operators.list()).map((o) => o.name)).toEqual(['bootstrap']);
    expect((await context.operators.list({ includeRevoked: true })).map((o) => o.name)).toEqual(['alice', 'bootstrap']);
    const actions = (await context.audit.list({ limit: 100, actor: admin.name })).map((e) => `${e.action} ${e.target}`);
    expect(actions).toEqual(['operator.create operator:alice', `token.create token:${token.id}`, `token.create token:${second.id}`, `token.revoke token:${token.id}`, 'operator.revoke operator:alice']);
  });

  it('refuses bad requests without changing anything', async () => {
    const { context } = await fresh(dialect);
    await context.operators.create({ name: 'alice', role: 'viewer' }, admin);
    const before = await counts(context);
    expect(await refusalCode(context.operators.create({ name: 'alice', role: 'admin' }, admin))).toBe('FW_ERR_CONFLICT');
    for (const name of ['', 'Alice', '-x', 'a b', 'x'.repeat(65), 'ümlaut']) {
      expect(await refusalCode(context.operators.create({ name, role: 'viewer' }, admin))).toBe('FW_ERR_VALIDATION');
    }
    expect(await refusalCode(context.operators.create({ name: 'bob', role: 'viewer', ttlDays: 0 }, admin))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(context.operators.create({ name: 'bob', role: 'viewer', ttlDays: 366 }, admin))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(context.operators.create({ name: 'bob', role: 'viewer', scopes: [] }, admin))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(context.operators.issueToken('nobody', {}, admin))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(context.operators.revoke('nobody', admin))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(context.operators.revokeToken('tok_0000000000000000', admin))).toBe('FW_ERR_NOT_FOUND');
    expect(await counts(context)).toEqual(before);
  });

  it('the last active admin cannot be revoked (nobody could administer the node any more)', async () => {
    const { context } = await fresh(dialect);
    expect(await refusalCode(context.operators.revoke('bootstrap', admin))).toBe('FW_ERR_CONFLICT');
    await context.operators.create({ name: 'alice', role: 'admin' }, admin);
    await context.operators.revoke('bootstrap', admin);
    expect(await refusalCode(context.operators.revoke('alice', admin))).toBe('FW_ERR_CONFLICT');
  });

  it('refuses malformed and unknown tokens before and after the lookup', async () => {
    const { context, bootstrap } = await fresh(dialect);
    for (const token of ['', 'fwt_short', `${bootstrap}x`, bootstrap.replace('fwt_', 'fwx_'), `fwt_${'A'.repeat(43)}`]) {
      expect(await refusalCode(context.operators.authenticate(token))).toBe('FW_ERR_TOKEN_INVALID');
    }
  });

  it('records when a token was last used', async () => {
    const clock = new TestClock();
    const { context, bootstrap } = await fresh(dialect, clock);
    await context.operators.authenticate(bootstrap);
    const [operator] = await context.operators.list();
    expect(operator?.tokens[0]?.lastUsedAt).toBe(clock.now().toISOString());
  });
});
