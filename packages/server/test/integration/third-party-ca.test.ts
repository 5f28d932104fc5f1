import { X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';
import { externalCa } from '../helpers/external-ca.js';
import { refusalReason } from '../helpers/refusals.js';

const admin = { name: 'operator:admin' };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fresh(dialect: Dialect, clock?: TestClock): Promise<{ context: NodeContext; dir: string }> {
  const env = await testEnvironment(dialect);
  const { context } = await openHome(env.config(), { create: true, ...(clock && { clock }) });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  await context.identity.groups.create({ name: 'acme' }, admin);
  await context.identity.templates.create('acme-jitr', { namePattern: 'acme-[0-9]+', groups: ['acme'], attributes: { maker: 'acme' } }, admin);
  return { context, dir: await mkdtemp(join(tmpdir(), 'fw-3p-')) };
}

describe.each(DIALECTS)('third-party CA registration and just-in-time registration on %s', (dialect) => {
  it('registers a CA only with proof of possession of its key over a fresh, unused code', async () => {
    const { context, dir } = await fresh(dialect);
    const cas = context.identity.thirdPartyCas;
    const acme = await externalCa(dir, 'acme');
    const mallory = await externalCa(dir, 'mallory');
    const { code: good } = await cas.registrationCode();
    const register = (verificationPem: string, caPem = acme.pem) => cas.register({ caPem, verificationPem, template: 'acme-jitr' }, admin);
    expect(await refusalReason(register(await mallory.sign(good)))).toBe('FW_ERR_ENROLLMENT_DENIED:no-proof-of-possession');
    expect(await refusalReason(register(await acme.sign('not-a-code')))).toBe('FW_ERR_ENROLLMENT_DENIED:bad-registration-code');
    expect(await refusalReason(register(await acme.sign('0'.repeat(40))))).toBe('FW_ERR_ENROLLMENT_DENIED:bad-registration-code');
    const leafOnly = await acme.sign('acme-1');
    expect(await refusalReason(register(await acme.sign(good), leafOnly))).toBe('FW_ERR_VALIDATION');
    expect(await refusalReason(register('garbage'))).toBe('FW_ERR_VALIDATION');
    const registered = await register(await acme.sign(good));
    expect(registered).toMatchObject({ role: 'external', status: 'active', keyOnline: false });
    expect(await refusalReason(register(await acme.sign(good)))).toBe('FW_ERR_ENROLLMENT_DENIED:bad-registration-code');
    const { code: another } = await cas.registrationCode();
    expect(await refusalReason(register(await acme.sign(another)))).toBe('FW_ERR_CONFLICT');
    const audit = await context.audit.list({ limit: 100, action: 'ca.register' });
    expect(audit.filter((e) => e.outcome === 'denied')).toHaveLength(7);
    expect(audit.filter((e) => e.outcome === 'success')).toHaveLength(1);
  });

  it('an expired registration code is refused', async () => {
    const clock = new TestClock(Date.now() + 60_000);
    const { context, dir } = await fresh(dialect, clock);
    const acme = await externalCa(dir, 'acme');
    const { code: stale } = await context.identity.thirdPartyCas.registrationCode();
    clock.advance(24 * 3_600_000 + 1);
    expect(await refusalReason(context.identity.thirdPartyCas.register({ caPem: acme.pem, verificationPem: await acme.sign(stale) }, admin))).toBe('FW_ERR_ENROLLMENT_DENIED:bad-registration-code');
  });

  it('the first contact of a device with a registered CA certificate creates its thing from the template, once', async () => {
    const { context, dir } = await fresh(dialect);
    const acme = await externalCa(dir, 'acme');
    const other = await externalCa(dir, 'other');
    const { code: registrationCode } = await context.identity.thirdPartyCas.registrationCode();
    const registered = await context.identity.thirdPartyCas.register({ caPem: acme.pem, verificationPem: await acme.sign(registrationCode), template: 'acme-jitr' }, admin);
    const leaf = new X509Certificate(await acme.sign('acme-42'));
    const first = await context.identity.thirdPartyCas.justInTimeRegister(leaf, '198.51.100.4');
    expect(first).toMatchObject({ thing: 'acme-42', created: true, serial: `${registered.id}:${leaf.serialNumber.toLowerCase()}` });
    expect(await context.identity.things.get('acme-42')).toMatchObject({ state: 'active', groups: ['acme'], attributes: { maker: 'acme' } });
    expect(await context.identity.thirdPartyCas.justInTimeRegister(leaf)).toMatchObject({ thing: 'acme-42', created: false });
    expect(await context.identity.certificates.get(first.serial)).toMatchObject({ issuedVia: 'jitr', caId: registered.id, status: 'active' });

    const jitr = context.identity.thirdPartyCas;
    expect(await refusalReason(jitr.justInTimeRegister(new X509Certificate(await other.sign('acme-43'))))).toBe('FW_ERR_ENROLLMENT_DENIED:unknown');
    expect(await refusalReason(jitr.justInTimeRegister(new X509Certificate(await acme.sign('intruder-1'))))).toBe('FW_ERR_NAME_MISMATCH');
    await context.identity.things.create({ name: 'acme-7' }, admin);
    expect(await refusalReason(jitr.justInTimeRegister(new X509Certificate(await acme.sign('acme-7'))))).toBe('FW_ERR_CONFLICT');
    await context.identity.certificates.revoke(first.serial, 'keyCompromise', admin);
    expect(await refusalReason(jitr.justInTimeRegister(leaf))).toBe('FW_ERR_CERT_REVOKED');
    await context.identity.thirdPartyCas.deregister(registered.id, admin);
    expect(await refusalReason(jitr.justInTimeRegister(new X509Certificate(await acme.sign('acme-99'))))).toBe('FW_ERR_ENROLLMENT_DENIED:unknown');
    const denied = (await context.audit.list({ limit: 100, action: 'provisioning.jitr' })).filter((e) => e.outcome === 'denied');
    expect(denied).toHaveLength(5);
  });

  it('two registered CAs may both use serial 1: their certificates are told apart', async () => {
    const { context, dir } = await fresh(dialect);
    const registerCa = async (name: string) => {
      const ca = await externalCa(dir, name);
      const { code: c } = await context.identity.thirdPartyCas.registrationCode();
      await context.identity.thirdPartyCas.register({ caPem: ca.pem, verificationPem: await ca.sign(c), template: 'acme-jitr' }, admin);
      return ca;
    };
    const a = await registerCa('ca-a');
    const b = await registerCa('ca-b');
    const fromA = await context.identity.thirdPartyCas.justInTimeRegister(new X509Certificate(await a.sign('acme-100')));
    const fromB = await context.identity.thirdPartyCas.justInTimeRegister(new X509Certificate(await b.sign('acme-200')));
    expect(fromA.serial.split(':')[1]).toBe(fromB.serial.split(':')[1]);
    expect(fromA.serial).not.toBe(fromB.serial);
  });
});
