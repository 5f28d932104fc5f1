import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OtaFleet, until, type OtaDevice } from './helpers/ota-fleet.js';

/**
 * Rule 4 end to end (issue 7, "Done when"): a real node on SQLite listening on loopback, real
 * agents over MQTT with mutual TLS, downloads over HTTPS from the node's update routes, verified by
 * tuf-js against the root the fleet signed offline. The rollout is ticked by the test (the node's
 * runner is set to an hour), so each phase is seen on its own.
 */
let fleet: OtaFleet;

beforeAll(async () => {
  fleet = await OtaFleet.start();
});

afterAll(async () => {
  await fleet?.close();
});

const finalStates = new Set(['succeeded', 'failed', 'rejected', 'timed-out', 'cancelled']);

async function settled(deployment: string, things: readonly string[], ms = 20_000): Promise<void> {
  await until(async () => {
    const jobs = await fleet.jobs(deployment);
    return things.every((t) => finalStates.has(jobs.get(t)?.state ?? 'queued'));
  }, ms, `the jobs of ${things.join(', ')} to finish`).catch(async (error: unknown) => {
    const jobs = await fleet.jobs(deployment);
    const seen = fleet.devices.filter((d) => things.includes(d.name)).map((d) => ({ thing: d.name, job: jobs.get(d.name), events: d.events }));
    throw new Error(`${(error as Error).message}: ${JSON.stringify(seen)}`);
  });
}

describe('a successful rollout', () => {
  it('6 devices in 2 phases: each verifies, installs into slot B, reboots, confirms; the inventory shows the new version; the deployment completes', async () => {
    const devices: OtaDevice[] = [];
    for (let i = 1; i <= 6; i++) devices.push(await fleet.device(`sensor-ok-${i}`, { type: 'sensor-v2' }));
    const { artifact, bytes } = await fleet.release({ name: 'sensor-fw', version: '1.1.0', securityVersion: 2, hardware: ['sensor-v2'] });
    const names = devices.map((d) => d.name);
    const deployment = await fleet.deploy({ target: artifact.target, selection: { query: { thingType: 'sensor-v2' } }, phases: ['2', '100%'] });
    expect(deployment).toMatchObject({ state: 'running', counts: { total: 6, queued: 6, notReleased: 6 } });
    expect(deployment.phases.map((p) => p.size)).toEqual([2, 4]);

    // Phase 1: only its 2 devices are sent the job.
    await fleet.tick();
    const jobs = await fleet.jobs(deployment.id);
    const first = names.filter((t) => jobs.get(t)?.phase === 0);
    const second = names.filter((t) => jobs.get(t)?.phase === 1);
    expect(first).toHaveLength(2);
    await settled(deployment.id, first);
    for (const d of devices.filter((d) => second.includes(d.name))) expect(d.reports(deployment.id)).toEqual([]);
    expect((await fleet.context.updates.deployments.get(deployment.id)).counts).toMatchObject({ succeeded: 2, queued: 4, notReleased: 4 });

    // Phase 2: the other 4.
    await fleet.tick();
    await settled(deployment.id, second);
    await fleet.tick();

    const done = await fleet.context.updates.deployments.get(deployment.id);
    expect(done).toMatchObject({ state: 'completed', currentPhase: null, counts: { succeeded: 6, failed: 0, rejected: 0, total: 6 } });
    for (const d of devices) {
      // Every step reported, in order, through the queue and the gateway.
      const steps = d.reports(deployment.id).filter((r, i, all) => r !== all[i - 1]);
      expect(steps).toEqual(['in-progress/downloading', 'in-progress/verifying', 'in-progress/installing', 'in-progress/rebooting', 'in-progress/confirming', 'succeeded']);
      expect(d.events).toContainEqual({ type: 'reboot', jobId: deployment.id, slot: 'b', why: 'install' });
      expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'b', pending: null, onTrial: false, floor: 2, running: { version: '1.1.0', securityVersion: 2, target: artifact.target } });
      expect((await readFile(join(fleet.n.dir, `state-${d.name}`, 'slots', 'b', 'image'))).equals(bytes)).toBe(true);
    }

    // The inventory on the server: what each device reported running after the switch, a signed image.
    await until(async () => (await fleet.context.updates.inventory.list({ version: '1.1.0' })).filter((s) => names.includes(s.thing)).length === 6, 10_000, 'the inventory');
    for (const name of names) {
      expect(await fleet.context.updates.inventory.get(name)).toMatchObject({ firmwareVersion: '1.1.0', securityVersion: 2, imageHash: `sha256:${artifact.sha256}`, authorized: true });
    }
    expect((await fleet.context.updates.inventory.summary()).byVersion).toContainEqual({ firmwareVersion: '1.1.0', securityVersion: 2, devices: 6 });
    const audit = await fleet.context.store.db.selectFrom('audit_events').select(['action', 'outcome']).where('target', '=', `deployment:${deployment.id}`).execute();
    expect(audit.filter((a) => a.action === 'deployment.job.finish' && a.outcome === 'success')).toHaveLength(6);
    expect(audit.map((a) => a.action)).toContain('deployment.complete');
  });
});

describe('an aborted rollout', () => {
  it('corrupt downloads and failed boots in the first phase pass the failure rate: aborted, alerted, the devices not yet released untouched', async () => {
    // Every device would fail: whichever the first phase holds, the rest must never be sent the job.
    const devices: OtaDevice[] = [];
    for (let i = 1; i <= 6; i++) devices.push(await fleet.device(`meter-bad-${i}`, { type: 'meter-v1', faults: [i % 2 === 0 ? 'corrupt-download' : 'boot-failure'] }));
    const { artifact } = await fleet.release({ name: 'meter-fw', version: '2.0.0', securityVersion: 1, hardware: ['meter-v1'] });
    const deployment = await fleet.deploy({ target: artifact.target, selection: { query: { thingType: 'meter-v1' } }, phases: ['3', '100%'], abort: { failureRate: 0.5, minDevices: 3 } });

    await fleet.tick();
    const jobs = await fleet.jobs(deployment.id);
    const first = devices.filter((d) => jobs.get(d.name)?.phase === 0);
    const second = devices.filter((d) => jobs.get(d.name)?.phase === 1);
    await settled(deployment.id, first.map((d) => d.name));
    const failed = await fleet.jobs(deployment.id);
    for (const d of first) {
      const corrupt = Number(d.name.at(-1)) % 2 === 0;
      expect(failed.get(d.name)).toMatchObject(corrupt ? { state: 'rejected', reason: 'signature' } : { state: 'failed', reason: 'health-check-failed' });
      // Nothing changed on the device: the old slot runs.
      await until(() => d.agent.updates?.status().pending === null);
      expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'a', floor: 1, running: { version: '1.0.0' } });
    }

    const tick = await fleet.context.updates.deployments.tick();
    expect(tick.find((t) => t.deployment === deployment.id)).toMatchObject({ state: 'aborted', released: 0, cancelled: 3 });
    const aborted = await fleet.context.updates.deployments.get(deployment.id);
    expect(aborted).toMatchObject({ state: 'aborted', reason: 'failure-rate', counts: { cancelled: 3, total: 6 } });
    const alerts = await fleet.alerts('deployment-aborted');
    expect(alerts.filter((a) => a.details.deployment === deployment.id)).toEqual([expect.objectContaining({ target: `deployment:${deployment.id}`, details: expect.objectContaining({ reason: 'failure-rate', finished: 3, failures: 3 }) })]);

    // Another tick releases nothing; the devices of the second phase were never sent the job.
    await fleet.tick();
    await new Promise((r) => setTimeout(r, 300));
    const after = await fleet.jobs(deployment.id);
    for (const d of second) {
      expect(after.get(d.name)).toMatchObject({ state: 'cancelled', reason: 'cancelled', startedAt: null });
      expect(d.reports(deployment.id)).toEqual([]);
      expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, running: { version: '1.0.0' } });
    }
    expect((await fleet.context.updates.deployments.pendingJobs(second[0]!.name)).jobs).toEqual([]);
  });
});

describe('an automatic rollback on a failed boot', () => {
  it('the new slot fails its health check: failed (health-check-failed), the old slot runs again, the inventory keeps the old version', async () => {
    let checks = 0;
    const d = await fleet.device('camera-rb-1', {
      type: 'camera-v1',
      firmware: { version: '3.0.0', securityVersion: 4 },
      healthCheck: () => {
        checks += 1;
        return false;
      },
    });
    await until(async () => (await fleet.context.updates.inventory.get(d.name))?.firmwareVersion === '3.0.0');
    const { artifact } = await fleet.release({ name: 'camera-fw', version: '3.1.0', securityVersion: 5, hardware: ['camera-v1'] });
    const deployment = await fleet.deploy({ target: artifact.target, selection: { things: [d.name] }, phases: ['100%'] });
    await fleet.tick();
    await settled(deployment.id, [d.name]);

    expect((await fleet.jobs(deployment.id)).get(d.name)).toMatchObject({ state: 'failed', reason: 'health-check-failed' });
    expect(checks).toBe(1);
    expect(d.reports(deployment.id).at(-1)).toBe('failed:health-check-failed');
    const reboots = d.events.filter((e) => e.type === 'reboot');
    expect(reboots).toEqual([
      { type: 'reboot', jobId: deployment.id, slot: 'b', why: 'install' },
      { type: 'reboot', jobId: deployment.id, slot: 'a', why: 'rollback' },
    ]);
    expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null, onTrial: false, floor: 4, running: { version: '3.0.0', securityVersion: 4 } });
    // Back on the old slot, the device reconnects and reports what it runs.
    await until(() => d.events.filter((e) => e.type === 'online').length >= 2);
    await until(async () => (await fleet.context.updates.inventory.get(d.name))?.securityVersion === 4, 10_000, 'the old version in the inventory');
    await new Promise((r) => setTimeout(r, 300));
    expect(await fleet.context.updates.inventory.get(d.name)).toMatchObject({ firmwareVersion: '3.0.0', securityVersion: 4 });
    // Not offered again: the device remembers the job it finished.
    await fleet.tick();
    expect(d.agent.updates?.status().waitingJobs).toEqual([]);
  });
});

describe('a stalled device', () => {
  it('stall-update: in progress past the timeout, its job is timed out and alerted', async () => {
    const d = await fleet.device('tracker-stall-1', { type: 'tracker-v1', faults: ['stall-update'] });
    const ok = await fleet.device('tracker-ok-1', { type: 'tracker-v1' });
    const { artifact } = await fleet.release({ name: 'tracker-fw', version: '1.0.1', securityVersion: 1, hardware: ['tracker-v1'] });
    const deployment = await fleet.deploy({ target: artifact.target, selection: { things: [d.name, ok.name] }, phases: ['100%'], timeoutSeconds: 60 });
    await fleet.tick();
    await until(async () => (await fleet.jobs(deployment.id)).get(d.name)?.state === 'in-progress');
    await settled(deployment.id, [ok.name]);
    expect(d.reports(deployment.id)).toEqual(['in-progress/downloading']);

    // Under the timeout nothing happens; past it (the node's clock moved on) the job is timed out.
    fleet.clock.offsetMs = 30_000;
    try {
      await fleet.tick();
      expect(await fleet.jobState(deployment.id, d.name)).toBe('in-progress');
      fleet.clock.offsetMs = 61_000;
      await fleet.tick();
    } finally {
      fleet.clock.offsetMs = 0;
    }
    const jobs = await fleet.jobs(deployment.id);
    expect(jobs.get(d.name)).toMatchObject({ state: 'timed-out', reason: 'timed-out' });
    expect(jobs.get(ok.name)).toMatchObject({ state: 'succeeded' });
    const alerts = await fleet.alerts('job-timed-out');
    expect(alerts.filter((a) => a.details.deployment === deployment.id)).toEqual([expect.objectContaining({ target: `thing:${d.name}` })]);
    expect((await fleet.context.updates.deployments.get(deployment.id)).state).toBe('completed');
    // The stalled device installed nothing.
    expect(d.agent.updates?.status()).toMatchObject({ activeSlot: 'a', pending: null });
  });
});
