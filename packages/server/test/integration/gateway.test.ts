import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { ErrorWithSubackPacket } from 'mqtt';
import { Topics, type CertificateAccepted, type RequestRejected } from '@fleetward/protocol';
import { closeContext, openHome } from '../../src/node.js';
import { csrFor } from '../helpers/csr.js';
import { connectDevice, deviceWithCertificate, refusal, type Connected, type DeviceCredentials } from '../helpers/devices.js';
import { DIALECTS, type Dialect } from '../helpers/environment.js';
import { externalCa } from '../helpers/external-ca.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };

interface Gateway {
  readonly t: TestNode;
  readonly mqttUrl: string;
  readonly caPem: string;
  device(name: string): Promise<DeviceCredentials>;
  connect(device: DeviceCredentials, options?: Parameters<typeof connectDevice>[3] | { clientId?: string; protocolVersion?: 4 | 5 }): Promise<Connected>;
}

async function gateway(dialect: Dialect, env: Readonly<Record<string, string>> = {}): Promise<Gateway> {
  const t = await startTestNode(dialect, { env });
  cleanups.push(() => t.close());
  const { mqttUrl } = await t.node.listen();
  const caPem = t.node.hierarchy.chainPem;
  return {
    t,
    mqttUrl,
    caPem,
    device: (name) => deviceWithCertificate(t.node.context, name),
    async connect(device, options = {}) {
      const connected = await connectDevice(mqttUrl, caPem, device, { clientId: device.name, ...options });
      cleanups.push(() => connected.end().catch(() => undefined));
      return connected;
    },
  };
}

/** The SUBACK reason codes for the filters (MQTT.js rejects when every filter is refused). */
async function granted(connected: Connected, filters: string[]): Promise<number[]> {
  const subscribed = await connected.client.subscribeAsync(filters, { qos: 1 }).catch((error: unknown) => {
    if (error instanceof ErrorWithSubackPacket) return error.packet.granted.map((qos) => ({ qos: typeof qos === 'number' ? qos : (qos as { qos: number }).qos }));
    throw error;
  });
  return subscribed.map((s) => s.qos);
}

/** Waits until the check passes (for what the gateway records after the fact), failing after 2 s. */
async function eventually<T>(check: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Resolves with the first message on a topic. */
function nextMessage(connected: Connected, topic: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (received: string, payload: Buffer) => {
      if (received !== topic) return;
      connected.client.off('message', onMessage);
      resolve(payload);
    };
    connected.client.on('message', onMessage);
  });
}

/** Resolves with the reason code of the DISCONNECT (or with null when the socket just closed) and the time it took. */
function disconnected(connected: Connected): Promise<{ reasonCode: number | null; at: number }> {
  return new Promise((resolve) => {
    connected.client.once('disconnect', (packet: { reasonCode?: number }) => resolve({ reasonCode: packet.reasonCode ?? null, at: Date.now() }));
    connected.client.once('close', () => resolve({ reasonCode: null, at: Date.now() }));
  });
}

describe.each(DIALECTS)('device gateway on %s', (dialect) => {
  it('admits a device with its own certificate as its thing name; it publishes and subscribes in its own namespace (MQTT 5 and 3.1.1)', async () => {
    const g = await gateway(dialect);
    const sensor = await g.device('sensor-1');
    for (const protocolVersion of [5, 4] as const) {
      const device = await g.connect(sensor, { protocolVersion });
      await device.client.subscribeAsync('things/sensor-1/commands/#', { qos: 1 });
      const received = nextMessage(device, 'things/sensor-1/commands/reboot');
      await device.client.publishAsync('things/sensor-1/commands/reboot', '{"delay":5}', { qos: 1 });
      expect((await received).toString()).toBe('{"delay":5}');
      await device.end();
    }
    const connects = await g.t.node.context.audit.list({ limit: 10, action: 'mqtt.connect' });
    expect(connects.filter((e) => e.outcome === 'success')).toHaveLength(2);
    expect(connects[0]).toMatchObject({ actor: 'thing:sensor-1', target: `certificate:${sensor.serial}` });
  });

  it("refuses another thing's topics: publish (PUBACK 0x87), subscribe (SUBACK 0x87), and never delivers them", async () => {
    const g = await gateway(dialect, { FLEETWARD_LIMITS_AUDIT_INTERVAL_MS: '1000' });
    const [mine, other] = await Promise.all([g.device('sensor-1'), g.device('sensor-2')]);
    const attacker = await g.connect(mine);
    const victim = await g.connect(other);
    await victim.client.subscribeAsync('things/sensor-2/#', { qos: 1 });
    let leaked = 0;
    victim.client.on('message', () => leaked++);

    const publishRefusal = await attacker.client.publishAsync('things/sensor-2/commands/unlock', 'open', { qos: 1 }).then(
      () => null,
      (error: { code?: number }) => error.code,
    );
    expect(publishRefusal).toBe(0x87);
    expect(await granted(attacker, ['things/sensor-2/#', '#', '$fw/things/sensor-2/#', 'things/+/telemetry', 'things/sensor-1/#'])).toEqual([0x87, 0x87, 0x87, 0x87, 1]);
    // Delivery is checked too: the attacker's own subscription to its namespace receives only its own.
    await victim.client.publishAsync('things/sensor-2/telemetry', 'private', { qos: 1 });
    await attacker.client.publishAsync('things/sensor-1/telemetry', 'mine', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(leaked).toBe(1); // the victim's own telemetry, nothing from the attacker
    const denied = await g.t.node.context.metrics.registry.getSingleMetricAsString('fleetward_mqtt_denied_total');
    expect(denied).toMatch(/action="publish"\} 1$/m);
    expect(denied).toMatch(/action="subscribe"\} 4$/m);
    // Audited per device, as one summary per interval however many there are.
    await expect
      .poll(async () => (await g.t.node.context.audit.list({ limit: 10, action: 'mqtt.throttled' })).map((e) => ({ target: e.target, counts: (JSON.parse(e.details) as { counts: unknown }).counts })), { timeout: 3_000, interval: 100 })
      .toEqual([{ target: 'thing:sensor-1', counts: { 'publish-denied': 1, 'subscribe-denied': 4 } }]);
  });

  it('refuses a client id other than the thing name (CONNACK 0x85) and a revoked certificate or suspended thing (0x87), audited', async () => {
    const g = await gateway(dialect);
    const [sensor, revoked, suspended] = await Promise.all([g.device('sensor-1'), g.device('sensor-2'), g.device('sensor-3')]);
    const { certificates, things } = g.t.node.context.identity;
    await certificates.revoke(revoked.serial, 'keyCompromise', admin);
    await things.setState('sensor-3', 'suspended', admin);

    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-2' }))).code).toBe(0x85);
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, sensor, { clientId: 'sensor-2', protocolVersion: 4 }))).code).toBe(2);
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, revoked, { clientId: 'sensor-2' }))).code).toBe(0x87);
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, suspended, { clientId: 'sensor-3' }))).code).toBe(0x87);
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, suspended, { clientId: 'sensor-3', protocolVersion: 4 }))).code).toBe(5);

    const denied = (await g.t.node.context.audit.list({ limit: 20, action: 'mqtt.connect' })).filter((e) => e.outcome === 'denied');
    expect(denied.map((e) => (JSON.parse(e.details) as { reason: string }).reason).sort()).toEqual(['certificate-revoked', 'client-id', 'client-id', 'thing-state', 'thing-state']);
  });

  it('closes live connections within a second of a revocation or suspension, here or in another process', async () => {
    const g = await gateway(dialect);
    const [a, b, c] = await Promise.all([g.device('sensor-1'), g.device('sensor-2'), g.device('sensor-3')]);
    const [ca, cb, cc] = await Promise.all([g.connect(a), g.connect(b), g.connect(c)]);
    const bystander = await g.connect(await g.device('sensor-4'));

    let start = Date.now();
    const revokedHere = disconnected(ca);
    await g.t.node.context.identity.certificates.revoke(a.serial, 'keyCompromise', admin);
    const first = await revokedHere;
    expect(first.reasonCode).toBe(0x98);
    expect(first.at - start).toBeLessThan(1_000);

    start = Date.now();
    const suspendedHere = disconnected(cb);
    await g.t.node.context.identity.things.setState('sensor-2', 'suspended', admin);
    expect((await suspendedHere).at - start).toBeLessThan(1_000);

    // Another process (the CLI, another node) revokes: the gateway learns it from the store.
    const { context: other } = await openHome(g.t.env.config(), { create: false });
    cleanups.push(() => closeContext(other));
    start = Date.now();
    const revokedElsewhere = disconnected(cc);
    await other.identity.certificates.revoke(c.serial, 'superseded', admin);
    const third = await revokedElsewhere;
    expect(third.reasonCode).toBe(0x98);
    expect(third.at - start).toBeLessThan(1_000);

    expect(bystander.client.connected).toBe(true);
    await eventually(async () => {
      const closes = await g.t.node.context.audit.list({ limit: 10, action: 'mqtt.disconnect' });
      expect(closes.flatMap((e) => (JSON.parse(e.details) as { clientIds: string[] }).clientIds).sort()).toEqual(['sensor-1', 'sensor-2', 'sensor-3']);
    });
  });

  it('policy changes apply to live connections within a second: a group attachment grants, a detach stops delivery, a narrowed policy disconnects', async () => {
    const g = await gateway(dialect);
    const { policies } = g.t.node.context;
    const { groups } = g.t.node.context.identity;
    const [sensor, dashboard] = await Promise.all([g.device('sensor-1'), g.device('dashboard-1')]);
    const device = await g.connect(sensor);
    const viewer = await g.connect(dashboard);
    expect(await granted(viewer, ['things/+/telemetry'])).toEqual([0x87]);
    let received = 0;
    viewer.client.on('message', (topic) => topic === 'things/sensor-1/telemetry' && received++);

    const reader = {
      version: '2026-11',
      statements: [
        { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
        { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry'] },
      ],
    };
    await policies.create('telemetry-reader', reader, admin);
    await groups.create({ name: 'monitors' }, admin);
    await policies.attach('telemetry-reader', { kind: 'group', name: 'monitors' }, admin);
    let start = Date.now();
    await groups.addThing('monitors', 'dashboard-1', admin);
    await expect.poll(() => granted(viewer, ['things/+/telemetry']), { timeout: 1_000, interval: 50 }).toEqual([1]);
    expect(Date.now() - start).toBeLessThan(1_000);
    await device.client.publishAsync('things/sensor-1/telemetry', '21.5', { qos: 1 });
    await expect.poll(() => received, { timeout: 1_000 }).toBe(1);

    // Detached: the subscription stays, but nothing more is delivered to it.
    await policies.detach('telemetry-reader', { kind: 'group', name: 'monitors' }, admin);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await device.client.publishAsync('things/sensor-1/telemetry', '22.0', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toBe(1);

    // A policy that no longer lets the device connect as its client id closes it (0x87).
    await policies.attach('telemetry-reader', { kind: 'thing', name: 'dashboard-1' }, admin);
    const gone = disconnected(viewer);
    start = Date.now();
    await policies.update('telemetry-reader', { ...reader, statements: [{ effect: 'allow', actions: ['mqtt:connect'], resources: ['client/other'] }] }, admin, { makeDefault: true });
    const closed = await gone;
    expect(closed.reasonCode).toBe(0x87);
    expect(closed.at - start).toBeLessThan(1_000);
    expect(device.client.connected).toBe(true);
  });

  it('a certIssuer condition sees the issuer of the presented certificate as X509Certificate renders it', async () => {
    const g = await gateway(dialect);
    const { policies } = g.t.node.context;
    const [bound, other] = await Promise.all([g.device('sensor-1'), g.device('sensor-2')]);
    const issuer = new X509Certificate(bound.certPem).issuer.split('\n').join(', ');
    // An attached policy replaces the default one: each allows the thing's own client id, and denies it by issuer.
    const denyFrom = (issuers: string[]) => ({
      version: '2026-11',
      statements: [
        { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
        { effect: 'deny', actions: ['mqtt:connect'], resources: ['client/*'], conditions: { certIssuer: issuers } },
      ],
    });
    await policies.create('deny-our-ca', denyFrom([issuer]), admin);
    await policies.create('deny-another-ca', denyFrom(['CN=Another CA, O=Elsewhere']), admin);
    await policies.attach('deny-our-ca', { kind: 'thing', name: 'sensor-1' }, admin);
    await policies.attach('deny-another-ca', { kind: 'thing', name: 'sensor-2' }, admin);
    // The deny applies only where the issuer matches exactly; an issuer the gateway failed to read would be unknown, and a deny on an unknown fact applies too.
    expect((await refusal(connectDevice(g.mqttUrl, g.caPem, bound, { clientId: 'sensor-1' }))).code).toBe(0x85);
    const connected = await g.connect(other);
    expect(connected.client.connected).toBe(true);
  });

  it('a second connection with the same client id takes over the first (0x8E), audited', async () => {
    const g = await gateway(dialect);
    const sensor = await g.device('sensor-1');
    const first = await g.connect(sensor);
    const gone = disconnected(first);
    const second = await g.connect(sensor);
    expect((await gone).reasonCode).toBe(0x8e);
    expect(second.client.connected).toBe(true);
    const [takeover] = await g.t.node.context.audit.list({ limit: 5, action: 'mqtt.takeover' });
    expect(takeover).toMatchObject({ actor: 'thing:sensor-1', outcome: 'success' });
  });
});

describe('device gateway transport', () => {
  it('refuses a TLS client without a certificate, with a certificate of an unknown CA, and offers nothing below TLS 1.2', async () => {
    const g = await gateway('sqlite');
    const url = new URL(g.mqttUrl);
    // A CONNECT as MQTT.js sends it: whatever happens to the handshake, no CONNACK may come back.
    const connectPacket = Buffer.from('101000044d5154540502003c00000373656e', 'hex');
    const handshake = (options: Record<string, unknown>) =>
      new Promise<string>((resolve) => {
        let answered = false;
        const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: g.caPem, servername: 'localhost', ...options });
        socket.once('secureConnect', () => socket.write(connectPacket));
        socket.on('data', () => (answered = true));
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(answered ? 'answered' : (error.code ?? error.message)));
        socket.once('close', () => resolve(answered ? 'answered' : 'closed'));
      });
    expect(await handshake({})).toMatch(/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|closed|ECONNRESET/);
    expect(await handshake({ maxVersion: 'TLSv1.2' })).toMatch(/HANDSHAKE_FAILURE|closed|ECONNRESET/);
    const dir = await mkdtemp(join(tmpdir(), 'fleetward-stranger-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const stranger = await externalCa(dir, 'stranger');
    const certPem = await stranger.sign('sensor-1');
    const keyPem = await readFile(join(dir, 'sensor-1-1.key'), 'utf8');
    expect(await handshake({ key: keyPem, cert: certPem })).toMatch(/UNKNOWN_CA|BAD_CERTIFICATE|closed|ECONNRESET/);
    expect(await handshake({ key: keyPem, cert: certPem, maxVersion: 'TLSv1.2' })).toMatch(/UNKNOWN_CA|BAD_CERTIFICATE|ECONNRESET/);
    expect(await handshake({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|closed|ECONNRESET/);
    const failures = await g.t.node.context.metrics.registry.getSingleMetricAsString('fleetward_mqtt_tls_handshake_failures_total');
    expect(Number(/ (\d+)$/m.exec(failures)?.[1])).toBeGreaterThanOrEqual(5);
    expect(g.t.node.gateway.broker.stats().connectionsAccepted).toBe(0);
  });
});

describe('provisioning and renewal over MQTT', () => {
  it('a device with a claim certificate gets its own identity; only the asking client receives the answer', async () => {
    const g = await gateway('sqlite');
    const { templates, certificates } = g.t.node.context.identity;
    // The template's policy is attached to every thing it provisions.
    await g.t.node.context.policies.create('thermostat', { version: '2026-11', statements: [
      { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
      { effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/${thing.name}/#'] },
      { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/alerts/#'] },
    ] }, admin);
    await templates.create('thermo', { namePattern: 'thermo-[0-9a-f]{6}', parameters: { serial: '[A-Z0-9]{8}' }, policies: ['thermostat'] }, admin);
    const claimKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const claimIssued = await certificates.issue({ subject: 'thermo', kind: 'claim', csr: csrFor('thermo', claimKeys), via: 'operator', template: 'thermo' }, admin);
    const claim: DeviceCredentials = { name: 'thermo', serial: claimIssued.serial, keyPem: claimKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: claimIssued.certificatePem };

    const asking = await g.connect(claim, { clientId: 'factory-a' });
    const bystander = await g.connect(claim, { clientId: 'factory-b' });
    await asking.client.subscribeAsync([Topics.provisioningAccepted('thermo'), Topics.provisioningRejected('thermo')], { qos: 1 });
    await bystander.client.subscribeAsync([Topics.provisioningAccepted('thermo'), Topics.provisioningRejected('thermo')], { qos: 1 });
    let overheard = 0;
    bystander.client.on('message', () => overheard++);

    // Refused first (a name outside the template), then accepted: each answer names its request.
    const deviceKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rejected = nextMessage(asking, Topics.provisioningRejected('thermo'));
    await asking.client.publishAsync(Topics.provisioningRequest('thermo'), JSON.stringify({ csr: csrFor('intruder', deviceKeys), parameters: { serial: 'AB12CD34' }, clientToken: 'one' }), { qos: 1 });
    expect(JSON.parse((await rejected).toString()) as RequestRejected).toMatchObject({ code: 'FW_ERR_NAME_MISMATCH', clientToken: 'one' });

    const accepted = nextMessage(asking, Topics.provisioningAccepted('thermo'));
    await asking.client.publishAsync(Topics.provisioningRequest('thermo'), JSON.stringify({ csr: csrFor('thermo-0a0b0c', deviceKeys), parameters: { serial: 'AB12CD34' }, clientToken: 'two' }), { qos: 1 });
    const answer = JSON.parse((await accepted).toString()) as CertificateAccepted;
    expect(answer).toMatchObject({ thing: 'thermo-0a0b0c', clientToken: 'two' });
    expect(overheard).toBe(0);

    // The claim certificate reaches nothing else.
    expect(await granted(asking, ['things/#', '$fw/things/#'])).toEqual([0x87, 0x87]);

    // The new identity connects as itself, with the template's policy.
    const device = await g.connect({ name: 'thermo-0a0b0c', serial: answer.serial, keyPem: deviceKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: answer.certificatePem });
    expect(device.client.connected).toBe(true);
    expect((await g.t.node.context.policies.attachments({ target: { kind: 'thing', name: 'thermo-0a0b0c' } })).map((a) => a.policy)).toEqual(['thermostat']);
    expect(await granted(device, ['alerts/#', '$fw/things/thermo-0a0b0c/#'])).toEqual([1, 0x87]);

    // A template naming a policy that does not exist provisions nothing.
    await templates.create('broken', { namePattern: 'broken-[0-9]', policies: ['missing'] }, admin);
    const brokenClaimKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const brokenClaim = await certificates.issue({ subject: 'broken', kind: 'claim', csr: csrFor('broken', brokenClaimKeys), via: 'operator', template: 'broken' }, admin);
    const asker = await g.connect({ name: 'broken', serial: brokenClaim.serial, keyPem: brokenClaimKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: brokenClaim.certificatePem }, { clientId: 'factory-c' });
    await asker.client.subscribeAsync(Topics.provisioningRejected('broken'), { qos: 1 });
    const refusedAnswer = nextMessage(asker, Topics.provisioningRejected('broken'));
    await asker.client.publishAsync(Topics.provisioningRequest('broken'), JSON.stringify({ csr: csrFor('broken-1') }), { qos: 1 });
    expect(JSON.parse((await refusedAnswer).toString()) as RequestRejected).toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(g.t.node.context.identity.things.get('broken-1')).rejects.toThrow();
  });

  it('a device renews its certificate over MQTT, and is told to when its certificate must rotate (retained)', async () => {
    const g = await gateway('sqlite');
    const sensor = await g.device('sensor-1');
    await g.t.node.context.identity.certificates.requestRotation(sensor.serial, admin);
    const device = await g.connect(sensor);
    const required = nextMessage(device, Topics.renewRequired('sensor-1'));
    await device.client.subscribeAsync('$fw/things/sensor-1/cert/renew/+', { qos: 1 });
    expect(JSON.parse((await required).toString())).toMatchObject({ serial: sensor.serial, reason: 'must-rotate' });

    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const accepted = nextMessage(device, Topics.renewAccepted('sensor-1'));
    await device.client.publishAsync(Topics.renewRequest('sensor-1'), JSON.stringify({ csr: csrFor('sensor-1', keys) }), { qos: 1 });
    const renewed = JSON.parse((await accepted).toString()) as CertificateAccepted;
    expect(renewed.thing).toBe('sensor-1');
    expect(renewed.serial).not.toBe(sensor.serial);

    // Renewing another thing's certificate is refused (it cannot even publish there).
    const refused = await device.client.publishAsync(Topics.renewRequest('sensor-2'), JSON.stringify({ csr: csrFor('sensor-2', keys) }), { qos: 1 }).then(
      () => null,
      (error: { code?: number }) => error.code,
    );
    expect(refused).toBe(0x87);
  });
});

describe('gateway robustness', () => {
  it('malformed, truncated and oversized packets from an authenticated device close only its connection', async () => {
    // The attacker reconnects for every attempt: lift the connect-rate and flapping limits for it.
    const g = await gateway('sqlite', { FLEETWARD_LIMITS_CONNECTS_PER_MINUTE_PER_THING: '60000', FLEETWARD_LIMITS_CONNECT_BURST_PER_THING: '1000', FLEETWARD_LIMITS_FLAPPING_MAX_CONNECTS: '10000' });
    const [attackerDevice, bystanderDevice] = await Promise.all([g.device('sensor-1'), g.device('sensor-2')]);
    const bystander = await g.connect(bystanderDevice);
    await bystander.client.subscribeAsync('things/sensor-2/#', { qos: 1 });
    const garbage = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
      // A PUBLISH header announcing more than it sends (truncated), or far more than allowed (oversized).
      fc.integer({ min: 2, max: 0x0fffffff }).map((length) => Buffer.concat([Buffer.from([0x30]), remainingLength(length), Buffer.from('things/x')])),
      // Reserved packet types and flags.
      fc.constantFrom(Buffer.from([0x00, 0x00]), Buffer.from([0xf0, 0x00]), Buffer.from([0x82, 0x00]), Buffer.from([0x10, 0x00])),
    );
    await fc.assert(
      fc.asyncProperty(garbage, async (bytes) => {
        const attacker = await connectDevice(g.mqttUrl, g.caPem, attackerDevice, { clientId: 'sensor-1' });
        const gone = disconnected(attacker);
        (attacker.client.stream as unknown as { write(data: Buffer): void }).write(bytes);
        // Truncated packets are closed by the keepalive/packet timeout at the latest; most close at once.
        const closedOrStillWaiting = await Promise.race([gone.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))]);
        attacker.client.end(true);
        expect(['closed', 'waiting']).toContain(closedOrStillWaiting);
        expect(bystander.client.connected).toBe(true);
      }),
      { numRuns: 25 },
    );
    const received = nextMessage(bystander, 'things/sensor-2/ok');
    await bystander.client.publishAsync('things/sensor-2/ok', 'still serving', { qos: 1 });
    expect((await received).toString()).toBe('still serving');
    expect(g.t.node.gateway.broker.stats().protocolErrors).toBeGreaterThan(0);
  }, 60_000);
});

function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0 && bytes.length < 4);
  return Buffer.from(bytes);
}

describe('MQTT over secure WebSockets', () => {
  it('admits a device over wss:// with its certificate, with the same policy, and refuses one without a certificate', async () => {
    const t = await startTestNode('sqlite', { env: { FLEETWARD_MQTT_WEBSOCKET_PORT: '0' } });
    cleanups.push(() => t.close());
    const { mqttWebSocketUrl } = await t.node.listen();
    expect(mqttWebSocketUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const url = mqttWebSocketUrl as string;
    const caPem = t.node.hierarchy.chainPem;
    const sensor = await deviceWithCertificate(t.node.context, 'sensor-1');
    const device = await connectDevice(url, caPem, sensor, { clientId: 'sensor-1', wsOptions: { ca: caPem, key: sensor.keyPem, cert: sensor.certPem } });
    cleanups.push(() => device.end());
    await device.client.subscribeAsync('things/sensor-1/#', { qos: 1 });
    const received = nextMessage(device, 'things/sensor-1/echo');
    await device.client.publishAsync('things/sensor-1/echo', 'over websocket', { qos: 1 });
    expect((await received).toString()).toBe('over websocket');
    expect(await granted(device, ['things/sensor-2/#'])).toEqual([0x87]);
    const [connect] = await t.node.context.audit.list({ limit: 5, action: 'mqtt.connect' });
    expect(connect).toMatchObject({ actor: 'thing:sensor-1', outcome: 'success' });

    const anonymous = await refusal(mqtt.connectAsync(url, { ca: caPem, reconnectPeriod: 0, connectTimeout: 3_000, clientId: 'sensor-1' }).then((client) => ({ client, end: () => client.endAsync() })));
    expect(String(anonymous.code ?? anonymous.message)).toMatch(/ECONNRESET|certificate|socket hang up|closed|EPROTO|alert/i);
  });
});
