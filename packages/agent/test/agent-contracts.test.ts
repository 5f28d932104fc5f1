import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardError, parseDeviceContracts, Topics, type DeviceContracts } from '@fleetward/protocol';
import { FleetwardAgent, type AgentEvent } from '../src/agent.js';
import { credentialFiles } from '../src/identity/device-credentials.js';
import { connectDevice, deviceWithCertificate, type Connected, type DeviceCredentials } from '../../server/test/helpers/devices.js';
import { startAgentNode, type AgentNode } from './helpers/agent-node.js';

// Rule 9 on the device: the agent fetches the contracts for its own topics over mTLS and minimizes
// readings before they are queued, so what a contract drops never leaves the device.

const admin = { name: 'operator:test' };

const ENV = {
  name: 'env',
  version: 1,
  topic: 'things/${thing.name}/telemetry/env',
  thingType: 'pump',
  retention: 'P30D',
  schema: {
    type: 'object',
    required: ['temp'],
    properties: {
      temp: { type: 'number', minimum: -40, maximum: 85 },
      debug: { type: 'string', maxLength: 256 },
      mac: { type: 'string', maxLength: 17 },
      at: { type: 'string', format: 'date-time' },
    },
  },
  fields: {
    temp: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'round', decimals: 1 } },
    debug: { class: 'internal', purposes: ['support'], transform: 'drop' },
    mac: { class: 'personal', purposes: ['maintenance'], transform: { kind: 'pseudonymize', domain: 'devices' } },
    at: { class: 'internal', purposes: ['monitoring'], transform: { kind: 'time-bucket', unit: 'hour' } },
  },
};
const POWER = { name: 'power', version: 2, topic: 'things/${thing.name}/telemetry/power', thingType: 'meter', retention: 'P30D', schema: { type: 'object', properties: { watts: { type: 'number' } } }, fields: { watts: { class: 'internal', purposes: ['billing'] } } };
const STATUS = { name: 'status', version: 1, topic: 'things/${thing.name}/status', thingType: null, retention: 'P30D', schema: { type: 'object', properties: { up: { type: 'boolean' } } }, fields: { up: { class: 'public', purposes: ['monitoring'] } } };

let n: AgentNode;
let agent: FleetwardAgent;
let watcher: Connected & { received: { topic: string; payload: string }[] };
const events: AgentEvent[] = [];

beforeAll(async () => {
  n = await startAgentNode({ FLEETWARD_DATA_UNMATCHED_TOPICS: 'pass-unclassified' });
  const { context } = n.t.node;
  for (const name of ['pump', 'meter']) await context.identity.thingTypes.create({ name }, admin);
  await context.data.contracts.apply([ENV, POWER, STATUS], admin);
  await context.data.refresh();
  await context.identity.things.create({ name: 'pump-1', type: 'pump' }, admin);
  await install(n, await deviceWithCertificate(context, 'pump-1', { create: false }));
  watcher = await observer(n);
  agent = await FleetwardAgent.start(n.config('pump-1'), { onEvent: (e) => events.push(e) });
  await until(() => events.some((e) => e.type === 'contracts'));
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await watcher?.client.endAsync(true);
  await n?.close();
});

describe('device-side data minimization', () => {
  it('gets the contracts for its own type and any type, bound to its name, in the order ingest picks them', () => {
    expect(events.find((e) => e.type === 'contracts')).toEqual({ type: 'contracts', contracts: ['env@1', 'status@1'] });
  });

  it('drops a field before the queue: it is neither on the disk nor on the wire; rounds and time-buckets on the device', async () => {
    const reading = { temp: 21.37, debug: 'heap-dump-7f3a9c', mac: 'a4:cf:12:9e:3b:07', at: '2026-12-04T18:09:22Z' };
    await agent.telemetry('env', reading);
    await until(() => watcher.received.some((m) => m.topic === 'things/pump-1/telemetry/env'));
    const seen = JSON.parse(watcher.received.find((m) => m.topic === 'things/pump-1/telemetry/env')?.payload ?? '{}') as Record<string, unknown>;
    expect(seen).toMatchObject({ temp: 21.4, at: '2026-12-04T18:00:00Z' });
    expect(seen).not.toHaveProperty('debug');
    // Pseudonymizing needs the server's key: the device sends the value, ingest replaces it.
    expect(seen.mac).toEqual(expect.any(String));
    expect(seen.mac).not.toBe(reading.mac);

    const queued = await queuedPayloads();
    expect(queued.filter((q) => q.topic === 'things/pump-1/telemetry/env').map((q) => JSON.parse(q.payload) as unknown)).toEqual([{ temp: 21.4, mac: reading.mac, at: '2026-12-04T18:00:00Z' }]);
    expect(queued.some((q) => q.payload.includes('heap-dump-7f3a9c') || q.payload.includes('21.37'))).toBe(false);
  });

  it('refuses a reading that breaks the contract locally: counted, never queued, never sent', async () => {
    const before = agent.status().malformedReadings;
    for (const bad of [{ temp: 'hot-plate-99' }, { temp: 20, extra: 'side-channel-42' }, { temp: 200 }, { temp: 20, at: 'yesterday-noon' }]) {
      expect(await code(agent.publish('things/pump-1/telemetry/env', bad)), JSON.stringify(bad)).toBe('FW_ERR_PAYLOAD_REJECTED');
    }
    expect(await code(agent.publish('things/pump-1/telemetry/env', 'not json'))).toBe('FW_ERR_PAYLOAD_REJECTED');
    expect(agent.status().malformedReadings).toBe(before + 5);
    // A topic no contract covers is sent as the application gave it (the server decides).
    await agent.publish('things/pump-1/other', { free: 'form-text-1' });
    await until(() => watcher.received.some((m) => m.topic === 'things/pump-1/other'));
    const queued = await queuedPayloads();
    expect(queued.map((q) => q.topic)).toContain('things/pump-1/other');
    for (const marker of ['hot-plate-99', 'side-channel-42', 'yesterday-noon']) {
      expect(queued.some((q) => q.payload.includes(marker)), marker).toBe(false);
      expect(watcher.received.some((m) => m.payload.includes(marker)), marker).toBe(false);
    }
  });

  it('passes a sealed value through untouched: only ingest opens it and applies the contract to what it holds', async () => {
    const sealed = await agent.seal('heap-dump-sealed');
    await agent.telemetry('env', { temp: 19.96, debug: sealed });
    const queued = (await queuedPayloads()).filter((q) => q.topic === 'things/pump-1/telemetry/env').at(-1);
    expect(JSON.parse(queued?.payload ?? '{}')).toEqual({ temp: 20, debug: sealed });
  });

  it('answers a thing with the contracts for its own type only, and never another thing\'s', async () => {
    const { context } = n.t.node;
    await context.identity.things.create({ name: 'meter-1', type: 'meter' }, admin);
    const meter = await connectDevice(n.mqttUrl, n.caPem, await deviceWithCertificate(context, 'meter-1', { create: false }), { clientId: 'meter-1' });
    try {
      const answers: { topic: string; payload: Buffer }[] = [];
      meter.client.on('message', (topic, payload) => answers.push({ topic, payload }));
      await meter.client.subscribeAsync(Topics.contracts('meter-1'), { qos: 1 });
      await meter.client.publishAsync(Topics.contractsRequest('meter-1'), '{}', { qos: 1 });
      await until(() => answers.length > 0);
      const answer: DeviceContracts = parseDeviceContracts(answers[0]?.payload ?? Buffer.alloc(0));
      expect(answer.thing).toBe('meter-1');
      expect(answer.contracts.map((c) => [c.name, c.topic])).toEqual([['power', 'things/meter-1/telemetry/power'], ['status', 'things/meter-1/status']]);
      // Asking in pump-1's name: refused by policy, and nothing about pump-1 comes back.
      await meter.client.publishAsync(Topics.contractsRequest('pump-1'), '{}', { qos: 1 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      expect(answers.filter((a) => a.topic.includes('pump-1'))).toEqual([]);
      expect(answers).toHaveLength(1);
    } finally {
      await meter.client.endAsync(true);
    }
  });
});

/** Every message the agent's queue log ever held (`<crc> <JSON>` lines, payloads in base64), acknowledged or not. */
async function queuedPayloads(): Promise<{ topic: string; payload: string }[]> {
  const log = await readFile(join(n.dir, 'state-pump-1', 'queue', 'queue.log'), 'utf8');
  return log
    .split('\n')
    .filter((line) => line.length > 9)
    .map((line) => JSON.parse(line.slice(9)) as { topic?: string; payload?: string })
    .flatMap((record) => (typeof record.topic === 'string' && typeof record.payload === 'string' ? [{ topic: record.topic, payload: Buffer.from(record.payload, 'base64').toString() }] : []));
}

/** Puts a manufacturing-made key and certificate where the agent looks for them. */
async function install(node: AgentNode, device: DeviceCredentials): Promise<void> {
  const state = join(node.dir, `state-${device.name}`);
  const files = credentialFiles(state);
  await mkdir(state, { recursive: true, mode: 0o700 });
  await writeFile(files.key, device.keyPem, { mode: 0o600 });
  await chmod(files.key, 0o600);
  await writeFile(files.cert, device.certPem);
}

/** A device that may read every thing's application topics: what an operator's consumer sees. */
async function observer(node: AgentNode): Promise<Connected & { received: { topic: string; payload: string }[] }> {
  const { context } = node.t.node;
  await context.policies.create('observer', { version: '2026-11', statements: [
    { effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    { effect: 'allow', actions: ['mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/#'] },
  ] }, admin);
  const device = await deviceWithCertificate(context, 'observer');
  await context.policies.attach('observer', { kind: 'thing', name: 'observer' }, admin);
  const connected = await connectDevice(node.mqttUrl, node.caPem, device, { clientId: 'observer' });
  const received: { topic: string; payload: string }[] = [];
  connected.client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
  await connected.client.subscribeAsync('things/#', { qos: 1 });
  return Object.assign(connected, { received });
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
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
