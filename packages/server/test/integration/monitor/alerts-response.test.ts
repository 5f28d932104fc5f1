import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import type { AlertServices } from '../../../src/monitor/alerts/index.js';
import { resealWebhookSecrets, updateAlertsToAlerts } from '../../../src/monitor/alerts/index.js';
import type { Detection } from '../../../src/monitor/types.js';
import { alertServicesFor } from '../../helpers/alert-services.js';
import { deviceWithCertificate } from '../../helpers/devices.js';
import { DIALECTS, TestClock } from '../../helpers/environment.js';
import { startTestNode, type TestNode } from '../../helpers/test-node.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../helpers/webhook-receiver.js';

const admin = { name: 'operator:alice' };
const SECRET = 'whsec-alerts-response-test-0001';
let n = 0;
const unique = (prefix: string) => `${prefix}-${++n}`;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FleetwardError) return error.code;
    throw error;
  }
  throw new Error('expected a FleetwardError');
}

describe.each(DIALECTS)('alerts and response actions on %s', (dialect) => {
  const clock = new TestClock();
  let t: TestNode;
  let services: AlertServices;
  let receiver: WebhookReceiver;
  const published: string[] = [];

  const detection = (thing: string, overrides: Partial<Detection> = {}): Detection => ({
    thing,
    behavior: 'auth-failures-high',
    profile: 'sensors',
    severity: 'medium',
    metric: 'auth_failures',
    value: 40,
    message: `${thing}: 40 authentication failures`,
    at: clock.now().toISOString(),
    dedupeKey: `sensors/auth-failures-high/${thing}`,
    actions: [],
    ...overrides,
  });
  const thing = async (prefix: string) => (await deviceWithCertificate(t.node.context, unique(prefix))).name;

  beforeAll(async () => {
    t = await startTestNode(dialect, { clock });
    receiver = await startWebhookReceiver(SECRET);
    services = await alertServicesFor(t.node.context, { publish: (topic) => published.push(topic), approvalRequired: ['revoke-certificate'] });
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  it('dedupes detections into one alert while it is open or acknowledged, keeping the highest severity', async () => {
    const name = await thing('dedupe');
    const first = await services.ingest(detection(name));
    const second = await services.ingest(detection(name, { severity: 'high', value: 90 }));
    expect(first.kind).toBe('opened');
    expect(second.kind).toBe('bumped');
    if (first.kind === 'suppressed' || second.kind === 'suppressed') throw new Error('unexpected');
    expect(second.alert).toMatchObject({ id: first.alert.id, count: 2, severity: 'high', value: 90 });
    await services.alerts.acknowledge(first.alert.id, admin);
    expect((await services.ingest(detection(name))).kind).toBe('bumped');
    await services.alerts.resolve(first.alert.id, admin, { verdict: 'benign', note: 'load test' });
    const reopened = await services.ingest(detection(name));
    expect(reopened.kind === 'opened' && reopened.alert.id !== first.alert.id).toBe(true);
    expect(await services.alerts.get(first.alert.id)).toMatchObject({ state: 'resolved', verdict: 'benign', count: 3 });
  });

  it('follows open → acknowledged → resolved only; resolved is final and a refused transition is audited', async () => {
    const name = await thing('lifecycle');
    const opened = await services.ingest(detection(name));
    if (opened.kind !== 'opened') throw new Error('expected an alert');
    const id = opened.alert.id;
    await services.alerts.resolve(id, admin);
    expect(await codeOf(services.alerts.acknowledge(id, admin))).toBe('FW_ERR_INVALID_TRANSITION');
    const denied = await t.node.context.audit.list({ action: 'alert.acknowledge', limit: 100 });
    expect(denied.at(-1)).toMatchObject({ outcome: 'denied', target: `alert:${id}` });
    expect(await codeOf(services.alerts.acknowledge('al-missing', admin))).toBe('FW_ERR_NOT_FOUND');
    await services.alerts.setVerdict(id, 'false-positive', admin, 'sensor miscalibrated');
    expect((await services.alerts.get(id)).verdict).toBe('false-positive');
    expect((await services.alerts.timeline(id)).map((e) => e.kind)).toEqual(['detection', 'state', 'verdict']);
  });

  it('counts suppressed detections instead of alerting, by behaviour, thing or group, until the suppression expires or is lifted', async () => {
    const name = await thing('suppressed');
    await t.node.context.identity.groups.create({ name: unique('lab') }, admin).catch(() => undefined);
    const group = `lab-${n}`;
    await t.node.context.identity.groups.addThing(group, name, admin);
    const byGroup = await services.suppressions.add({ group, durationSeconds: 60, note: 'lab maintenance' }, admin);
    expect(await services.ingest(detection(name))).toEqual({ kind: 'suppressed', suppression: byGroup.id });
    expect(await services.ingest(detection(name))).toEqual({ kind: 'suppressed', suppression: byGroup.id });
    expect((await services.suppressions.list()).find((s) => s.id === byGroup.id)?.suppressed).toBe(2);
    expect(await services.alerts.list({ thing: name })).toEqual([]);
    clock.advance(61_000);
    expect((await services.ingest(detection(name))).kind).toBe('opened');

    const other = await thing('suppressed');
    const byBehaviour = await services.suppressions.add({ behavior: 'new-listening-port', thing: other, durationSeconds: 600 }, admin);
    expect((await services.ingest(detection(other, { behavior: 'new-listening-port', dedupeKey: `port/${other}` }))).kind).toBe('suppressed');
    expect((await services.ingest(detection(other))).kind).toBe('opened');
    await services.suppressions.lift(byBehaviour.id, admin);
    expect((await services.ingest(detection(other, { behavior: 'new-listening-port', dedupeKey: `port/${other}` }))).kind).toBe('opened');
    expect(await codeOf(services.suppressions.add({ durationSeconds: 60 }, admin))).toBe('FW_ERR_VALIDATION');
    expect(await codeOf(services.suppressions.add({ thing: other, durationSeconds: 10 ** 9 }, admin))).toBe('FW_ERR_VALIDATION');
  });

  it('runs actions idempotently, records failures, and waits for approval where configured', async () => {
    const name = await thing('actions');
    const opened = await services.ingest(detection(name, { severity: 'critical', actions: ['suspend', 'force-rotation', 'revoke-certificate', 'start-update'] }));
    if (opened.kind !== 'opened') throw new Error('expected an alert');
    expect(opened.actions.map((a) => [a.action, a.state])).toEqual([
      ['suspend', 'succeeded'],
      ['force-rotation', 'succeeded'],
      ['revoke-certificate', 'pending-approval'],
      ['start-update', 'failed'],
    ]);
    expect(opened.actions[3]?.errorCode).toBe('FW_ERR_VALIDATION');
    expect((await t.node.context.identity.things.get(name)).state).toBe('suspended');
    const [certificate] = (await t.node.context.identity.certificates.list({ thing: name, limit: 10 })).certificates;
    expect(certificate?.mustRotate).toBe(true);

    // Again, by hand: nothing changes twice.
    const suspendAgain = await services.response.run({ action: 'suspend', thing: name }, admin);
    expect(suspendAgain).toMatchObject({ state: 'succeeded', alert: opened.alert.id, result: { changed: false } });
    const update = await services.response.run({ action: 'start-update', thing: name, params: { target: 'no-such-firmware-1.0.0' } }, admin);
    expect(update.state).toBe('failed');

    const pending = opened.actions[2]?.id as string;
    const approved = await services.response.approve(pending, admin);
    expect(approved).toMatchObject({ state: 'succeeded', decidedBy: admin.name });
    expect((await t.node.context.identity.certificates.list({ thing: name, status: 'active', limit: 10 })).certificates).toEqual([]);
    expect(await codeOf(services.response.approve(pending, admin))).toBe('FW_ERR_INVALID_TRANSITION');

    const timeline = await services.alerts.timeline(opened.alert.id);
    expect(timeline.filter((e) => e.kind === 'action').map((e) => e.summary.split(' ').slice(0, 2).join(' '))).toEqual([
      'suspend succeeded',
      'force-rotation succeeded',
      'revoke-certificate waits',
      'start-update failed:',
      'suspend succeeded',
      'start-update failed:',
      'revoke-certificate succeeded',
    ]);
    const audited = await t.node.context.audit.list({ action: 'response.action', limit: 1000 });
    expect(audited.filter((e) => e.target === `thing:${name}`).map((e) => e.outcome)).toEqual(['success', 'success', 'success', 'failure', 'success', 'failure', 'success']);
  });

  it('rejects a waiting action, and releases an expired quarantine on the job tick', async () => {
    const name = await thing('expiry');
    const opened = await services.ingest(detection(name, { actions: ['revoke-certificate'] }));
    if (opened.kind !== 'opened') throw new Error('expected an alert');
    expect((await services.response.reject(opened.actions[0]?.id as string, admin, 'not a compromise')).state).toBe('rejected');
    expect((await t.node.context.identity.certificates.list({ thing: name, status: 'active', limit: 10 })).certificates).toHaveLength(1);

    const quarantine = await services.response.run({ action: 'quarantine', thing: name, params: { durationSeconds: 300 } }, admin);
    expect(quarantine.expiresAt).not.toBeNull();
    expect((await services.response.tick(clock.now())).released).toEqual([]);
    clock.advance(301_000);
    expect((await services.response.tick(clock.now())).released).toEqual([name]);
    expect((await t.node.context.identity.things.get(name)).state).toBe('active');
    expect((await services.response.get(quarantine.id)).releasedAt).not.toBeNull();
    const release = await t.node.context.audit.list({ action: 'response.release', limit: 1000 });
    expect(release.at(-1)).toMatchObject({ actor: 'response', target: `thing:${name}` });
    expect(await codeOf(services.response.run({ action: 'quarantine', thing: name, params: { durationSeconds: 0 } }, admin))).toBe('FW_ERR_VALIDATION');
  });

  it('delivers signed webhooks over HTTPS, retrying with backoff after failures, and gives up after the last attempt', async () => {
    await services.notifier.addWebhook({ name: 'soc', url: receiver.url, secret: SECRET, caPem: receiver.caPem, minSeverity: 'high' }, admin);
    const stored = await t.node.context.store.db.selectFrom('notify_webhooks').selectAll().where('name', '=', 'soc').executeTakeFirstOrThrow();
    expect(stored.secret_sealed).not.toContain(SECRET);
    expect(stored.secret_sealed.startsWith('fwseal1.')).toBe(true);
    expect(await codeOf(services.notifier.addWebhook({ name: 'plain', url: 'http://127.0.0.1/x' }, admin))).toBe('FW_ERR_VALIDATION');

    const name = await thing('notify');
    receiver.failNext(2);
    const opened = await services.ingest(detection(name, { severity: 'high', actions: ['notify'] }));
    if (opened.kind !== 'opened') throw new Error('expected an alert');
    await services.notifier.settle();
    let [delivery] = await services.notifier.deliveries({ alert: opened.alert.id });
    expect(delivery).toMatchObject({ state: 'pending', attempts: 1, lastStatus: 503 });
    expect((await services.notifier.tick(clock.now())).attempted).toBe(0);
    clock.advance(1000);
    await services.notifier.tick(clock.now());
    [delivery] = await services.notifier.deliveries({ alert: opened.alert.id });
    expect(delivery).toMatchObject({ state: 'pending', attempts: 2 });
    clock.advance(1999);
    expect((await services.notifier.tick(clock.now())).attempted).toBe(0);
    clock.advance(1);
    await services.notifier.tick(clock.now());
    [delivery] = await services.notifier.deliveries({ alert: opened.alert.id });
    expect(delivery).toMatchObject({ state: 'delivered', attempts: 3, lastStatus: 204 });
    const mine = receiver.received.filter((r) => r.delivery === delivery?.id);
    expect(mine.map((r) => [r.status, r.signatureValid])).toEqual([[503, true], [503, true], [204, true]]);
    expect(new Set(mine.map((r) => JSON.stringify(r.body))).size).toBe(1);

    // Below the webhook's minimum severity: no delivery (the MQTT topic still has it).
    const low = await services.ingest(detection(await thing('notify'), { severity: 'low', actions: ['notify'] }));
    if (low.kind !== 'opened') throw new Error('expected an alert');
    expect(await services.notifier.deliveries({ alert: low.alert.id })).toEqual([]);
    expect(published).toContain('$fw/alerts/low');

    receiver.failNext(100);
    const failing = await services.ingest(detection(await thing('notify'), { severity: 'critical', actions: ['notify'] }));
    if (failing.kind !== 'opened') throw new Error('expected an alert');
    await services.notifier.settle();
    for (let i = 0; i < 6; i += 1) {
      clock.advance(300_000);
      await services.notifier.tick(clock.now());
    }
    receiver.failNext(0);
    expect((await services.notifier.deliveries({ alert: failing.alert.id }))[0]).toMatchObject({ state: 'failed', attempts: 6, lastError: 'HTTP 503' });
    const gaveUp = await t.node.context.audit.list({ action: 'notify.delivery.failed', limit: 10 });
    expect(gaveUp.at(-1)).toMatchObject({ outcome: 'failure', target: 'webhook:soc' });

    // A key-encryption key rotation re-seals the secret with the new key (node.ts rotateKeyEncryptionKey).
    const rotated = t.node.context.keyRing.withNewActiveKey(clock.now());
    expect(await t.node.context.store.db.transaction().execute((trx) => resealWebhookSecrets(trx, rotated))).toBe(1);
    const resealed = await t.node.context.store.db.selectFrom('notify_webhooks').select('secret_sealed').where('name', '=', 'soc').executeTakeFirstOrThrow();
    expect(rotated.open(resealed.secret_sealed, 'notify:soc').toString()).toBe(SECRET);
    await services.notifier.removeWebhook('soc', admin);
    expect(await services.notifier.listWebhooks()).toEqual([]);
  });

  it('takes rule 4 update alerts through the adapter, deduped per kind, deployment and thing', async () => {
    const raise = updateAlertsToAlerts(services, clock);
    await raise({ kind: 'deployment-aborted', message: 'deployment d-1 aborted: 30% failed', deployment: 'd-1' });
    await raise({ kind: 'deployment-aborted', message: 'deployment d-1 aborted: 30% failed', deployment: 'd-1' });
    const [alert] = (await services.alerts.list({ state: 'open' })).filter((a) => a.behavior === 'updates.deployment-aborted');
    expect(alert).toMatchObject({ thing: null, severity: 'high', count: 2, value: { deployment: 'd-1' } });
  });
});
