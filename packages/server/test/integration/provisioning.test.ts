import { X509Certificate } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetwardError } from '@fleetward/protocol';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { csrFor, p256 } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';
import { refusalCode, refusalReason } from '../helpers/refusals.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

async function fresh(dialect: Dialect, clock = new TestClock()): Promise<NodeContext> {
  const env = await testEnvironment(dialect);
  const { context } = await openHome(env.config(), { create: true, clock });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  await context.identity.thingTypes.create({ name: 'thermostat' }, admin);
  await context.identity.groups.create({ name: 'fleet' }, admin);
  await context.identity.templates.create('thermo', { namePattern: 'thermo-[0-9a-f]{6}', thingType: 'thermostat', groups: ['fleet'], attributes: { vendor: 'acme' }, parameters: { serial: '[A-Z0-9]{8}' } }, admin);
  return context;
}

describe.each(DIALECTS)('fleet provisioning by claim on %s', (dialect) => {
  it('a device with an enrollment token gets its own identity from the template, in one step', async () => {
    const context = await fresh(dialect);
    const token = await context.identity.enrollmentTokens.issue('thermo', { uses: 1, ttlHours: 1 }, admin);
    const { thing, certificate } = await context.identity.claims.claim({ template: 'thermo', credential: { kind: 'token', token: token.token }, csr: csrFor('thermo-00ab12'), parameters: { serial: 'SN123456' }, via: 'est', source: '192.0.2.7' });
    expect(thing).toBe('thermo-00ab12');
    expect(await context.identity.things.get(thing)).toMatchObject({ state: 'active', type: 'thermostat', groups: ['fleet'], attributes: { vendor: 'acme', serial: 'SN123456' } });
    expect(await context.identity.certificates.get(certificate.serial)).toMatchObject({ issuedVia: 'est', template: 'thermo', thing: 'thermo-00ab12' });
    expect((await context.identity.enrollmentTokens.list('thermo'))[0]?.usesLeft).toBe(0);
    const [claimed] = await context.audit.list({ limit: 10, action: 'provisioning.claim' });
    expect(claimed).toMatchObject({ actor: 'claim:thermo', source: '192.0.2.7', outcome: 'success', target: 'thing:thermo-00ab12' });
  });

  it('refuses every bad claim, audits it, and creates nothing (the token is not spent)', async () => {
    const clock = new TestClock();
    const context = await fresh(dialect, clock);
    const { templates, enrollmentTokens, claims } = context.identity;
    await templates.create('other', { namePattern: 'x-.*' }, admin);
    await templates.create('off', { namePattern: 'off-.*' }, admin);
    await templates.setEnabled('off', false, admin);
    const good = await enrollmentTokens.issue('thermo', { uses: 5, ttlHours: 1 }, admin);
    const revoked = await enrollmentTokens.issue('thermo', { uses: 1, ttlHours: 1 }, admin);
    await enrollmentTokens.revoke(revoked.id, admin);
    const otherToken = await enrollmentTokens.issue('other', { uses: 1, ttlHours: 1 }, admin);
    const offToken = await enrollmentTokens.issue('off', { uses: 1, ttlHours: 1 }, admin);
    const claim = (token: string, name = 'thermo-abcdef', parameters: Record<string, string> = { serial: 'AB12CD34' }, template = 'thermo') =>
      claims.claim({ template, credential: { kind: 'token', token }, csr: csrFor(name), parameters, via: 'est' });
    const cases: [string, () => Promise<unknown>, string][] = [
      ['an unknown token', () => claim(`fwe_${'A'.repeat(43)}`), 'FW_ERR_ENROLLMENT_DENIED:unknown'],
      ['a malformed token', () => claim('letmein'), 'FW_ERR_ENROLLMENT_DENIED:unknown'],
      ['a revoked token', () => claim(revoked.token), 'FW_ERR_ENROLLMENT_DENIED:revoked'],
      ["another template's token", () => claim(otherToken.token), 'FW_ERR_ENROLLMENT_DENIED:other-template'],
      ['a disabled template', () => claim(offToken.token, 'off-1', {}, 'off'), 'FW_ERR_ENROLLMENT_DENIED:template-disabled'],
      ['an unknown template', () => claim(good.token, 'thermo-abcdef', { serial: 'AB12CD34' }, 'nope'), 'FW_ERR_ENROLLMENT_DENIED:other-template'],
      ['a name outside the pattern', () => claim(good.token, 'thermo-XYZ'), 'FW_ERR_NAME_MISMATCH'],
      ['a missing parameter', () => claim(good.token, 'thermo-abcdef', {}), 'FW_ERR_VALIDATION'],
      ['a parameter that does not match', () => claim(good.token, 'thermo-abcdef', { serial: 'lower' }), 'FW_ERR_VALIDATION'],
      ['an unknown parameter', () => claim(good.token, 'thermo-abcdef', { serial: 'AB12CD34', admin: 'true' }), 'FW_ERR_VALIDATION'],
    ];
    for (const [what, attempt, expected] of cases) expect(await refusalReason(attempt()), what).toBe(expected);
    expect((await context.identity.things.list({ limit: 100 })).things).toEqual([]);
    expect((await enrollmentTokens.list('thermo')).find((t) => t.id === good.id)?.usesLeft).toBe(5);
    const denied = (await context.audit.list({ limit: 100, action: 'provisioning.claim' })).filter((e) => e.outcome === 'denied');
    expect(denied).toHaveLength(cases.length);

    clock.advance(3_600_001);
    expect(await refusalReason(claim(good.token))).toBe('FW_ERR_ENROLLMENT_DENIED:expired');
  });

  it('a one-time token serves one device only, even when two race for it', async () => {
    const context = await fresh(dialect);
    const token = await context.identity.enrollmentTokens.issue('thermo', { uses: 1, ttlHours: 1 }, admin);
    const attempts = ['thermo-000001', 'thermo-000002'].map((name) => context.identity.claims.claim({ template: 'thermo', credential: { kind: 'token', token: token.token }, csr: csrFor(name), parameters: { serial: 'AB12CD34' }, via: 'est' }));
    const results = await Promise.allSettled(attempts);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as FleetwardError).details.reason).toBe('used-up');
    expect((await context.identity.things.list({ limit: 10 })).things).toHaveLength(1);
  });

  it('a claim certificate provisions for its own template only, and never once revoked; a device certificate is not a claim certificate', async () => {
    const context = await fresh(dialect);
    const { certificates, claims, templates } = context.identity;
    await templates.create('other', { namePattern: 'x-.*' }, admin);
    const claimIssued = await certificates.issue({ subject: 'thermo', kind: 'claim', csr: csrFor('thermo'), via: 'operator', template: 'thermo' }, admin);
    const claimCertificate = new X509Certificate(claimIssued.certificatePem);
    const viaCert = (name: string, certificate: X509Certificate, template = 'thermo') => claims.claim({ template, credential: { kind: 'certificate', certificate }, csr: csrFor(name), parameters: { serial: 'AB12CD34' }, via: 'est' });
    expect((await viaCert('thermo-0000aa', claimCertificate)).thing).toBe('thermo-0000aa');
    expect(await refusalReason(viaCert('x-1', claimCertificate, 'other'))).toBe('FW_ERR_ENROLLMENT_DENIED:other-template');
    const device = new X509Certificate((await certificates.list({ limit: 10, thing: 'thermo-0000aa' })).certificates[0]?.pem ?? '');
    expect(await refusalReason(viaCert('thermo-0000bb', device))).toBe('FW_ERR_ENROLLMENT_DENIED:not-a-claim-certificate');
    await certificates.revoke(claimIssued.serial, 'privilegeWithdrawn', admin);
    expect(await refusalReason(viaCert('thermo-0000cc', claimCertificate))).toBe('FW_ERR_CERT_REVOKED');
  });

  it('renewal: a new key, the old certificate kept for the overlap window then retired; refused for the same key, a revoked or a suspended device', async () => {
    const clock = new TestClock();
    const context = await fresh(dialect, clock);
    const { things, certificates } = context.identity;
    await things.create({ name: 'dev-1' }, admin);
    const keys = p256();
    const first = await certificates.issue({ subject: 'dev-1', kind: 'device', csr: csrFor('dev-1', keys), via: 'operator' }, admin);
    const current = new X509Certificate(first.certificatePem);
    expect(await refusalCode(certificates.renew({ current, csr: csrFor('dev-1', keys), via: 'est' }))).toBe('FW_ERR_KEY_REUSED');
    expect(await refusalCode(certificates.renew({ current, csr: csrFor('dev-2'), via: 'est' }))).toBe('FW_ERR_NAME_MISMATCH');
    const renewed = await certificates.renew({ current, csr: csrFor('dev-1'), via: 'est', source: '192.0.2.9' });
    expect(await certificates.get(renewed.serial)).toMatchObject({ replaces: first.serial, issuedVia: 'est', issuedBy: 'thing:dev-1' });
    expect((await certificates.get(first.serial)).status).toBe('active');
    // Within the renewal window the old certificate stays valid: nothing to retire yet.
    expect(await certificates.retireSuperseded(clock.now(), { name: 'node' })).toEqual([]);
    clock.advance(7 * 86_400_000 + 1);
    expect(await certificates.retireSuperseded(clock.now(), { name: 'node' })).toEqual([first.serial]);
    expect(await certificates.get(first.serial)).toMatchObject({ status: 'revoked', revocationReason: 'superseded' });
    expect(await refusalCode(certificates.renew({ current, csr: csrFor('dev-1'), via: 'est' }))).toBe('FW_ERR_CERT_REVOKED');
    await things.setState('dev-1', 'suspended', admin);
    expect(await refusalCode(certificates.renew({ current: new X509Certificate(renewed.certificatePem), csr: csrFor('dev-1'), via: 'est' }))).toBe('FW_ERR_THING_STATE');
  });
});
