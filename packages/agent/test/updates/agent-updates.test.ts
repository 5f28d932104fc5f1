import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardAgent, type AgentEvent } from '../../src/agent.js';
import { credentialFiles } from '../../src/identity/device-credentials.js';
import { deviceWithCertificate } from '../../../server/test/helpers/devices.js';
import { startAgentNode, type AgentNode } from '../helpers/agent-node.js';
import { TestRepository } from './helpers/tuf-repository.js';

/**
 * The update client inside the agent, against a real node over mutual TLS: the boot step at start,
 * the health confirmation once the gateway was reached, and the reports on the queue.
 */
let n: AgentNode;
const repo = new TestRepository();

beforeAll(async () => {
  n = await startAgentNode();
  await writeFile(join(n.dir, 'root.json'), repo.rootJson);
});

afterAll(async () => {
  await n.close();
});

/** A pre-provisioned device whose folder holds an installed slot B on its way to a first boot. */
async function deviceWithPendingSlot(thing: string, bootAttempts: number): Promise<{ image: Buffer }> {
  const device = await deviceWithCertificate(n.t.node.context, thing);
  const state = join(n.dir, `state-${thing}`);
  const files = credentialFiles(state);
  await mkdir(join(state, 'updates'), { recursive: true, mode: 0o700 });
  await chmod(state, 0o700);
  await writeFile(files.key, device.keyPem, { mode: 0o600 });
  await writeFile(files.cert, device.certPem);
  const image = randomBytes(10_000);
  await mkdir(join(state, 'slots', 'b'), { recursive: true });
  await writeFile(join(state, 'slots', 'b', 'image'), image);
  const sha256 = createHash('sha256').update(image).digest('hex');
  const slotState = {
    v: 1,
    active: 'a',
    running: { version: '1.4.0', securityVersion: 5, sha256: null, target: null },
    floor: 5,
    pending: { slot: 'b', jobId: 'job-1', target: 'sensor-fw-1.4.2', version: '1.4.2', securityVersion: 7, sha256, bootAttempts },
    finished: [],
  };
  await writeFile(join(state, 'updates', 'state.json'), JSON.stringify(slotState), { mode: 0o600 });
  return { image };
}

const updatesConfig = { firmware: { version: '1.4.0', securityVersion: 5 }, updates: { trustedRoot: 'root.json', hardware: 'sensor-v2' } };

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the agent with updates', () => {
  it('says updates are off without a trusted root', async () => {
    await deviceWithPendingSlot('plain-1', 0);
    const events: AgentEvent[] = [];
    const agent = await FleetwardAgent.start(n.config('plain-1'), { onEvent: (e) => events.push(e) });
    try {
      expect(agent.updates).toBeNull();
      expect(events).toContainEqual({ type: 'updates-disabled', reason: expect.stringContaining('trustedRoot') });
    } finally {
      await agent.stop();
    }
  });

  it('boots a pending slot on trial and confirms it once the gateway is reached over mTLS, reports queued and delivered', async () => {
    const { image } = await deviceWithPendingSlot('sensor-ota-1', 0);
    const events: AgentEvent[] = [];
    let checked = 0;
    const agent = await FleetwardAgent.start(n.config('sensor-ota-1', updatesConfig), {
      onEvent: (e) => events.push(e),
      healthCheck: () => {
        checked += 1;
        return true;
      },
    });
    try {
      await until(() => agent.updates?.status().pending === null);
      expect(checked).toBe(1);
      expect(agent.updates?.status()).toMatchObject({ activeSlot: 'b', floor: 7, running: { version: '1.4.2', securityVersion: 7 } });
      expect(await agent.updates?.runningFirmware()).toEqual({ firmwareVersion: '1.4.2', securityVersion: 7, imageHash: `sha256:${createHash('sha256').update(image).digest('hex')}` });
      const updates = events.flatMap((e) => (e.type === 'update' ? [`${e.update.state}${e.update.step ? `/${e.update.step}` : ''}`] : []));
      expect(updates).toEqual(['in-progress/confirming', 'succeeded']);
      // Both reports went through the on-disk queue and the gateway answered them.
      expect(await agent.drained(5_000)).toBe(true);
    } finally {
      await agent.stop();
    }
  });

  it('a slot that already failed to confirm too often is rolled back at start, without reaching the gateway first', async () => {
    await deviceWithPendingSlot('sensor-ota-2', 3);
    const events: AgentEvent[] = [];
    const agent = await FleetwardAgent.start(n.config('sensor-ota-2', updatesConfig), { onEvent: (e) => events.push(e) });
    try {
      expect(agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, floor: 5 });
      expect(events).toContainEqual({ type: 'update', jobId: 'job-1', update: { v: 1, state: 'failed', reason: 'boot-failed', message: expect.any(String) } });
    } finally {
      await agent.stop();
    }
  });

  it('without a reboot hook, a failed health check rolls back and soft-reboots in process', async () => {
    await deviceWithPendingSlot('sensor-ota-3', 0);
    const events: AgentEvent[] = [];
    const agent = await FleetwardAgent.start(n.config('sensor-ota-3', updatesConfig), { onEvent: (e) => events.push(e), healthCheck: () => false });
    try {
      await until(() => events.some((e) => e.type === 'reboot'));
      expect(events).toContainEqual({ type: 'reboot', jobId: 'job-1', slot: 'a', why: 'rollback' });
      expect(events).toContainEqual({ type: 'update', jobId: 'job-1', update: expect.objectContaining({ state: 'failed', reason: 'health-check-failed' }) });
      await until(() => events.filter((e) => e.type === 'online').length >= 2);
      expect(agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, onTrial: false });
    } finally {
      await agent.stop();
    }
  });
});
