import { afterEach, describe, expect, it } from 'vitest';
import { affectsConnection, PolicyStore } from '../../src/access/policy-store/index.js';
import { DEFAULT_DEVICE_POLICY, DEFAULT_DEVICE_POLICY_NAME, serializePolicy } from '../../src/access/policy/index.js';
import { closeContext, openHome, type NodeContext } from '../../src/node.js';
import { csrFor } from '../helpers/csr.js';
import { DIALECTS, TestClock, testEnvironment, type Dialect } from '../helpers/environment.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const alice = { name: 'operator:alice', source: '127.0.0.1' };

const doc = (sid: string, topic: string, effect: 'allow' | 'deny' = 'allow') => ({ version: '2026-11', statements: [{ sid, effect, actions: ['mqtt:publish', 'mqtt:subscribe'], resources: [`topic/${topic}`] }] });
const connectAsSelf = { version: '2026-11', statements: [{ sid: 'connect', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] }] };

async function fresh(dialect: Dialect): Promise<{ context: NodeContext; policies: PolicyStore; clock: TestClock }> {
  const env = await testEnvironment(dialect);
  const clock = new TestClock();
  const { context } = await openHome(env.config(), { create: true, clock });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  const policies = new PolicyStore({ store: context.store, audit: context.audit, clock, groups: context.identity.groups });
  return { context, policies, clock };
}

async function snapshot(context: NodeContext) {
  const { db } = context.store;
  return {
    policies: await db.selectFrom('policies').selectAll().orderBy('name').execute(),
    versions: await db.selectFrom('policy_versions').selectAll().orderBy('policy').orderBy('version').execute(),
    attachments: await db.selectFrom('policy_attachments').selectAll().orderBy('id').execute(),
    audit: (await context.audit.verify()).head?.seq,
  };
}

describe.each(DIALECTS)('policy store on %s', (dialect) => {
  it('seeds the default device policy, stored exactly as the engine defines it, and refuses to delete it', async () => {
    const { policies } = await fresh(dialect);
    const stored = await policies.get(DEFAULT_DEVICE_POLICY_NAME);
    expect(stored).toMatchObject({ defaultVersion: 1, latestVersion: 1, isDefaultDevicePolicy: true, attachments: 0 });
    expect(serializePolicy(stored.document)).toBe(serializePolicy(DEFAULT_DEVICE_POLICY));
    await expect(policies.delete(DEFAULT_DEVICE_POLICY_NAME, alice, { force: true })).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
  });

  it('versions every update, keeps the history, rolls back by default version, and audits each change', async () => {
    const { context, policies } = await fresh(dialect);
    const created = await policies.create('telemetry', doc('v1', 'things/${thing.name}/telemetry'), alice);
    expect(created).toMatchObject({ name: 'telemetry', defaultVersion: 1, latestVersion: 1, createdBy: 'operator:alice' });
    await policies.update('telemetry', doc('v2', 'things/${thing.name}/data/#'), alice);
    const staged = await policies.update('telemetry', doc('v3', 'things/${thing.name}/x'), alice, { makeDefault: false });
    expect(staged).toMatchObject({ defaultVersion: 2, latestVersion: 3 });
    expect(staged.document.statements[0]?.sid).toBe('v2');
    const versions = await policies.versions('telemetry');
    expect(versions.map((v) => [v.version, v.isDefault, v.document.statements[0]?.sid])).toEqual([
      [3, false, 'v3'],
      [2, true, 'v2'],
      [1, false, 'v1'],
    ]);
    const rolledBack = await policies.setDefaultVersion('telemetry', 1, alice);
    expect(rolledBack.document.statements[0]?.sid).toBe('v1');
    await expect(policies.setDefaultVersion('telemetry', 9, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    const events = await context.audit.list({ limit: 50 });
    expect(events.filter((e) => e.action.startsWith('policy.')).map((e) => [e.action, e.target, e.actor])).toEqual([
      ['policy.create', 'policy:telemetry', 'operator:alice'],
      ['policy.update', 'policy:telemetry', 'operator:alice'],
      ['policy.update', 'policy:telemetry', 'operator:alice'],
      ['policy.update', 'policy:telemetry', 'operator:alice'],
    ]);
    expect(JSON.parse(events.find((e) => e.action === 'policy.create')?.details ?? '{}')).toMatchObject({ version: 1, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });

  it('refuses invalid documents, bad and reserved names, duplicates and unknown policies, writing nothing', async () => {
    const { context, policies } = await fresh(dialect);
    await policies.create('p', doc('a', 'things/a'), alice);
    const before = await snapshot(context);
    const invalid = await policies.create('q', { version: '2026-11', statements: [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/a/#/b'] }] }, alice).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ code: 'FW_ERR_VALIDATION', details: { path: '/statements/0/resources/0' } });
    await expect(policies.create('q', { version: '1999-01', statements: [] }, alice)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION', details: { path: '/version' } });
    await expect(policies.create('-bad', doc('a', 'a'), alice)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.create('fleetward-mine', doc('a', 'a'), alice)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.create('analyze', doc('a', 'a'), alice)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.create('p', doc('a', 'a'), alice)).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
    await expect(policies.update('p', { version: '2026-11', statements: [], extra: 1 }, alice)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.update('ghost', doc('a', 'a'), alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(policies.attach('ghost', { kind: 'thing', name: 'x' }, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(policies.attach('p', { kind: 'thing', name: 'nobody' }, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(policies.attach('p', { kind: 'group', name: 'nowhere' }, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(policies.attach('p', { kind: 'certificate', name: 'abcd' }, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(policies.importAws('aws', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }, {}, alice)).rejects.toMatchObject({ code: 'FW_ERR_POLICY_UNTRANSLATABLE', details: { path: expect.any(String) } });
    expect(await snapshot(context)).toEqual(before);
  });

  it('imports an AWS IoT policy exactly', async () => {
    const { policies } = await fresh(dialect);
    const imported = await policies.importAws(
      'aws-thermostat',
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}' }] },
      {},
      alice,
    );
    expect(imported.document.statements).toEqual([{ sid: 'aws-0', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] }]);
  });

  it('attaches to things, nested groups and certificates; effective policies follow the order and the default applies only to things with none', async () => {
    const { context, policies } = await fresh(dialect);
    const { identity } = context;
    await identity.groups.create({ name: 'europe' }, alice);
    await identity.groups.create({ name: 'berlin', parent: 'europe' }, alice);
    await identity.things.create({ name: 'sensor-1', groups: ['berlin'] }, alice);
    await identity.things.create({ name: 'sensor-2' }, alice);
    const issued = await identity.certificates.issue({ subject: 'sensor-1', kind: 'device', csr: csrFor('sensor-1'), via: 'operator' }, alice);

    const lonely = await policies.effectiveFor('sensor-1');
    expect(lonely.usedDefault).toBe(true);
    expect(lonely.policies.map((p) => [p.name, p.via])).toEqual([[DEFAULT_DEVICE_POLICY_NAME, null]]);

    await policies.create('base', connectAsSelf, alice);
    await policies.create('region', doc('region', 'regions/europe/#'), alice);
    await policies.create('no-admin', doc('deny-admin', 'things/${thing.name}/admin/#', 'deny'), alice);
    await policies.create('cert-extra', doc('extra', 'extra/${cert.serial}'), alice);
    await policies.attach('region', { kind: 'group', name: 'europe' }, alice);
    await policies.attach('no-admin', { kind: 'group', name: 'berlin' }, alice);
    await policies.attach('base', { kind: 'thing', name: 'sensor-1' }, alice);
    await policies.attach('cert-extra', { kind: 'certificate', name: issued.serial.toUpperCase() }, alice);
    const again = await policies.attach('base', { kind: 'thing', name: 'sensor-1' }, alice);
    expect(again.target).toEqual({ kind: 'thing', name: 'sensor-1' });

    const effective = await policies.effectiveFor('sensor-1', { certificateSerial: issued.serial });
    expect(effective.usedDefault).toBe(false);
    expect(effective.thing.groups).toEqual(['berlin', 'europe']);
    expect(effective.policies.map((p) => [p.name, p.version, p.via?.kind])).toEqual([
      ['base', 1, 'thing'],
      ['no-admin', 1, 'group'],
      ['region', 1, 'group'],
      ['cert-extra', 1, 'certificate'],
    ]);
    // The same list the gateway asks for with the identity it verified.
    expect((await policies.policiesFor({ thing: 'sensor-1', groups: ['berlin', 'europe'], serial: issued.serial })).map((p) => p.name)).toEqual(effective.policies.map((p) => p.name));
    expect((await policies.effectiveFor('sensor-2')).usedDefault).toBe(true);
    expect(await policies.policiesFor({ thing: null, groups: [], serial: null })).toEqual([]);

    const allowed = await policies.simulate({ thing: 'sensor-1', action: 'mqtt:publish', resource: 'regions/europe/weather' });
    expect(allowed).toMatchObject({ decision: 'allow', statement: { policy: 'region', version: 1, index: 0, sid: 'region', effect: 'allow' }, certificate: issued.serial });
    const denied = await policies.simulate({ thing: 'sensor-1', action: 'mqtt:publish', resource: 'things/sensor-1/admin/reboot' });
    expect(denied).toMatchObject({ decision: 'deny', reason: 'denied', statement: { policy: 'no-admin', sid: 'deny-admin', effect: 'deny' } });
    // sensor-2 has only the default policy: its own namespace, not sensor-1's.
    expect((await policies.simulate({ thing: 'sensor-2', action: 'mqtt:subscribe', resource: 'things/sensor-1/#' })).decision).toBe('deny');
    expect((await policies.simulate({ thing: 'sensor-2', action: 'mqtt:subscribe', resource: 'things/sensor-2/#' })).statement).toMatchObject({ policy: DEFAULT_DEVICE_POLICY_NAME });
    await expect(policies.simulate({ thing: 'sensor-2', action: 'mqtt:publish', resource: 'x', certificate: issued.serial })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.simulate({ thing: 'sensor-1', action: 'iot:Publish', resource: 'x' })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(policies.simulate({ thing: 'sensor-1', action: 'mqtt:publish', resource: 'x', sourceAddress: 'not-an-ip' })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });

    // Detaching the thing's last policies brings the default back.
    await policies.detach('base', { kind: 'thing', name: 'sensor-1' }, alice);
    await expect(policies.detach('base', { kind: 'thing', name: 'sensor-1' }, alice)).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    expect((await policies.attachments({ policy: 'region' })).map((a) => a.target)).toEqual([{ kind: 'group', name: 'europe' }]);
  });

  it('refuses to delete an attached policy (audited as denied) unless forced, which detaches and audits', async () => {
    const { context, policies } = await fresh(dialect);
    await context.identity.things.create({ name: 't1' }, alice);
    await context.identity.groups.create({ name: 'g1' }, alice);
    await policies.create('p', doc('a', 'a'), alice);
    await policies.attach('p', { kind: 'thing', name: 't1' }, alice);
    await policies.attach('p', { kind: 'group', name: 'g1' }, alice);
    await expect(policies.delete('p', alice)).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT', details: { attachments: 2 } });
    expect((await policies.get('p')).attachments).toBe(2);
    const { detached } = await policies.delete('p', alice, { force: true });
    expect(detached.map((d) => d.target.kind).sort()).toEqual(['group', 'thing']);
    await expect(policies.get('p')).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    expect(await context.store.db.selectFrom('policy_versions').select('version').where('policy', '=', 'p').execute()).toEqual([]);
    const events = (await context.audit.list({ limit: 100 })).filter((e) => e.action.startsWith('policy.'));
    expect(events.map((e) => [e.action, e.outcome])).toEqual([
      ['policy.create', 'success'],
      ['policy.attach', 'success'],
      ['policy.attach', 'success'],
      ['policy.delete', 'denied'],
      ['policy.detach', 'success'],
      ['policy.delete', 'success'],
    ]);
    expect(JSON.parse(events[4]?.details ?? '{}')).toMatchObject({ count: 2, targets: expect.arrayContaining(['thing:t1', 'group:g1']) });
  });

  it('a deleted group takes its attachments with it, so a new group of the same name inherits nothing', async () => {
    const { context, policies } = await fresh(dialect);
    await context.identity.groups.create({ name: 'g' }, alice);
    await policies.create('p', doc('a', 'a'), alice);
    await policies.attach('p', { kind: 'group', name: 'g' }, alice);
    await context.identity.groups.delete('g', alice);
    await context.identity.groups.create({ name: 'g' }, alice);
    expect(await policies.attachments({ policy: 'p' })).toEqual([]);
  });

  it('logs every policy-relevant change for pollers: policies, attachments, memberships, attributes, from any writer', async () => {
    const { context, policies } = await fresh(dialect);
    const { identity } = context;
    await identity.groups.create({ name: 'parent' }, alice);
    await identity.groups.create({ name: 'child', parent: 'parent' }, alice);
    await identity.things.create({ name: 'd1', attributes: { site: 'a' } }, alice);
    await identity.things.create({ name: 'd2' }, alice);
    await policies.create('p', doc('a', 'a'), alice);
    let cursor = await policies.changeCursor();
    expect(await policies.changesSince(cursor)).toMatchObject({ cursor, reset: false, policies: [], things: [] });

    await policies.attach('p', { kind: 'group', name: 'parent' }, alice);
    let changes = await policies.changesSince(cursor);
    expect(changes).toMatchObject({ reset: false, policies: ['p'], groups: ['parent'], things: [] });
    cursor = changes.cursor;
    const d1 = { thing: 'd1', groups: ['child', 'parent'], serial: null, policies: ['p'] };
    const d2 = { thing: 'd2', groups: [], serial: null, policies: [DEFAULT_DEVICE_POLICY_NAME] };
    expect(affectsConnection(changes, d1)).toBe(true);
    expect(affectsConnection(changes, d2)).toBe(false);

    await identity.groups.addThing('child', 'd1', alice);
    changes = await policies.changesSince(cursor);
    expect(changes).toMatchObject({ things: ['d1'], groups: ['child'], policies: [] });
    cursor = changes.cursor;

    await identity.things.update('d1', { attributes: { site: 'b' } }, alice);
    changes = await policies.changesSince(cursor);
    expect(changes).toMatchObject({ things: ['d1'], groups: [], policies: [] });
    expect(affectsConnection(changes, d2)).toBe(false);
    cursor = changes.cursor;

    await policies.update('p', doc('b', 'b'), alice, { makeDefault: false });
    expect((await policies.changesSince(cursor)).policies).toEqual([]);
    await policies.setDefaultVersion('p', 2, alice);
    changes = await policies.changesSince(cursor);
    expect(changes.policies).toEqual(['p']);
    cursor = changes.cursor;

    await identity.groups.removeThing('child', 'd1', alice);
    await policies.detach('p', { kind: 'group', name: 'parent' }, alice);
    changes = await policies.changesSince(cursor);
    expect(changes).toMatchObject({ things: ['d1'], groups: ['child', 'parent'], policies: ['p'], reset: false });

    // A cursor the log cannot serve (ahead of the database, or too far behind) asks for a full re-evaluation.
    expect(await policies.changesSince(changes.cursor + 5)).toMatchObject({ reset: true, cursor: changes.cursor });
    expect(await policies.changesSince(-5000)).toMatchObject({ reset: true, cursor: changes.cursor });
    // Creating a thing logs nothing: it has no live connection yet.
    const head = await policies.changeCursor();
    await identity.things.create({ name: 'd3' }, alice);
    expect(await policies.changeCursor()).toBe(head);
  });
});
