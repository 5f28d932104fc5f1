import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorWithSubackPacket } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardAgent, type AgentEvent } from '../../src/agent.js';
import { connectDevice, type Connected } from '../../../server/test/helpers/devices.js';
import { OtaFleet, until } from './helpers/ota-fleet.js';

/**
 * Issue 7's attacks that only show end to end, against a real node and real agents: another
 * device's jobs over MQTT, an artifact for other hardware, a replayed older version. The signature,
 * threshold, freeze, other-fleet, changed-bytes and endless-data attacks are covered where they
 * are decided (packages/server/test/integration/updates/update-repository.test.ts,
 * packages/agent/test/updates/update-attacks.test.ts).
 */
let fleet: OtaFleet;
const clients: Connected[] = [];

beforeAll(async () => {
  fleet = await OtaFleet.start();
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await fleet?.close();
});

async function connect(name: string, credentials: { keyPem: string; certPem: string }): Promise<Connected> {
  const connected = await connectDevice(fleet.n.mqttUrl, fleet.n.caPem, credentials, { clientId: name });
  clients.push(connected);
  return connected;
}

/** The PUBACK reason code of a QoS 1 publish (MQTT 5): 0 when accepted (MQTT.js rejects with codes of 0x80 and above). */
async function pubackCode(c: Connected, topic: string, payload: unknown): Promise<number> {
  try {
    await c.client.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

function nextMessage(c: Connected, topic: string, ms = 5_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing on ${topic}`)), ms);
    const on = (received: string, payload: Buffer) => {
      if (received !== topic) return;
      clearTimeout(timer);
      c.client.off('message', on);
      resolve(JSON.parse(payload.toString()) as Record<string, unknown>);
    };
    c.client.on('message', on);
  });
}

describe("a device cannot reach another device's jobs", () => {
  it('fetching them is refused (PUBACK and SUBACK 0x87), reporting on them is refused (0x87 on its topic, FW_ERR_NOT_FOUND on its own); the job is unchanged', async () => {
    const mine = await fleet.register('valve-a', 'valve-v1');
    const theirs = await fleet.register('valve-b', 'valve-v1');
    const { artifact } = await fleet.release({ name: 'valve-fw', version: '1.0.1', securityVersion: 1, hardware: ['valve-v1'] });
    const deployment = await fleet.deploy({ target: artifact.target, selection: { things: ['valve-b'] }, phases: ['100%'] });
    await fleet.tick();
    const before = (await fleet.jobs(deployment.id)).get('valve-b');
    expect(before).toMatchObject({ state: 'queued', startedAt: null });
    expect(before?.releasedAt).not.toBeNull();

    const attacker = await connect('valve-a', mine);
    // Eavesdropping on its notifications or answers.
    const suback = await attacker.client.subscribeAsync(['$fw/things/valve-b/jobs/notify', '$fw/things/valve-b/jobs', '$fw/things/valve-a/jobs/+/update/+'], { qos: 1 }).catch((error: unknown) => {
      if (error instanceof ErrorWithSubackPacket) return error.packet.granted.map((qos) => ({ qos: typeof qos === 'number' ? qos : (qos as { qos: number }).qos }));
      throw error;
    });
    expect(suback.map((s) => s.qos)).toEqual([0x87, 0x87, 1]);
    // Asking for them.
    expect(await pubackCode(attacker, '$fw/things/valve-b/jobs/get', { clientToken: 'steal' })).toBe(0x87);
    // Reporting on them on the other device's topic.
    const forged = { v: 1, state: 'failed', reason: 'install-failed', message: 'forged' };
    expect(await pubackCode(attacker, `$fw/things/valve-b/jobs/${deployment.id}/update`, forged)).toBe(0x87);
    expect(await pubackCode(attacker, `$fw/things/valve-b/jobs/${deployment.id}/update`, { v: 1, state: 'succeeded' })).toBe(0x87);
    // ... and on its own topic with the other device's job id: the same answer as for a job that does not exist.
    const answer = nextMessage(attacker, `$fw/things/valve-a/jobs/${deployment.id}/update/rejected`);
    expect(await pubackCode(attacker, `$fw/things/valve-a/jobs/${deployment.id}/update`, { ...forged, clientToken: 'forged-1' })).toBe(0);
    expect(await answer).toMatchObject({ code: 'FW_ERR_NOT_FOUND', clientToken: 'forged-1' });
    const unknown = nextMessage(attacker, '$fw/things/valve-a/jobs/dep-000000000000/update/rejected');
    expect(await pubackCode(attacker, '$fw/things/valve-a/jobs/dep-000000000000/update', forged)).toBe(0);
    expect(await unknown).toMatchObject({ code: 'FW_ERR_NOT_FOUND' });

    const after = (await fleet.jobs(deployment.id)).get('valve-b');
    expect(after).toEqual(before);
    expect((await fleet.jobs(deployment.id)).has('valve-a')).toBe(false);

    // The owner still gets its job, untouched.
    const owner = await connect('valve-b', theirs);
    await owner.client.subscribeAsync('$fw/things/valve-b/jobs', { qos: 1 });
    const listed = nextMessage(owner, '$fw/things/valve-b/jobs');
    expect(await pubackCode(owner, '$fw/things/valve-b/jobs/get', { clientToken: 'mine' })).toBe(0);
    expect(await listed).toMatchObject({ clientToken: 'mine', jobs: [expect.objectContaining({ jobId: deployment.id, state: 'queued', target: artifact.target })] });
  });
});

describe('an artifact for another hardware type', () => {
  it('is rejected (incompatible) when the deployment is created, and never released', async () => {
    const d = await fleet.device('pump-1', { type: 'pump-v1' });
    const { artifact } = await fleet.release({ name: 'boiler-fw', version: '5.0.0', securityVersion: 1, hardware: ['boiler-v1'] });
    const deployment = await fleet.deploy({ target: artifact.target, selection: { things: ['pump-1'] } });
    expect(deployment).toMatchObject({ state: 'completed', counts: { rejected: 1, total: 1 } });
    expect((await fleet.jobs(deployment.id)).get('pump-1')).toMatchObject({ state: 'rejected', reason: 'incompatible', phase: -1, releasedAt: null });
    await fleet.tick();
    expect((await fleet.context.updates.deployments.pendingJobs('pump-1')).jobs).toEqual([]);
    expect(d.reports(deployment.id)).toEqual([]);
  });

  it('sent anyway (the registry names the wrong type), the device refuses it from the signed metadata: rejected, incompatible; nothing downloaded', async () => {
    // Registered as a boiler, but the hardware is a pump: the server's check passes, the device's must not.
    const d = await fleet.device('pump-2', { type: 'boiler-v1', hardware: 'pump-v1' });
    const [artifact] = (await fleet.context.updates.artifacts.list()).filter((a) => a.target.startsWith('boiler-fw'));
    const deployment = await fleet.deploy({ target: artifact!.target, selection: { things: ['pump-2'] } });
    await fleet.tick();
    await until(async () => (await fleet.jobState(deployment.id, 'pump-2')) === 'rejected', 15_000, 'the refusal');
    expect((await fleet.jobs(deployment.id)).get('pump-2')).toMatchObject({ state: 'rejected', reason: 'incompatible', message: expect.stringContaining('boiler-v1') });
    expect(d.reports(deployment.id)).toEqual(['in-progress/downloading', 'rejected:incompatible']);
    expect(d.events.some((e) => e.type === 'reboot')).toBe(false);
    expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, running: { version: '1.0.0' } });
    expect(await readdir(join(fleet.n.dir, 'state-pump-2', 'updates', 'downloads'))).toEqual([]);
    const refusal = await fleet.context.store.db.selectFrom('audit_events').select(['outcome', 'details']).where('action', '=', 'deployment.job.finish').where('actor', '=', 'thing:pump-2').executeTakeFirstOrThrow();
    expect(refusal.outcome).toBe('denied');
  });
});

describe('a replayed older version', () => {
  it('to devices that reported a newer security version: rejected (rollback) when the deployment is created', async () => {
    await fleet.release({ name: 'lock-fw', version: '2.1.0', securityVersion: 6, hardware: ['lock-v1'] });
    const { artifact: newer } = await fleet.release({ name: 'lock-fw', version: '2.2.0', securityVersion: 7, hardware: ['lock-v1'] });
    const d = await fleet.device('lock-1', { type: 'lock-v1', firmware: { version: '2.2.0', securityVersion: 7 } });
    await until(async () => (await fleet.context.updates.inventory.get('lock-1'))?.securityVersion === 7, 10_000, 'the inventory');
    const older = (await fleet.context.updates.artifacts.list()).find((a) => a.target !== newer.target && a.target.startsWith('lock-fw'));
    const deployment = await fleet.deploy({ target: older!.target, selection: { things: ['lock-1'] } });
    expect((await fleet.jobs(deployment.id)).get('lock-1')).toMatchObject({ state: 'rejected', reason: 'rollback', phase: -1, releasedAt: null });
    await fleet.tick();
    expect(d.reports(deployment.id)).toEqual([]);
  });

  it('told to install it anyway (the server has no inventory yet), the device refuses a security version below its floor', async () => {
    const older = (await fleet.context.updates.artifacts.list()).find((a) => a.version === '2.1.0' && a.target.startsWith('lock-fw'));
    await fleet.register('lock-2', 'lock-v1');
    // Deployed before the device ever reported: nothing on the server says it runs something newer.
    const deployment = await fleet.deploy({ target: older!.target, selection: { things: ['lock-2'] } });
    expect((await fleet.jobs(deployment.id)).get('lock-2')).toMatchObject({ state: 'queued', phase: 0 });
    await fleet.tick();
    const events: AgentEvent[] = [];
    const options = { type: 'lock-v1', firmware: { version: '2.2.0', securityVersion: 7 } };
    const agent = await FleetwardAgent.start(fleet.agentConfig('lock-2', options), fleet.agentOptions(events, options));
    try {
      await until(async () => (await fleet.jobState(deployment.id, 'lock-2')) === 'rejected', 15_000, 'the refusal');
      expect((await fleet.jobs(deployment.id)).get('lock-2')).toMatchObject({ state: 'rejected', reason: 'rollback', message: expect.stringContaining('security version 6') });
      expect(events.some((e) => e.type === 'reboot')).toBe(false);
      expect(agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, floor: 7, running: { version: '2.2.0', securityVersion: 7 } });
      expect(await readdir(join(fleet.n.dir, 'state-lock-2', 'updates', 'downloads'))).toEqual([]);
    } finally {
      await agent.stop();
    }
  });
});
