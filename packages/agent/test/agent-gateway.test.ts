import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetwardError, SEALED_KEY, Topics, type CommandResult } from '@fleetward/protocol';
import { FleetwardAgent, type AgentEvent } from '../src/agent.js';
import { credentialFiles } from '../src/identity/device-credentials.js';
import { csrFor } from '../../server/test/helpers/csr.js';
import { connectDevice, deviceWithCertificate, type Connected, type DeviceCredentials } from '../../server/test/helpers/devices.js';
import { TcpProxy } from '../../server/test/helpers/tcp-proxy.js';
import { startAgentNode, type AgentNode } from './helpers/agent-node.js';

const admin = { name: 'operator:test' };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function node(): Promise<AgentNode> {
  const n = await startAgentNode();
  cleanups.push(() => n.close());
  return n;
}

async function started(n: AgentNode, thing: string, extra: Record<string, unknown> = {}, events: AgentEvent[] = [], options: Parameters<typeof FleetwardAgent.start>[1] = {}): Promise<FleetwardAgent> {
  const agent = await FleetwardAgent.start(n.config(thing, extra), { onEvent: (e) => events.push(e), ...options });
  cleanups.push(() => agent.stop());
  return agent;
}

/** Puts a manufacturing-made key and certificate where the agent looks for them. */
async function install(n: AgentNode, device: DeviceCredentials, mode = 0o600): Promise<void> {
  const files = credentialFiles(join(n.dir, `state-${device.name}`));
  await mkdir(join(n.dir, `state-${device.name}`), { recursive: true, mode: 0o700 });
  await writeFile(files.key, device.keyPem, { mode });
  await chmod(files.key, mode);
  await writeFile(files.cert, device.certPem);
}

/** A device that may read every thing's application topics: what an operator's consumer sees. */
async function observer(n: AgentNode): Promise<Connected & { received: { topic: string; payload: string }[] }> {
  await n.t.node.context.policies.create('observer', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/#'] },
  ] }, admin);
  const device = await deviceWithCertificate(n.t.node.context, 'observer');
  await n.t.node.context.policies.attach('observer', { kind: 'thing', name: 'observer' }, admin);
  const connected = await connectDevice(n.mqttUrl, n.caPem, device, { clientId: 'observer' });
  cleanups.push(() => connected.client.endAsync(true));
  const received: { topic: string; payload: string }[] = [];
  connected.client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
  await connected.client.subscribeAsync('things/#', { qos: 1 });
  return Object.assign(connected, { received });
}

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FleetwardError) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('identity on the device', () => {
  it('provisions by claim certificate: its own key (0600), its own certificate, then its own session', async () => {
    const n = await node();
    const { templates, certificates } = n.t.node.context.identity;
    await templates.create('sensors', { namePattern: 'sensor-[0-9]{4}', parameters: { batch: '[A-Z0-9]{4}' } }, admin);
    const claimKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const claim = await certificates.issue({ subject: 'sensors', kind: 'claim', csr: csrFor('sensors', claimKeys), via: 'operator', template: 'sensors' }, admin);
    await writeFile(join(n.dir, 'claim.pem'), claim.certificatePem);
    await writeFile(join(n.dir, 'claim.key'), claimKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const provisioning = { method: 'claim-certificate', template: 'sensors', claimCertFile: 'claim.pem', claimKeyFile: 'claim.key', parameters: { batch: 'B001' } };

    const events: AgentEvent[] = [];
    const agent = await started(n, 'sensor-0001', { provisioning }, events);
    await until(() => agent.online);
    expect(events[0]).toMatchObject({ type: 'provisioned', thing: 'sensor-0001' });
    expect(await n.t.node.context.identity.things.get('sensor-0001')).toMatchObject({ name: 'sensor-0001' });
    const files = credentialFiles(join(n.dir, 'state-sensor-0001'));
    expect((await stat(files.key)).mode & 0o777).toBe(0o600);
    expect((await stat(join(n.dir, 'state-sensor-0001'))).mode & 0o777).toBe(0o700);
    expect(await readFile(files.key, 'utf8')).not.toBe(claimKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }));

    // A name the template does not allow is refused with the platform's code, and nothing is written.
    expect(await code(FleetwardAgent.start(n.config('intruder', { provisioning })))).toBe('FW_ERR_NAME_MISMATCH');
    await expect(stat(credentialFiles(join(n.dir, 'state-intruder')).cert)).rejects.toThrow();
  });

  it('provisions with a one-time enrollment token over EST, and the token works once', async () => {
    const n = await node();
    await n.t.node.context.identity.templates.create('meters', { namePattern: 'meter-[0-9]+' }, admin);
    const issued = await n.t.node.context.identity.enrollmentTokens.issue('meters', { uses: 1, ttlHours: 1 }, admin);
    await writeFile(join(n.dir, 'token'), issued.token, { mode: 0o600 });
    const provisioning = { method: 'enrollment-token', template: 'meters', estUrl: n.apiUrl, tokenFile: 'token' };
    const agent = await started(n, 'meter-1', { provisioning });
    await until(() => agent.online);
    expect(agent.certificate.subject).toContain('CN=meter-1');
    expect(await code(FleetwardAgent.start(n.config('meter-2', { provisioning })))).toBe('FW_ERR_ENROLLMENT_DENIED');
  });

  it('starts from a pre-provisioned certificate, and refuses a readable key, a certificate for another thing, or another CA', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'pump-1');
    await install(n, device);
    const agent = await started(n, 'pump-1');
    await until(() => agent.online);
    await agent.stop();

    const loose = await deviceWithCertificate(n.t.node.context, 'pump-2');
    await install(n, loose, 0o644);
    expect(await code(FleetwardAgent.start(n.config('pump-2')))).toBe('FW_ERR_HOME_INSECURE');

    await install(n, { ...device, name: 'pump-3' });
    expect(await code(FleetwardAgent.start(n.config('pump-3')))).toBe('FW_ERR_NAME_MISMATCH');

    // The platform's CA is pinned: a gateway whose certificate chains elsewhere is never trusted.
    const other = await startAgentNode();
    cleanups.push(() => other.close());
    expect(await code(FleetwardAgent.start(n.config('pump-1', { caFile: other.caFile })))).toBe('FW_ERR_CERT_REVOKED');
  });

  it('never falls back to plaintext, and does not trust a gateway from another CA', async () => {
    const n = await node();
    expect(() => n.config('pump-1', { mqttUrl: 'mqtt://127.0.0.1:1883' })).toThrow(/mqtts/);
    const other = await startAgentNode();
    cleanups.push(() => other.close());
    // The device's credentials are fine; the gateway it is pointed at is someone else's.
    const device = await deviceWithCertificate(n.t.node.context, 'pump-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'pump-1', { mqttUrl: other.mqttUrl }, events);
    await until(() => events.filter((e) => e.type === 'refused').length >= 2);
    expect(agent.online).toBe(false);
    expect(events.find((e) => e.type === 'refused')).toMatchObject({ code: expect.stringMatching(/CERT|SELF_SIGNED|UNABLE/) });
  });

  it('renews with a new key before expiry and when the platform asks, and reconnects with the new certificate', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'valve-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'valve-1', {}, events);
    await until(() => agent.online);
    const first = agent.status().serial;
    const firstKey = await readFile(credentialFiles(join(n.dir, 'state-valve-1')).key, 'utf8');

    await agent.renewNow();
    await until(() => agent.online && agent.status().serial !== first);
    expect(await readFile(credentialFiles(join(n.dir, 'state-valve-1')).key, 'utf8')).not.toBe(firstKey);
    expect((await n.t.node.context.identity.certificates.get(agent.status().serial)).status).toBe('active');

    // "Must rotate": the gateway tells the device; the agent renews without being asked by its application.
    const second = agent.status().serial;
    await n.t.node.context.identity.certificates.requestRotation(second, admin);
    await until(() => agent.online && agent.status().serial !== second);
    expect(events.filter((e) => e.type === 'renewed')).toHaveLength(2);
  });
});

describe('secure session', () => {
  it('a revoked device is disconnected and retries only at the slowest pace, not in a loop', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'door-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'door-1', { reconnect: { initialMs: 20, maxMs: 60_000 } }, events);
    await until(() => agent.online);
    await n.t.node.context.identity.certificates.revoke(device.serial, 'keyCompromise', admin);
    await until(() => !agent.online);
    await until(() => agent.status().session.refusals >= 1);
    await new Promise((r) => setTimeout(r, 1_500));
    // With a 20 ms base, a naive retry loop would have tried dozens of times.
    expect(agent.status().session.refusals).toBeLessThanOrEqual(2);
  });

  it('keeps publishes on disk while offline and delivers them in order, across an agent restart', async () => {
    const n = await node();
    const watcher = await observer(n);
    const device = await deviceWithCertificate(n.t.node.context, 'tank-1');
    await install(n, device);
    const proxy = await new TcpProxy(Number(new URL(n.mqttUrl).port)).start();
    cleanups.push(() => proxy.cut());
    const viaProxy = { mqttUrl: `mqtts://127.0.0.1:${proxy.port}` };
    let agent = await started(n, 'tank-1', viaProxy);
    await until(() => agent.online);
    await proxy.cut();
    await until(() => !agent.online);
    for (let i = 0; i < 30; i++) await agent.publish('things/tank-1/level', { i });
    expect(agent.status().queued).toBe(30);
    // The process goes away with everything still queued; a new one finds it on disk.
    await agent.stop();
    await proxy.restore();
    agent = await started(n, 'tank-1', viaProxy);
    expect(await agent.drained(10_000)).toBe(true);
    await until(() => watcher.received.filter((m) => m.topic === 'things/tank-1/level').length >= 30);
    const order = watcher.received.filter((m) => m.topic === 'things/tank-1/level').map((m) => (JSON.parse(m.payload) as { i: number }).i);
    expect(order).toEqual([...Array(30).keys()]);
  });

  it('loses nothing over a link that drops every few hundred milliseconds, and never lowers its guard', async () => {
    const n = await node();
    const watcher = await observer(n);
    const device = await deviceWithCertificate(n.t.node.context, 'tank-2');
    await install(n, device);
    const proxy = await new TcpProxy(Number(new URL(n.mqttUrl).port)).start();
    cleanups.push(() => proxy.cut());
    const agent = await started(n, 'tank-2', { mqttUrl: `mqtts://127.0.0.1:${proxy.port}` });
    await until(() => agent.online);
    let flapping = true;
    const flaps = (async () => {
      while (flapping) {
        await new Promise((r) => setTimeout(r, 300));
        await proxy.cut();
        await new Promise((r) => setTimeout(r, 100));
        await proxy.restore();
      }
    })();
    for (let i = 0; i < 200; i++) {
      await agent.publish('things/tank-2/level', { i });
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    flapping = false;
    await flaps;
    expect(await agent.drained(20_000)).toBe(true);
    const seen = watcher.received.filter((m) => m.topic === 'things/tank-2/level').map((m) => (JSON.parse(m.payload) as { i: number }).i);
    // QoS 1 is at least once: a message whose PUBACK was cut off is sent again; none is missing, and first deliveries are in order.
    const firsts = seen.filter((v, i) => seen.indexOf(v) === i);
    expect(firsts).toEqual([...Array(200).keys()]);
    expect(agent.status().session.connects).toBeGreaterThan(1);
    expect(agent.status().session.lastError ?? '').not.toMatch(/plain/i);
  });

  it('resumes its MQTT session after a drop: subscriptions kept, and a command sent while it was away arrives', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'valve-9');
    await install(n, device);
    const proxy = await new TcpProxy(Number(new URL(n.mqttUrl).port)).start();
    cleanups.push(() => proxy.cut());
    const events: AgentEvent[] = [];
    const agent = await started(n, 'valve-9', { mqttUrl: `mqtts://127.0.0.1:${proxy.port}` }, events);
    let ran = 0;
    agent.onCommand('close', () => void (ran += 1));
    await until(() => agent.online);
    await new Promise((r) => setTimeout(r, 300));
    await proxy.cut();
    await until(() => !agent.online);
    const command = { v: 1, id: 'while-away', name: 'close', issuedAt: new Date().toISOString() };
    await n.t.node.gateway.broker.publishFromServer({ topic: Topics.commands('valve-9'), payload: Buffer.from(JSON.stringify(command)), qos: 1, retain: false, properties: undefined, expiresAt: undefined, publisher: undefined });
    await proxy.restore();
    await until(() => ran === 1);
    expect(events.filter((e) => e.type === 'online').map((e) => (e as { sessionPresent: boolean }).sessionPresent)).toEqual([false, true]);
    // The TLS session resumed too, with the ticket of the first connection: no full handshake on either side.
    expect(agent.status().session.resumed).toBe(1);
  });

  it('stops publishing to a topic the gateway refuses instead of retrying it', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'cam-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'cam-1', {}, events);
    await until(() => agent.online);
    await agent.publish('things/cam-2/frames', 'not mine');
    await until(() => agent.status().refused === 1);
    expect(events.find((e) => e.type === 'publish-refused')).toMatchObject({ topic: 'things/cam-2/frames', reasonCode: 0x87 });
    expect(await code(agent.publish('things/cam-2/frames', 'again'))).toBe('FW_ERR_FORBIDDEN');
    // The queue is not blocked by the refused message.
    await agent.publish('things/cam-1/frames', 'mine');
    expect(await agent.drained(5_000)).toBe(true);
    expect(agent.status().published).toBe(1);
  });
});

describe('limits from the gateway', () => {
  it('a quota refusal slows the agent down and nothing is lost: every message arrives, in order', async () => {
    const n = await startAgentNode({ FLEETWARD_LIMITS_MESSAGES_PER_SECOND: '20', FLEETWARD_LIMITS_MESSAGE_BURST: '5' });
    cleanups.push(() => n.close());
    const watcher = await observer(n);
    const device = await deviceWithCertificate(n.t.node.context, 'burst-1');
    await install(n, device);
    const agent = await started(n, 'burst-1');
    await until(() => agent.online);
    for (let i = 0; i < 40; i++) await agent.publish('things/burst-1/level', { i });
    expect(await agent.drained(20_000)).toBe(true);
    expect(agent.status().throttled).toBeGreaterThan(0);
    expect(agent.status().refused).toBe(0);
    await until(() => watcher.received.filter((m) => m.topic === 'things/burst-1/level').length >= 40);
    const seen = watcher.received.filter((m) => m.topic === 'things/burst-1/level').map((m) => (JSON.parse(m.payload) as { i: number }).i);
    expect(seen.filter((v, i) => seen.indexOf(v) === i)).toEqual([...Array(40).keys()]);
  });
});

describe('commands from the cloud', () => {
  it('runs valid commands once, and rejects malformed, unknown, expired and replayed ones without crashing', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'lamp-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'lamp-1', {}, events);
    let runs = 0;
    agent.onCommand('set-brightness', (params) => {
      runs += 1;
      return { brightness: params.level };
    }, { type: 'object', properties: { level: { type: 'integer', minimum: 0, maximum: 100 } }, required: ['level'], additionalProperties: false });
    await until(() => agent.online);
    await new Promise((r) => setTimeout(r, 200));
    const send = (payload: unknown): Promise<void> =>
      n.t.node.gateway.broker.publishFromServer({ topic: Topics.commands('lamp-1'), payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), qos: 1, retain: false, properties: undefined, expiresAt: undefined, publisher: undefined });
    // Results go to the device's reserved namespace, which no other device may read: taken from the agent's events.
    const results = (): CommandResult[] => events.flatMap((e) => (e.type === 'command' ? [e.result] : []));
    const now = new Date().toISOString();

    await send({ v: 1, id: 'c1', name: 'set-brightness', params: { level: 40 }, issuedAt: now });
    await send({ v: 1, id: 'c1', name: 'set-brightness', params: { level: 40 }, issuedAt: now });
    await send({ v: 1, id: 'c2', name: 'set-brightness', params: { level: 400 }, issuedAt: now });
    await send({ v: 1, id: 'c3', name: 'format-disk', issuedAt: now });
    await send({ v: 1, id: 'c4', name: 'set-brightness', params: { level: 1 }, issuedAt: now, expiresAt: '2020-01-01T00:00:00Z' });
    await send('{"v":1,"id":"c5","name":');
    await send({ v: 1, id: 'c6', name: 'set-brightness', params: { level: 1 }, issuedAt: now, extra: true });
    await until(() => results().length >= 7);
    // The handler runs asynchronously, so results come in any order; a command too broken to name has no id.
    expect(results()).toHaveLength(7);
    expect(results().map((r) => [r.id, r.outcome, r.code])).toEqual(expect.arrayContaining([
      ['c1', 'succeeded', undefined],
      ['c1', 'rejected', 'FW_ERR_CONFLICT'],
      ['c2', 'rejected', 'FW_ERR_PAYLOAD_REJECTED'],
      ['c3', 'rejected', 'FW_ERR_NOT_FOUND'],
      ['c4', 'rejected', 'FW_ERR_VALIDATION'],
      [undefined, 'rejected', 'FW_ERR_VALIDATION'],
      ['c6', 'rejected', 'FW_ERR_VALIDATION'],
    ]));
    expect(results().find((r) => r.outcome === 'succeeded')?.output).toEqual({ brightness: 40 });
    expect(runs).toBe(1);
    expect(agent.status().commands).toEqual({ executed: 1, rejected: 6 });
    expect(agent.online).toBe(true);
  });
});

describe('faults never lower the security controls', () => {
  it('low battery thins telemetry and defers updates; malformed readings are refused locally; memory pressure sheds the queue', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'probe-1');
    await install(n, device);
    let battery: number | null = 80;
    let memory = 0.5;
    const agent = await started(n, 'probe-1', { telemetrySchemas: { env: { type: 'object', properties: { celsius: { type: 'number', minimum: -60, maximum: 90 } }, required: ['celsius'], additionalProperties: false } }, queue: { maxEntries: 100, maxBytes: 1_048_576 } }, [], {
      battery: () => Promise.resolve(battery),
      memoryAvailable: () => memory,
    });
    await until(() => agent.online);
    expect(await agent.telemetry('env', { celsius: 21 })).toBe('queued');
    expect(await code(agent.telemetry('env', { celsius: 900 }))).toBe('FW_ERR_PAYLOAD_REJECTED');
    expect(await code(agent.telemetry('env', { celsius: 20, gps: '51.5,-0.1' }))).toBe('FW_ERR_PAYLOAD_REJECTED');
    expect(agent.status().malformedReadings).toBe(2);

    battery = 5;
    await agent.checkResources();
    expect(agent.mayInstallUpdates()).toBe(false);
    const outcomes = [];
    for (let i = 0; i < 8; i++) outcomes.push(await agent.telemetry('env', { celsius: i }));
    expect(outcomes.filter((o) => o === 'queued')).toHaveLength(2);
    expect(agent.status().deferredReadings).toBe(6);
    // Still refused on low battery: the schema check does not yield.
    expect(await code(agent.telemetry('env', { celsius: 900 }))).toBe('FW_ERR_PAYLOAD_REJECTED');

    battery = 80;
    await agent.stop();
    // Offline with a full queue, then memory runs low: the queue is shed to a tenth, the oldest first.
    const offline = await started(n, 'probe-1', { mqttUrl: 'mqtts://127.0.0.1:1', queue: { maxEntries: 100, maxBytes: 1_048_576 } }, [], { battery: () => Promise.resolve(battery), memoryAvailable: () => memory });
    for (let i = 0; i < 100; i++) await offline.publish('things/probe-1/raw', { i });
    memory = 0.01;
    expect(await offline.checkResources()).toEqual({ lowBattery: false, memoryPressure: true });
    expect(offline.status().queued).toBe(10);
    expect(offline.status().dropped).toBeGreaterThanOrEqual(90);
  });
});

describe('device reports and sealed data', () => {
  it('reports inventory on connect and metrics on schedule, which the gateway checks; a malformed report is refused', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'gauge-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'gauge-1', { metricsIntervalSeconds: 1, firmware: { version: '2.4.1', sbomRef: 'urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79' } }, events);
    await until(() => agent.online);
    await new Promise((r) => setTimeout(r, 2_500));
    // A report the gateway refused would surface as an error event from its publish.
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    // The same topics, written by hand: what the monitoring could not read never gets in.
    const raw = await connectDevice(n.mqttUrl, n.caPem, device, { clientId: 'gauge-1' });
    cleanups.push(() => raw.client.endAsync(true));
    for (const topic of [Topics.metrics('gauge-1'), Topics.inventory('gauge-1')]) {
      const refused = await raw.client.publishAsync(topic, JSON.stringify({ v: 1, cpuPercent: 'high' }), { qos: 1 }).then(() => null, (e: { code?: number }) => e.code);
      expect(refused, topic).toBe(0x99);
    }
  });

  it('sends the application\'s custom list metrics: the node keeps what the thing type declares, and a profile flags a peer outside its block', async () => {
    const n = await node();
    const { identity } = n.t.node.context;
    const { metrics, profiles, windows } = n.t.node.monitor;
    await identity.thingTypes.create({ name: 'plc' }, admin);
    await metrics.declareCustom({ thingType: 'plc', name: 'modbus.peers', kind: 'address-list' }, admin);
    await identity.groups.create({ name: 'plcs' }, admin);
    await profiles.put({ name: 'plcs', behaviors: [{ name: 'modbus-peers', metric: 'custom.modbus.peers', operator: 'not-in', cidrs: ['10.20.0.0/16'] }] }, admin);
    await profiles.attach('plcs', 'plcs', admin);
    await windows.start();
    await identity.things.create({ name: 'plc-1', type: 'plc', groups: ['plcs'] }, admin);
    await install(n, await deviceWithCertificate(n.t.node.context, 'plc-1', { create: false }));
    const events: AgentEvent[] = [];
    const customMetrics = () => ({ 'modbus.peers': { 'address-list': ['10.20.0.5', '203.0.113.50'] }, 'bad.peers': { 'address-list': ['plc-7.local'] } });
    const agent = await started(n, 'plc-1', { metricsIntervalSeconds: 1 }, events, { customMetrics });
    await until(() => agent.online);
    // The bad value is left out on the device, every report: two of them means the first has gone out.
    await until(() => events.filter((e) => e.type === 'custom-metric-dropped').length >= 2);
    expect(events.find((e) => e.type === 'custom-metric-dropped')).toMatchObject({ name: 'bad.peers', reason: expect.stringContaining('custom.bad.peers.address-list') });
    expect(events.filter((e) => e.type === 'error')).toEqual([]);

    const end = new Date(Date.now() + 61_000);
    expect(await windows.tick(end)).toMatchObject({ droppedCustom: 0 });
    const [alert] = await n.t.node.alerts.alerts.list({ thing: 'plc-1' });
    expect(alert).toMatchObject({ behavior: 'modbus-peers', state: 'open' });
    const [stored] = await metrics.device('plc-1', { since: new Date(end.getTime() - 3_600_000).toISOString() });
    expect(stored?.custom).toEqual({ 'modbus.peers': ['10.20.0.5', '203.0.113.50'] });
  });

  it('seals values to the backend key: stored and delivered opened, while nothing on the device can open them', async () => {
    const n = await node();
    await n.t.node.context.data.contracts.apply([{
      name: 'fix', version: 1, description: 'Position fixes, sealed on the device', topic: 'things/${thing.name}/telemetry/fix', retention: 'P30D',
      schema: { type: 'object', required: ['temp'], properties: { temp: { type: 'number' }, location: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' } } } } },
      fields: { temp: { class: 'internal', purposes: ['monitoring'] }, location: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'round', decimals: 2 } } },
    }], admin);
    const watcher = await observer(n);
    const device = await deviceWithCertificate(n.t.node.context, 'tracker-1');
    await install(n, device);
    const events: AgentEvent[] = [];
    const agent = await started(n, 'tracker-1', {}, events);
    await until(() => agent.online);
    const location = await agent.seal({ lat: 52.520008, lon: 13.404954 });
    expect(JSON.stringify(location)).not.toContain('52.52');
    const store = await agent.openSealedStore();
    const id = await store.put({ lat: 48.8566, lon: 2.3522 });
    const sealedDir = join(n.dir, 'state-tracker-1', 'sealed');
    for (const file of await readdir(sealedDir)) expect(await readFile(join(sealedDir, file), 'utf8')).not.toContain('48.85');
    await agent.publish('things/tracker-1/telemetry/fix', { temp: 21.5, location });
    await agent.publish('things/tracker-1/telemetry/fix', { temp: 20.1, location: { [SEALED_KEY]: await store.take(id) } });
    const ok = await until(() => watcher.received.filter((m) => m.topic === 'things/tracker-1/telemetry/fix').length >= 2).then(() => true, () => false);
    expect(ok, JSON.stringify({ status: agent.status(), events })).toBe(true);
    const delivered = watcher.received.filter((m) => m.topic === 'things/tracker-1/telemetry/fix').map((m) => JSON.parse(m.payload) as { location: unknown });
    expect(delivered.map((d) => d.location)).toEqual([{ lat: 52.52, lon: 13.4 }, { lat: 48.86, lon: 2.35 }]);
  });
});

describe('fleetward-agent daemon', () => {
  const bin = new URL('../bin/fleetward-agent.js', import.meta.url).pathname;
  const daemon = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });

  it('refuses a missing, corrupt or insecure configuration with exit 2 and a message naming the problem', async () => {
    const n = await node();
    expect(await daemon([])).toMatchObject({ code: 2, stderr: expect.stringContaining('usage') });
    expect(await daemon(['--config', join(n.dir, 'missing.json')])).toMatchObject({ code: 2, stderr: expect.stringContaining('FW_ERR_CONFIG_INVALID') });
    await writeFile(join(n.dir, 'corrupt.json'), '{"thing": "x", ');
    expect(await daemon(['--config', join(n.dir, 'corrupt.json')])).toMatchObject({ code: 2, stderr: expect.stringContaining('not valid JSON') });
    await writeFile(join(n.dir, 'plain.json'), JSON.stringify({ thing: 'x', mqttUrl: 'mqtt://127.0.0.1:1883', caFile: 'ca.pem', stateDir: 's' }));
    expect(await daemon(['--config', join(n.dir, 'plain.json')])).toMatchObject({ code: 2, stderr: expect.stringContaining('plaintext') });
    const loose = await deviceWithCertificate(n.t.node.context, 'loose-1');
    await install(n, loose, 0o640);
    await writeFile(join(n.dir, 'loose.json'), JSON.stringify({ thing: 'loose-1', mqttUrl: n.mqttUrl, caFile: 'ca.pem', stateDir: 'state-loose-1' }));
    expect(await daemon(['--config', join(n.dir, 'loose.json')])).toMatchObject({ code: 2, stderr: expect.stringContaining('FW_ERR_HOME_INSECURE') });
  });

  it('runs as a daemon: events as JSON lines, no secret in them, a clean stop on SIGTERM', async () => {
    const n = await node();
    const device = await deviceWithCertificate(n.t.node.context, 'gw-1');
    await install(n, device);
    await writeFile(join(n.dir, 'agent.json'), JSON.stringify({ thing: 'gw-1', mqttUrl: n.mqttUrl, caFile: 'ca.pem', stateDir: 'state-gw-1' }));
    const child = spawn(process.execPath, [bin, '--config', join(n.dir, 'agent.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    await until(() => stdout.includes('"type":"online"'));
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(expect.arrayContaining(['started', 'online']));
    expect(stdout).not.toContain('PRIVATE KEY');
  });
});
