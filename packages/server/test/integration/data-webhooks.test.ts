import { afterEach, describe, expect, it } from 'vitest';
import { buildNode, openHome, rotateKeyEncryptionKey, type FleetwardNode } from '../../src/node.js';
import { verifySignature } from '../../src/webhooks/webhook-signature.js';
import { connectDevice, deviceWithCertificate, type Connected } from '../helpers/devices.js';
import { DIALECTS, type Dialect } from '../helpers/environment.js';
import { call } from '../helpers/https-client.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';
import { startWebhookReceiver, type Received, type WebhookReceiver } from '../helpers/webhook-receiver.js';

// Rule 9, issue 9 item 5: consumers receive the minimized stream over a signed webhook. Real MQTT
// publishes through the gateway, stored under their contract, delivered from the store to a real
// HTTPS receiver that verifies each signature as a receiver must.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

const CONTRACT = {
  name: 'env',
  version: 1,
  description: 'Environment readings',
  topic: 'things/${thing.name}/telemetry/env',
  retention: 'P30D',
  schema: {
    type: 'object',
    required: ['temp'],
    properties: {
      temp: { type: 'number', minimum: -40, maximum: 85 },
      mac: { type: 'string', maxLength: 17 },
      customer: { type: 'string', maxLength: 64 },
      location: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
      debug: { type: 'string', maxLength: 256 },
    },
  },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'] },
    mac: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'pseudonymize', domain: 'devices' } },
    customer: { class: 'sensitive', purposes: ['billing'], transform: 'tokenize' },
    location: { class: 'personal', purposes: ['maintenance'], retention: 'P7D', transform: { kind: 'round', decimals: 2 } },
    debug: { class: 'internal', purposes: ['support'], transform: 'drop' },
  },
};

const READING = { temp: 21.37, mac: 'a4:cf:12:9e:3b:07', customer: 'C-0042-7781', location: { lat: 52.520008, lon: 13.404954 }, debug: 'heap=81%' };

interface Setup {
  readonly t: TestNode;
  readonly receiver: WebhookReceiver;
  readonly device: Connected;
  readonly apiUrl: string;
  readonly operatorToken: string;
}

async function setup(dialect: Dialect): Promise<Setup> {
  const t = await startTestNode(dialect, { env: { FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse' } });
  cleanups.push(() => t.close());
  const { mqttUrl, apiUrl } = await t.node.listen();
  await t.node.context.data.contracts.apply([CONTRACT], admin);
  await t.node.context.data.refresh();
  const receiver = await startWebhookReceiver('not-known-until-created');
  cleanups.push(() => receiver.close());
  const device = await connect(t.node, mqttUrl, await deviceWithCertificate(t.node.context, 'sensor-1'));
  return { t, receiver, device, apiUrl, operatorToken: await t.operatorToken('olivia', 'operator') };
}

async function connect(node: FleetwardNode, mqttUrl: string, credentials: { keyPem: string; certPem: string }): Promise<Connected> {
  const device = await connectDevice(mqttUrl, node.hierarchy.chainPem, credentials, { clientId: 'sensor-1' });
  cleanups.push(() => device.client.endAsync(true));
  return device;
}

async function publish(device: Connected, reading: Record<string, unknown>): Promise<void> {
  await device.client.publishAsync('things/sensor-1/telemetry/env', JSON.stringify(reading), { qos: 1 });
}

/**
 * Delivers what is due at a time past any backoff (the node's own job also runs on the real clock;
 * both go through one queue, so they never send at once).
 */
let hoursAhead = 0;
async function deliver(node: FleetwardNode): Promise<void> {
  await node.context.data.flush();
  hoursAhead += 1;
  await node.context.data.webhooks.deliver(new Date(Date.now() + hoursAhead * 3_600_000));
}

type DataRecord = { thing: string; contract: string; fields: Record<string, unknown> };
const recordsOf = (r: Received) => r.body.records as DataRecord[];
const accepted = (receiver: WebhookReceiver) => receiver.received.filter((r) => r.status === 204);

describe.each(DIALECTS)('data webhooks on %s (rule 9)', (dialect) => {
  it('delivers published data minimized, filtered by purpose and clearance, signed; a tampered body fails verification', async () => {
    const s = await setup(dialect);
    // Created over the API by an operator: the secret is answered once.
    const created = await call(s.t.node.hierarchy.chainPem, `${s.apiUrl}/api/v1/data/webhooks`, {
      method: 'POST',
      token: s.operatorToken,
      json: { name: 'maintenance', url: s.receiver.url, caPem: s.receiver.caPem, purpose: 'maintenance', role: 'operator', contract: 'env' },
    });
    expect(created.status, created.text).toBe(201);
    const secret = created.body.secret as string;
    s.receiver.setSecret(secret);
    // A second consumer of the same data for another purpose, with an auditor's clearance (internal).
    const other = await startWebhookReceiver('not-known-until-created');
    cleanups.push(() => other.close());
    const monitoring = await s.t.node.context.data.webhooks.create({ name: 'monitoring', url: other.url, caPem: other.caPem, purpose: 'monitoring', role: 'auditor', topic: 'things/+/telemetry/#' }, { actor: admin, role: 'admin' });
    other.setSecret(monitoring.secret);

    for (const temp of [21.37, 22, 23]) await publish(s.device, { ...READING, temp });
    await deliver(s.t.node);
    await expect.poll(() => accepted(s.receiver).length + accepted(other).length).toBe(2);

    const maintenance = accepted(s.receiver)[0] as Received;
    expect(maintenance.body).toMatchObject({ type: 'fleetward.data', consumer: 'maintenance', purpose: 'maintenance', sequence: 1, attempt: 1, delivery: maintenance.delivery });
    const records = recordsOf(maintenance);
    expect(records).toHaveLength(3);
    for (const record of records) {
      expect(record).toMatchObject({ thing: 'sensor-1', contract: 'env' });
      // Only what maintenance is declared for: no temperature, no customer token, no debug.
      expect(Object.keys(record.fields).sort()).toEqual(['location', 'mac']);
      expect(record.fields.location).toEqual({ lat: 52.52, lon: 13.4 });
      expect(record.fields.mac).toMatch(/^ps_/);
    }
    expect(maintenance.raw).not.toContain('a4:cf:12');
    expect(maintenance.raw).not.toContain('C-0042');
    // The auditor's consumer gets the internal temperature only (its personal fields are above its clearance).
    expect(accepted(other)[0]?.body.consumer).toBe('monitoring');
    expect(recordsOf(accepted(other)[0] as Received).map((r) => r.fields)).toEqual([{ temp: 21.37 }, { temp: 22 }, { temp: 23 }]);

    // The receiver's check: the signature verifies over the raw body, and not once a byte changes.
    expect(maintenance.signatureValid).toBe(true);
    expect(verifySignature(secret, maintenance.raw, maintenance.signature)).toBe(true);
    expect(verifySignature(secret, maintenance.raw.replace('"lat":52.52', '"lat":48.85'), maintenance.signature)).toBe(false);
    expect(verifySignature('another-secret-of-enough-length', maintenance.raw, maintenance.signature)).toBe(false);

    // Disclosing personal fields is audited per batch, as the consumer; internal-only batches are not.
    const reads = await s.t.node.context.audit.list({ action: 'data.read', limit: 10 });
    expect(reads.map((e) => [e.actor, e.target])).toEqual([['data-webhook:maintenance', 'data-webhook:maintenance']]);
    expect(JSON.parse(reads[0]?.details ?? '{}')).toMatchObject({ purpose: 'maintenance', role: 'operator', delivery: maintenance.delivery, messages: 3, things: ['sensor-1'], classes: ['personal'] });

    const shown = await call(s.t.node.hierarchy.chainPem, `${s.apiUrl}/api/v1/data/webhooks/maintenance`, { token: s.operatorToken });
    expect(shown.body).toMatchObject({ state: 'active', sequence: 1, pending: null, delivered: { batches: 1, records: 3 }, lastDelivery: { delivery: maintenance.delivery, records: 3 } });
    expect(shown.text).not.toContain(secret);

    // The record of processing names each consumer as a reader of exactly the fields it is sent.
    const inventory = await s.t.node.context.data.inventory();
    const readers = Object.fromEntries((inventory.contracts.find((c) => c.contract === 'env')?.fields ?? []).map((f) => [f.path, f.readers.filter((r) => r.startsWith('webhook'))]));
    expect(readers).toEqual({
      temp: ['webhook monitoring (purpose monitoring, role auditor)'],
      mac: ['webhook maintenance (purpose maintenance, role operator)'],
      customer: [],
      location: ['webhook maintenance (purpose maintenance, role operator)'],
      debug: [],
    });
  });

  it('after a receiver outage, error answers and a node restart, every record arrives once, in order', async () => {
    const s = await setup(dialect);
    const { secret } = await s.t.node.context.data.webhooks.create({ name: 'ops', url: s.receiver.url, caPem: s.receiver.caPem, purpose: 'monitoring', role: 'operator' }, { actor: admin, role: 'admin' });
    s.receiver.setSecret(secret);

    for (const temp of [1, 2, 3]) await publish(s.device, { temp });
    await deliver(s.t.node);
    await expect.poll(() => accepted(s.receiver).length).toBe(1);

    // The receiver goes away: connections reset, then it answers 503 twice.
    s.receiver.setDown(true);
    for (const temp of [4, 5, 6]) await publish(s.device, { temp });
    await deliver(s.t.node);
    await deliver(s.t.node);
    s.receiver.setDown(false);
    s.receiver.failNext(2);
    await deliver(s.t.node);
    await deliver(s.t.node);
    const failing = await s.t.node.context.data.webhooks.get('ops');
    expect(failing.pending).toMatchObject({ sequence: 2 });
    expect(failing.failedAttempts).toBeGreaterThanOrEqual(3);
    expect(s.receiver.received.filter((r) => r.status === 503).map((r) => r.delivery)).toEqual([failing.pending?.delivery, failing.pending?.delivery]);

    // The secret is re-sealed by a KEK rotation, and the node restarts on the same data folder and database.
    await rotateKeyEncryptionKey(s.t.node.context, admin);
    await s.t.node.close();
    const { context } = await openHome(s.t.env.config(), { create: true });
    const node = await buildNode(context);
    cleanups.push(() => node.close());
    const { mqttUrl } = await node.listen();
    await deliver(node);
    await expect.poll(() => accepted(s.receiver).length).toBe(2);

    const device = await connect(node, mqttUrl, await deviceWithCertificate(context, 'sensor-1', { create: false }));
    await publish(device, { temp: 7 });
    await deliver(node);
    await expect.poll(() => accepted(s.receiver).length).toBe(3);

    const batches = accepted(s.receiver);
    expect(batches.map((b) => b.body.sequence)).toEqual([1, 2, 3]);
    expect(new Set(batches.map((b) => b.delivery)).size).toBe(3);
    expect(batches.every((b) => b.signatureValid)).toBe(true);
    // The batch in flight kept its delivery id across the outage and the restart; nothing acknowledged was sent again.
    expect(batches[1]?.delivery).toBe(failing.pending?.delivery);
    expect((batches[1]?.body.attempt as number) > 1).toBe(true);
    expect(s.receiver.received.filter((r) => r.delivery === batches[0]?.delivery)).toHaveLength(1);
    expect(batches.flatMap((b) => recordsOf(b).map((r) => r.fields.temp))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await context.data.webhooks.get('ops')).toMatchObject({ pending: null, sequence: 3, delivered: { batches: 3, records: 7 } });
  });
});

describe('data webhooks: registration and management over the API (rule 9)', () => {
  it('refuses http://, no purpose, an unknown role and a clearance above the caller, with stable codes; pauses, rotates and deletes, audited', async () => {
    const s = await setup('sqlite');
    const ca = s.t.node.hierarchy.chainPem;
    const post = (json: Record<string, unknown>) => call(ca, `${s.apiUrl}/api/v1/data/webhooks`, { method: 'POST', token: s.operatorToken, json: { name: 'feed', url: s.receiver.url, purpose: 'monitoring', role: 'operator', ...json } });
    const refusals: [string, Record<string, unknown>, number, string][] = [
      ['an http:// URL', { url: 'http://127.0.0.1:9/hooks' }, 400, 'FW_ERR_VALIDATION'],
      ['credentials in the URL', { url: 'https://user:pw@127.0.0.1:9/hooks' }, 400, 'FW_ERR_VALIDATION'],
      ['no purpose', { purpose: undefined }, 400, 'FW_ERR_PURPOSE_REQUIRED'],
      ['an unknown role', { role: 'superuser' }, 400, 'FW_ERR_VALIDATION'],
      ['no role', { role: undefined }, 400, 'FW_ERR_VALIDATION'],
      ['a bad topic filter', { topic: 'things/#/env' }, 400, 'FW_ERR_VALIDATION'],
      ['a CA that is not a certificate', { caPem: 'not a certificate' }, 400, 'FW_ERR_VALIDATION'],
      ["an admin's clearance asked by an operator", { role: 'admin' }, 403, 'FW_ERR_FORBIDDEN'],
    ];
    for (const [what, json, status, code] of refusals) {
      const answer = await post(json);
      expect([answer.status, answer.body.code], what).toEqual([status, code]);
    }
    // The domain names the refused field, whichever edge the request came from.
    const { webhooks } = s.t.node.context.data;
    const local = { actor: admin, role: 'admin' } as const;
    await expect(webhooks.create({ name: 'feed', url: 'http://x.example/h', purpose: 'monitoring', role: 'viewer' }, local)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION', details: { field: 'url' } });
    await expect(webhooks.create({ name: 'feed', url: s.receiver.url, role: 'viewer' }, local)).rejects.toMatchObject({ code: 'FW_ERR_PURPOSE_REQUIRED' });
    await expect(webhooks.create({ name: 'feed', url: s.receiver.url, purpose: 'monitoring', role: 'root' }, local)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION', details: { field: 'role' } });
    expect(await webhooks.list()).toEqual([]);
    expect((await s.t.node.context.audit.list({ action: 'access.denied', limit: 10 })).map((e) => e.target)).toEqual(['data-webhook:feed']);

    const created = await post({ caPem: s.receiver.caPem });
    expect(created.status, created.text).toBe(201);
    expect((await post({})).body.code).toBe('FW_ERR_CONFLICT');
    const base = `${s.apiUrl}/api/v1/data/webhooks/feed`;
    expect((await call(ca, `${base}/pause`, { method: 'POST', token: s.operatorToken })).body).toMatchObject({ state: 'paused' });
    expect((await call(ca, `${base}/resume`, { method: 'POST', token: s.operatorToken })).body).toMatchObject({ state: 'active' });
    const rotated = await call(ca, `${base}/rotate-secret`, { method: 'POST', token: s.operatorToken });
    expect(rotated.body.secret).not.toBe(created.body.secret);
    s.receiver.setSecret(rotated.body.secret as string);
    await publish(s.device, { temp: 20 });
    await deliver(s.t.node);
    await expect.poll(() => accepted(s.receiver).length).toBe(1);

    const viewer = await s.t.operatorToken('vera', 'viewer');
    expect((await call(ca, base, { method: 'DELETE', token: viewer })).status).toBe(403);
    expect((await call(ca, base, { method: 'DELETE', token: s.operatorToken })).body).toEqual({ deleted: 'feed' });
    expect((await call(ca, base, { token: s.operatorToken })).body.code).toBe('FW_ERR_NOT_FOUND');
    const trail = await s.t.node.context.audit.list({ limit: 1000 });
    expect(trail.filter((e) => e.action.startsWith('data.webhook.')).map((e) => [e.action, e.actor])).toEqual([
      ['data.webhook.create', 'operator:olivia'],
      ['data.webhook.pause', 'operator:olivia'],
      ['data.webhook.resume', 'operator:olivia'],
      ['data.webhook.rotate-secret', 'operator:olivia'],
      ['data.webhook.delete', 'operator:olivia'],
    ]);
  });
});
