import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { connectDevice, deviceWithCertificate, type DeviceCredentials } from '../helpers/devices.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

// Real third-party clients (Debian mosquitto-clients, MQTT.js) against the gateway, MQTT 3.1.1 and 5.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const admin = { name: 'operator:admin' };
const VERSIONS = [
  ['mqttv5', 5],
  ['mqttv311', 4],
] as const;

interface Setup {
  readonly t: TestNode;
  readonly host: string;
  readonly port: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly mqttUrl: string;
  /** mosquitto_* arguments for a device: TLS files and client id. */
  tlsArgs(device: DeviceCredentials): Promise<string[]>;
}

async function setup(): Promise<Setup> {
  const t = await startTestNode('sqlite');
  cleanups.push(() => t.close());
  const { mqttUrl } = await t.node.listen();
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-interop-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, t.node.hierarchy.chainPem);
  const url = new URL(mqttUrl);
  // An observer that may read every device's telemetry and status; sensor-1 may also retain in its namespace.
  await t.node.context.policies.create('observer', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/+/telemetry/#', 'topic/things/+/status', 'topic/things/+/state'] },
  ] }, admin);
  await t.node.context.policies.create('retaining-device', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive', 'mqtt:retain'], resources: ['topic/things/${thing.name}/#'] },
  ] }, admin);
  return {
    t,
    host: url.hostname,
    port: url.port,
    caFile,
    caPem: t.node.hierarchy.chainPem,
    mqttUrl,
    async tlsArgs(device) {
      const cert = join(dir, `${device.name}.pem`);
      const key = join(dir, `${device.name}.key`);
      await writeFile(cert, device.certPem);
      await writeFile(key, device.keyPem, { mode: 0o600 });
      return ['-h', url.hostname, '-p', url.port, '--cafile', caFile, '--cert', cert, '--key', key, '-i', device.name];
    },
  };
}

/** Runs a mosquitto client; resolves with its exit code and output. */
function mosquitto(tool: 'mosquitto_pub' | 'mosquitto_sub', args: readonly string[], onStdout?: (text: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Line-buffered, so the test sees "Subscribed" as soon as the client does.
    const child = spawn('stdbuf', ['-oL', tool, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts mosquitto_sub and resolves once the gateway acknowledged its subscription (its debug output says so). */
async function subscriber(s: Setup, device: DeviceCredentials, version: string, args: readonly string[]): Promise<{ done: Promise<{ code: number | null; messages: string[]; stderr: string }> }> {
  let subscribed: () => void = () => undefined;
  const acknowledged = new Promise<void>((resolve) => (subscribed = resolve));
  const running = mosquitto('mosquitto_sub', [...(await s.tlsArgs(device)), '-V', version, '-W', '10', '-d', ...args], (out) => out.includes('Subscribed (mid') && subscribed());
  await Promise.race([acknowledged, running]);
  // Wrapped: an async function returning a promise would wait for it.
  return { done: running.then(({ code, stdout, stderr }) => ({ code, stderr, messages: stdout.split('\n').filter((line) => line.startsWith('things/')) })) };
}

describe.each(VERSIONS)('interop with mosquitto clients, %s', (version, protocolVersion) => {
  it('publishes QoS 0, 1 and 2 in its namespace and an observer allowed by policy receives each once', async () => {
    const s = await setup();
    const [sensor, observer] = await Promise.all([deviceWithCertificate(s.t.node.context, 'sensor-1'), deviceWithCertificate(s.t.node.context, 'observer-1')]);
    await s.t.node.context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
    const received = await subscriber(s, observer, version, ['-t', 'things/+/telemetry/#', '-q', '2', '-v', '-C', '3']);
    for (const qos of ['0', '1', '2']) {
      const sent = await mosquitto('mosquitto_pub', [...(await s.tlsArgs(sensor)), '-V', version, '-q', qos, '-t', `things/sensor-1/telemetry/q${qos}`, '-m', `reading-${qos}`]);
      expect(sent.code, sent.stderr).toBe(0);
    }
    const { messages, stderr, code } = await received.done;
    expect(code, stderr).toBe(0);
    expect(messages.sort()).toEqual(['things/sensor-1/telemetry/q0 reading-0', 'things/sensor-1/telemetry/q1 reading-1', 'things/sensor-1/telemetry/q2 reading-2']);
  });

  it("is refused outside its namespace: another thing's topic, and subscribing beyond what its policy allows", async () => {
    const s = await setup();
    const sensor = await deviceWithCertificate(s.t.node.context, 'sensor-1');
    const published = await mosquitto('mosquitto_pub', [...(await s.tlsArgs(sensor)), '-V', version, '-q', '1', '-t', 'things/sensor-2/commands', '-m', 'unlock']);
    if (protocolVersion === 5) expect(published.stderr).toMatch(/not authori[sz]ed/i);
    else expect(published.code).not.toBe(0); // 3.1.1 has no negative PUBACK: the connection is closed
    const subscribed = await mosquitto('mosquitto_sub', [...(await s.tlsArgs(sensor)), '-V', version, '-t', 'things/sensor-2/#', '-E']);
    expect(`${subscribed.stdout}${subscribed.stderr}`).toMatch(/denied|failed|not authori[sz]ed/i);
    expect(s.t.node.gateway.broker.stats().denied.publish).toBe(1);
  });

  it('keeps a retained message for a device allowed to retain, and refuses retain to one that is not', async () => {
    const s = await setup();
    const [sensor, plain, observer] = await Promise.all([deviceWithCertificate(s.t.node.context, 'sensor-1'), deviceWithCertificate(s.t.node.context, 'sensor-2'), deviceWithCertificate(s.t.node.context, 'observer-1')]);
    await s.t.node.context.policies.attach('retaining-device', { kind: 'thing', name: 'sensor-1' }, admin);
    await s.t.node.context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
    expect((await mosquitto('mosquitto_pub', [...(await s.tlsArgs(sensor)), '-V', version, '-q', '1', '-r', '-t', 'things/sensor-1/state', '-m', 'on'])).code).toBe(0);
    const refused = await mosquitto('mosquitto_pub', [...(await s.tlsArgs(plain)), '-V', version, '-q', '1', '-r', '-t', 'things/sensor-2/state', '-m', 'on']);
    if (protocolVersion === 5) expect(refused.stderr).toMatch(/not authori[sz]ed/i);
    const got = await mosquitto('mosquitto_sub', [...(await s.tlsArgs(observer)), '-V', version, '-t', 'things/+/state', '-v', '-W', '2']);
    expect(got.stdout.trim()).toBe('things/sensor-1/state on');
  });
});

describe.each([5, 4] as const)('interop with MQTT.js, protocol version %s', (protocolVersion) => {
  const persistent = protocolVersion === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };

  it('publishes the will of a device that drops off without DISCONNECT', async () => {
    const s = await setup();
    const [sensor, observer] = await Promise.all([deviceWithCertificate(s.t.node.context, 'sensor-1'), deviceWithCertificate(s.t.node.context, 'observer-1')]);
    await s.t.node.context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
    const watcher = await connectDevice(s.mqttUrl, s.caPem, observer, { clientId: 'observer-1', protocolVersion });
    cleanups.push(() => watcher.end());
    await watcher.client.subscribeAsync('things/+/status', { qos: 1 });
    const will = new Promise<string>((resolve) => watcher.client.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    const device = await connectDevice(s.mqttUrl, s.caPem, sensor, { clientId: 'sensor-1', protocolVersion, will: { topic: 'things/sensor-1/status', payload: Buffer.from('offline'), qos: 1, retain: false } });
    device.client.stream.destroy();
    expect(await will).toBe('things/sensor-1/status offline');
    device.client.end(true);
  });

  it('resumes a persistent session with the QoS 1 messages it missed while away', async () => {
    const s = await setup();
    const [sensor, observer] = await Promise.all([deviceWithCertificate(s.t.node.context, 'sensor-1'), deviceWithCertificate(s.t.node.context, 'observer-1')]);
    await s.t.node.context.policies.attach('observer', { kind: 'thing', name: 'observer-1' }, admin);
    const first = await connectDevice(s.mqttUrl, s.caPem, observer, { clientId: 'observer-1', protocolVersion, ...persistent });
    await first.client.subscribeAsync('things/+/telemetry/#', { qos: 1 });
    await first.end();

    const device = await connectDevice(s.mqttUrl, s.caPem, sensor, { clientId: 'sensor-1', protocolVersion });
    await device.client.publishAsync('things/sensor-1/telemetry/t', 'while-you-were-away', { qos: 1 });
    await device.end();

    // Listening before CONNECT: the missed messages come right after CONNACK.
    const missed: string[] = [];
    const resumed = mqtt.connect(s.mqttUrl, { ca: s.caPem, key: observer.keyPem, cert: observer.certPem, clientId: 'observer-1', protocolVersion, reconnectPeriod: 0, resubscribe: false, ...persistent });
    cleanups.push(() => resumed.endAsync());
    resumed.on('message', (topic, payload) => missed.push(`${topic} ${payload.toString()}`));
    await expect.poll(() => missed, { timeout: 3_000 }).toEqual(['things/sensor-1/telemetry/t while-you-were-away']);
  });
});
