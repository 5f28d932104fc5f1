import { X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FindingKind } from '../../src/identity/credential-audit/checks.js';
import { buildNode, closeContext, openHome, type NodeContext } from '../../src/node.js';
import { csrFor } from '../helpers/csr.js';
import { DIALECTS, testEnvironment, TestClock, type Dialect } from '../helpers/environment.js';
import { externalCa } from '../helpers/external-ca.js';

const alice = { name: 'operator:alice' };
const DAY = 86_400_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fresh(dialect: Dialect, env: Record<string, string> = {}): Promise<{ context: NodeContext; clock: TestClock }> {
  // Real time (a minute ahead, so certificates OpenSSL makes during the test are valid); the test moves it forward.
  const clock = new TestClock(Date.now() + 60_000);
  const environment = await testEnvironment(dialect, env);
  const { context } = await openHome(environment.config(), { create: true, clock });
  cleanups.push(() => environment.cleanup(), () => closeContext(context));
  return { context, clock };
}

async function deviceWithCertificate(context: NodeContext, name: string, options: { type?: string; validityDays?: number } = {}) {
  await context.identity.things.create({ name, ...(options.type && { type: options.type }) }, alice);
  return context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name), via: 'operator', ...(options.validityDays && { validityDays: options.validityDays }) }, alice);
}

/** The stored findings after pending re-checks, as `kind thing` strings. */
async function stored(context: NodeContext, kind?: FindingKind): Promise<string[]> {
  await context.identity.credentialAudit.flush();
  const report = await context.identity.credentialAudit.report({ limit: 1000, ...(kind && { kind }) });
  return report.findings.map((f) => `${f.kind} ${f.thing ?? f.caId ?? ''}`).sort();
}

describe.each(DIALECTS)('credential audit on %s', (dialect) => {
  it('a healthy fleet has no findings; the run is audited and counted', async () => {
    const { context } = await fresh(dialect);
    const issued = await deviceWithCertificate(context, 'ok-1');
    await context.identity.credentialAudit.recordUse(issued.serial, 'ok-1');
    const report = await context.identity.credentialAudit.run('operator', alice);
    expect(report.findings).toEqual([]);
    expect(report.ranAt).not.toBeNull();
    const events = await context.audit.list({ limit: 5, action: 'credentials.audit' });
    expect(events.map((e) => [e.actor, JSON.parse(e.details) as unknown])).toEqual([['operator:alice', { trigger: 'operator', high: 0, medium: 0, low: 0 }]]);
    expect(await context.metrics.registry.getSingleMetricAsString('fleetward_credential_findings')).toContain('fleetward_credential_findings{severity="high"} 0');
  });

  it('finds certificates never used, used under two client ids (a cloned credential), and expiring unrenewed', async () => {
    const { context, clock } = await fresh(dialect);
    const idle = await deviceWithCertificate(context, 'idle');
    const cloned = await deviceWithCertificate(context, 'cloned');
    await deviceWithCertificate(context, 'short', { validityDays: 10 });
    await context.identity.credentialAudit.recordUse(cloned.serial, 'cloned');
    await context.identity.credentialAudit.recordUse(cloned.serial, 'impostor-42');
    clock.advance(8 * DAY);
    await context.identity.credentialAudit.run('schedule', { name: 'node' });
    expect(await stored(context)).toEqual(['certificate-expiring short', 'certificate-never-used idle', 'certificate-never-used short', 'shared-certificate cloned']);
    const shared = (await context.identity.credentialAudit.report({ limit: 10, kind: 'shared-certificate' })).findings[0];
    expect(shared).toMatchObject({ severity: 'high', serial: cloned.serial });
    expect(shared?.message).toContain('impostor-42');
    // The device shows up: using its certificate clears the finding at the next check.
    await context.identity.credentialAudit.recordUse(idle.serial, 'idle');
    await context.identity.credentialAudit.recheck(['idle']);
    expect(await stored(context, 'certificate-never-used')).toEqual(['certificate-never-used short']);
  });

  it('re-checks a thing at once when its lifecycle changes: suspended with an active certificate, then decommissioned', async () => {
    const { context } = await fresh(dialect);
    await deviceWithCertificate(context, 'lost');
    expect(await stored(context)).toEqual([]);
    await context.identity.things.setState('lost', 'suspended', alice);
    expect(await stored(context)).toEqual(['inactive-thing-certificate lost']);
    await context.identity.things.setState('lost', 'decommissioned', alice, 'stolen');
    expect(await stored(context)).toEqual([]);
  });

  it('finds a spare certificate left active after the rotation window, and clears it when retired', async () => {
    const { context, clock } = await fresh(dialect);
    const first = await deviceWithCertificate(context, 'renewer');
    await context.identity.credentialAudit.recordUse(first.serial, 'renewer');
    const renewed = await context.identity.certificates.renew({ current: new X509Certificate(first.certificatePem), csr: csrFor('renewer'), via: 'renewal' });
    await context.identity.credentialAudit.recordUse(renewed.serial, 'renewer');
    expect(await stored(context)).toEqual([]);
    clock.advance(8 * DAY);
    await context.identity.credentialAudit.run('schedule', { name: 'node' });
    expect(await stored(context)).toEqual(['multiple-active-certificates renewer']);
    await context.identity.certificates.retireSuperseded(clock.now(), { name: 'node' });
    expect(await stored(context)).toEqual([]);
  });

  it('finds keys not in hardware when a thing type comes to require it, and CAs close to expiry', async () => {
    const { context } = await fresh(dialect, { FLEETWARD_PKI_CA_EXPIRY_WARNING_DAYS: '3650' });
    await context.identity.thingTypes.create({ name: 'meter' }, alice);
    const issued = await deviceWithCertificate(context, 'meter-1', { type: 'meter' });
    await context.identity.credentialAudit.recordUse(issued.serial, 'meter-1');
    await context.identity.thingTypes.update('meter', { requireHardwareKey: true }, alice);
    await context.identity.credentialAudit.run('operator', alice);
    const findings = await stored(context);
    const hierarchy = await context.identity.cas.hierarchy();
    expect(findings).toEqual(['ca-expiring ' + hierarchy.issuing.id, 'ca-expiring ' + hierarchy.root.id, 'hardware-key-required meter-1'].sort());
  });

  it('finds a third-party device certificate signed with SHA-1', async () => {
    const { context } = await fresh(dialect);
    const dir = await mkdtemp(join(tmpdir(), 'fw-audit-'));
    await context.identity.templates.create('acme', { namePattern: 'acme-[0-9]+' }, alice);
    const acme = await externalCa(dir, 'acme');
    const { code } = await context.identity.thirdPartyCas.registrationCode();
    await context.identity.thirdPartyCas.register({ caPem: acme.pem, verificationPem: await acme.sign(code), template: 'acme' }, alice);
    const leaf = new X509Certificate(await acme.sign('acme-7', ['-sha1']));
    await context.identity.thirdPartyCas.justInTimeRegister(leaf);
    await context.identity.credentialAudit.run('operator', alice);
    const weak = (await context.identity.credentialAudit.report({ limit: 10, kind: 'weak-key' })).findings;
    expect(weak.map((f) => [f.thing, f.severity])).toEqual([['acme-7', 'high']]);
    expect(weak[0]?.message).toContain('1.2.840.10045.4.1');
  });

  it('runs on schedule from the job runner only when due, on any node', async () => {
    const { context, clock } = await fresh(dialect);
    const node = await buildNode(context);
    await node.jobs.runAll();
    expect(await context.audit.list({ limit: 10, action: 'credentials.audit' })).toHaveLength(1);
    await node.jobs.runAll();
    expect(await context.audit.list({ limit: 10, action: 'credentials.audit' })).toHaveLength(1);
    clock.advance(25 * 3_600_000);
    await node.jobs.runAll();
    const runs = await context.audit.list({ limit: 10, action: 'credentials.audit' });
    expect(runs.map((e) => e.actor)).toEqual(['node', 'node']);
  });
});
