import { afterEach, describe, expect, it } from 'vitest';
import type { JobUpdate } from '@fleetward/protocol';
import type { HealthSample } from '../../../src/updates/deployments/index.js';
import { DIALECTS } from '../../helpers/environment.js';
import { refusalCode } from '../../helpers/refusals.js';
import { alice, artifact, harness, names, type Harness } from './deployments-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const MIN = 60_000;
const succeeded: JobUpdate = { v: 1, state: 'succeeded' };
const failed: JobUpdate = { v: 1, state: 'failed', reason: 'install-failed' };

async function fresh(dialect: (typeof DIALECTS)[number]): Promise<Harness> {
  const h = await harness(dialect);
  cleanups.push(() => h.cleanup());
  return h;
}

async function releasedThings(h: Harness, id: string): Promise<string[]> {
  const rows = await h.context.store.db.selectFrom('deployment_jobs').select('thing').where('deployment_id', '=', id).where('released_at', 'is not', null).where('state', 'in', ['queued', 'in-progress']).orderBy('thing').execute();
  return rows.map((r) => r.thing);
}

describe.each(DIALECTS)('deployments on %s', (dialect) => {
  it('creates a deployment: incompatible, rollback and up-to-date devices are decided at once, the rest spread over phases; audited', async () => {
    const h = await fresh(dialect);
    await h.things(names('ok', 8));
    await h.things(['cam-1'], { type: 'camera' });
    await h.things(['untyped-1'], { type: null });
    await h.things(['ahead-1'], { software: { version: '2.0.0', securityVersion: 9 } });
    await h.things(['same-1'], { software: { version: '1.4.2', securityVersion: 7 } });
    const deployments = h.deployments();
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: [...names('ok', 8), 'cam-1', 'untyped-1', 'ahead-1', 'same-1'] }, phases: ['2', '50%', '100%'] }, alice);
    expect(d).toMatchObject({ state: 'running', automatic: false, version: '1.4.2', securityVersion: 7, createdBy: 'operator:alice', rollout: { phases: ['2', '50%', '100%'] } });
    expect(d.counts).toMatchObject({ queued: 8, notReleased: 8, rejected: 3, succeeded: 1, total: 12 });
    expect(d.phases.map((p) => p.size)).toEqual([2, 2, 4]);
    const { jobs } = await deployments.jobs(d.id, { state: 'rejected' });
    expect(jobs.map((j) => [j.thing, j.reason])).toEqual([
      ['ahead-1', 'rollback'],
      ['cam-1', 'incompatible'],
      ['untyped-1', 'incompatible'],
    ]);
    const [audited] = await h.context.audit.list({ limit: 10, action: 'deployment.create' });
    expect(audited).toMatchObject({ actor: 'operator:alice', target: `deployment:${d.id}`, outcome: 'success' });
    expect(JSON.parse(audited?.details ?? '{}')).toMatchObject({ artifact: 'thermo-fw-1.4.2', incompatible: 2, rollback: 1, upToDate: 1, phases: [2, 2, 4] });
  });

  it('refuses an unsigned or unknown artifact, an empty selection, one matching nothing and bad phases, writing nothing', async () => {
    const h = await fresh(dialect);
    await h.things(['a']);
    await h.context.identity.groups.create({ name: 'empty' }, alice);
    h.artifacts.set('unsigned-1', artifact({ target: 'unsigned-1', signed: false }));
    const deployments = h.deployments();
    expect(await refusalCode(deployments.create({ target: 'unsigned-1', selection: { things: ['a'] } }, alice))).toBe('FW_ERR_CONFLICT');
    expect(await refusalCode(deployments.create({ target: 'nope-1', selection: { things: ['a'] } }, alice))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(deployments.create({ target: '../etc/passwd', selection: { things: ['a'] } }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(deployments.create({ target: 'thermo-fw-1.4.2', selection: {} }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(deployments.create({ target: 'thermo-fw-1.4.2', selection: { groups: ['empty'] } }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: ['ghost'] } }, alice))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: ['a'] }, phases: ['50%', '10%'] }, alice))).toBe('FW_ERR_VALIDATION');
    expect(await deployments.list()).toEqual([]);
    expect(await h.context.store.db.selectFrom('deployment_jobs').selectAll().execute()).toEqual([]);
  });

  it('selects by group and by query (type, attributes)', async () => {
    const h = await fresh(dialect);
    await h.things(['g-1', 'g-2'], { group: 'site-a' });
    await h.things(['q-1'], { type: 'thermostat' });
    await h.context.identity.things.update('q-1', { attributes: { floor: '3' } }, alice);
    await h.things(['q-2']);
    const deployments = h.deployments();
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { groups: ['site-a'], query: { thingType: 'thermostat', attributes: { floor: '3' } } } }, alice);
    const { jobs } = await deployments.jobs(d.id);
    expect(jobs.map((j) => j.thing)).toEqual(['g-1', 'g-2', 'q-1']);
  });

  it('rolls out phase by phase at the rate, notifies devices with their job, and completes', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 10));
    const deployments = h.deployments();
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: names('t', 10) }, phases: ['2', '100%'], ratePerMinute: 3 }, alice);
    await deployments.tick();
    const first = await releasedThings(h, d.id);
    expect(first).toHaveLength(2);
    expect(h.notified.map((n) => n.thing).sort()).toEqual(first);
    const [note] = h.notified;
    expect(note?.jobs.jobs).toEqual([
      {
        jobId: d.id,
        deploymentId: d.id,
        state: 'queued',
        target: 'thermo-fw-1.4.2',
        version: '1.4.2',
        securityVersion: 7,
        metadataUrl: 'https://fleet.example:8443/updates/metadata/',
        targetsUrl: 'https://fleet.example:8443/updates/targets/',
        createdAt: h.clock.now().toISOString(),
      },
    ]);
    // Phase 1 waits until phase 0 is final.
    h.clock.advance(30_000);
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toEqual(first);
    for (const thing of first) {
      expect(await deployments.report(thing, d.id, { v: 1, state: 'in-progress', step: 'downloading', bytes: 10, totalBytes: 1024, clientToken: 'c1' })).toEqual({ jobId: d.id, state: 'in-progress', clientToken: 'c1' });
      expect((await deployments.report(thing, d.id, succeeded)).state).toBe('succeeded');
    }
    // The rate holds: 3 in any minute, however many ticks (2 went out 30 s ago).
    await deployments.tick();
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toHaveLength(1);
    h.clock.advance(29_000);
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toHaveLength(1);
    h.clock.advance(1_000);
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toHaveLength(3);
    const status = await deployments.get(d.id);
    expect(status).toMatchObject({ currentPhase: 1, counts: { succeeded: 2, queued: 8, notReleased: 5 } });
    for (let i = 0; i < 10 && (await deployments.get(d.id)).state === 'running'; i++) {
      for (const thing of await releasedThings(h, d.id)) await deployments.report(thing, d.id, succeeded);
      h.clock.advance(MIN);
      await deployments.tick();
    }
    const done = await deployments.get(d.id);
    expect(done).toMatchObject({ state: 'completed', currentPhase: null, counts: { succeeded: 10, total: 10 } });
    expect((await h.context.audit.list({ limit: 10, action: 'deployment.complete' })).length).toBe(1);
    expect((await deployments.jobs(d.id)).jobs.every((j) => j.finishedAt !== null && j.releasedAt !== null)).toBe(true);
  });

  it('a device cannot report on another device\'s job, on a job not released to it, or after its job is final', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 4));
    const deployments = h.deployments();
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: names('t', 4) }, phases: ['1', '100%'] }, alice);
    await deployments.tick();
    const [mine] = await releasedThings(h, d.id);
    const others = names('t', 4).filter((t) => t !== mine);
    // Another device (in or out of the deployment) reporting on this job: not found, nothing changes.
    expect(await refusalCode(deployments.report('intruder', d.id, succeeded))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(deployments.report(others[0] as string, d.id, succeeded))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(deployments.report(mine as string, 'dep-000000000000', succeeded))).toBe('FW_ERR_NOT_FOUND');
    expect(await refusalCode(deployments.report(mine as string, '../../x', succeeded))).toBe('FW_ERR_NOT_FOUND');
    expect(await deployments.pendingJobs(others[0] as string)).toEqual({ v: 1, jobs: [] });
    expect((await deployments.get(d.id)).counts).toMatchObject({ queued: 4, succeeded: 0 });
    expect((await deployments.report(mine as string, d.id, failed)).state).toBe('failed');
    expect(await refusalCode(deployments.report(mine as string, d.id, succeeded))).toBe('FW_ERR_CONFLICT');
    expect(await refusalCode(deployments.report(mine as string, d.id, { v: 1, state: 'in-progress' }))).toBe('FW_ERR_CONFLICT');
    const [job] = (await deployments.jobs(d.id, { state: 'failed' })).jobs;
    expect(job).toMatchObject({ thing: mine, reason: 'install-failed' });
    expect(job?.finishedAt).not.toBeNull();
  });

  it('a waiting device stays queued; a cancelled deployment releases nothing more and its jobs take no report', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 6));
    const deployments = h.deployments();
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: names('t', 6) }, phases: ['2', '100%'] }, alice);
    await deployments.tick();
    const [waiting, installing] = await releasedThings(h, d.id);
    expect((await deployments.report(waiting as string, d.id, { v: 1, state: 'queued', reason: 'battery-low' })).state).toBe('queued');
    await deployments.report(installing as string, d.id, { v: 1, state: 'in-progress', step: 'installing' });
    h.notified.length = 0;
    const cancelled = await deployments.cancel(d.id, alice);
    expect(cancelled).toMatchObject({ state: 'cancelled', reason: 'operator', counts: { cancelled: 5, 'in-progress': 1 } });
    // The waiting device is told its job is gone; the install in progress may finish.
    expect(h.notified).toEqual([{ thing: waiting, jobs: { v: 1, jobs: [] } }]);
    expect(await refusalCode(deployments.report(waiting as string, d.id, { v: 1, state: 'in-progress' }))).toBe('FW_ERR_CONFLICT');
    expect((await deployments.report(installing as string, d.id, succeeded)).state).toBe('succeeded');
    for (let i = 0; i < 3; i++) {
      h.clock.advance(10 * MIN);
      await deployments.tick();
    }
    expect(await releasedThings(h, d.id)).toEqual([]);
    expect((await deployments.get(d.id)).counts).toMatchObject({ cancelled: 5, succeeded: 1, queued: 0 });
    expect(await refusalCode(deployments.cancel(d.id, alice))).toBe('FW_ERR_CONFLICT');
    expect(await refusalCode(deployments.cancel('dep-nope', alice))).toBe('FW_ERR_NOT_FOUND');
    expect((await h.context.audit.list({ limit: 10, action: 'deployment.cancel' }))[0]).toMatchObject({ actor: 'operator:alice', target: `deployment:${d.id}` });
  });

  it('times out stalled devices with an alert, and aborts past the failure rate with an alert, cancelling the rest', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 12));
    const deployments = h.deployments();
    const d = await deployments.create(
      { target: 'thermo-fw-1.4.2', selection: { things: names('t', 12) }, phases: ['4', '100%'], abort: { failureRate: 0.3, minDevices: 3 }, timeoutSeconds: 600, startTimeoutSeconds: 3600 },
      alice,
    );
    await deployments.tick();
    const [a, b, c, e] = await releasedThings(h, d.id);
    await deployments.report(a as string, d.id, { v: 1, state: 'in-progress', step: 'downloading' });
    await deployments.report(b as string, d.id, succeeded);
    await deployments.report(c as string, d.id, { v: 1, state: 'failed', reason: 'boot-failed' });
    // e never answers (offline): it stalls after the start timeout but is no failure.
    h.clock.advance(10 * MIN);
    await deployments.tick();
    expect((await deployments.jobs(d.id, { state: 'timed-out' })).jobs.map((j) => j.thing)).toEqual([a]);
    expect(h.alerts.filter((x) => x.kind === 'job-timed-out')).toEqual([expect.objectContaining({ thing: a, deployment: d.id })]);
    // 2 failures (c failed, a stalled mid-install) of 3 finished: above 30 %.
    expect((await deployments.get(d.id)).state).toBe('aborted');
    expect(h.alerts.at(-1)).toMatchObject({ kind: 'deployment-aborted', deployment: d.id, details: { reason: 'failure-rate', finished: 3, failures: 2 } });
    const status = await deployments.get(d.id);
    expect(status).toMatchObject({ reason: 'failure-rate', counts: { cancelled: 9, 'timed-out': 1, failed: 1, succeeded: 1 } });
    expect((await deployments.jobs(d.id, { state: 'cancelled' })).jobs.map((j) => j.thing)).toContain(e);
    expect((await h.context.audit.list({ limit: 10, action: 'deployment.abort' })).length).toBe(1);
    expect((await h.context.audit.list({ limit: 10, action: 'deployment.job.timeout' }))[0]).toMatchObject({ target: `thing:${a}` });
  });

  it('pauses when updated devices regress against the others, with an alert; resuming accepts the regression', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 20));
    const samples = new Map<string, HealthSample>();
    const health = { samples: (things: readonly string[]) => Promise.resolve(new Map(things.map((t) => [t, samples.get(t) ?? { authFailures: 0, newListeningPorts: 0, reboots: 0 }]))) };
    const deployments = h.deployments({ health });
    const d = await deployments.create({ target: 'thermo-fw-1.4.2', selection: { things: names('t', 20) }, phases: ['5', '10', '100%'], abort: { failureRate: 0.5, minDevices: 5 }, health: { action: 'pause', minCohort: 5 } }, alice);
    await deployments.tick();
    const updated = await releasedThings(h, d.id);
    for (const thing of updated) {
      await deployments.report(thing, d.id, succeeded);
      samples.set(thing, { authFailures: 0, newListeningPorts: 1, reboots: 0 });
    }
    h.clock.advance(MIN);
    await deployments.tick();
    expect(await deployments.get(d.id)).toMatchObject({ state: 'paused', reason: 'health-regression', counts: { notReleased: 15 } });
    expect(h.alerts.at(-1)).toMatchObject({ kind: 'deployment-paused', deployment: d.id });
    h.clock.advance(MIN);
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toEqual([]);
    const resumed = await deployments.resume(d.id, alice);
    expect(resumed).toMatchObject({ state: 'running', reason: null, acknowledged: ['listening-ports'] });
    await deployments.tick();
    expect(await releasedThings(h, d.id)).toHaveLength(5);
    expect((await h.context.audit.list({ limit: 10, action: 'deployment.resume' }))[0]).toMatchObject({ actor: 'operator:alice' });
  });

  it('two nodes ticking at once release each job once', async () => {
    const h = await fresh(dialect);
    await h.things(names('t', 30));
    const one = h.deployments();
    const two = h.deployments();
    const d = await one.create({ target: 'thermo-fw-1.4.2', selection: { things: names('t', 30) }, phases: ['10', '100%'], ratePerMinute: 7 }, alice);
    const results = await Promise.all([one.tick(), two.tick(), one.tick(), two.tick()]);
    expect(results.flat().reduce((n, r) => n + r.released, 0)).toBe(7);
    expect(await releasedThings(h, d.id)).toHaveLength(7);
    expect(h.notified).toHaveLength(7);
  });

  it('deploys a security release to opted-in groups; alerts for devices that cannot take it and groups that opted out', async () => {
    const h = await fresh(dialect);
    await h.things(['in-1', 'in-2'], { group: 'lobby' });
    await h.things(['cam-1'], { type: 'camera', group: 'lobby' });
    await h.things(['ward-1'], { group: 'ward' });
    await h.things(['loose-1']);
    await h.context.identity.groups.create({ name: 'icu', parent: 'ward' }, alice);
    await h.context.identity.groups.addThing('icu', 'in-2', alice);
    const deployments = h.deployments();
    expect((await deployments.groupAutoUpdates()).map((g) => [g.group, g.autoSecurityUpdates, g.effective])).toEqual([
      ['icu', true, true],
      ['lobby', true, true],
      ['ward', true, true],
    ]);
    expect(await deployments.setGroupAutoUpdates('ward', false, alice)).toMatchObject({ group: 'ward', autoSecurityUpdates: false, effective: false, members: 1 });
    expect(await refusalCode(deployments.setGroupAutoUpdates('nope', false, alice))).toBe('FW_ERR_NOT_FOUND');
    expect((await h.context.audit.list({ limit: 10, action: 'group.auto-security-updates' }))[0]).toMatchObject({ target: 'group:ward' });
    // icu is under ward: opted out with it; in-2 is in lobby and icu: the opt-out wins.
    const release = artifact({ target: 'thermo-fw-1.4.3', version: '1.4.3', securityVersion: 8, securityRelease: true });
    const result = await deployments.deploySecurityRelease(release);
    expect(result.deployment).toMatchObject({ automatic: true, createdBy: 'updates', state: 'running', selection: { groups: ['lobby'] } });
    const jobs = (await deployments.jobs(result.deployment?.id as string)).jobs;
    expect(jobs.map((j) => [j.thing, j.state])).toEqual([
      ['cam-1', 'rejected'],
      ['in-1', 'queued'],
    ]);
    expect(result.blocked).toEqual([{ thing: 'cam-1', reason: 'incompatible' }]);
    expect(result.optedOut).toEqual([
      { group: 'icu', devices: 1 },
      { group: 'ward', devices: 1 },
    ]);
    expect(h.alerts.map((a) => [a.kind, a.thing ?? a.details?.group])).toEqual([
      ['security-update-blocked', 'cam-1'],
      ['security-update-blocked', 'icu'],
      ['security-update-blocked', 'ward'],
    ]);
    expect(await refusalCode(deployments.deploySecurityRelease(artifact()))).toBe('FW_ERR_VALIDATION');
    expect(await refusalCode(deployments.deploySecurityRelease({ ...release, signed: false }))).toBe('FW_ERR_CONFLICT');
  });

  it('lists devices that cannot update: unsupported hardware, or failing repeatedly since their last success', async () => {
    const h = await fresh(dialect);
    await h.things(['flaky', 'fine']);
    await h.things(['cam-1'], { type: 'camera' });
    const deployments = h.deployments({ cannotUpdateAfterFailures: 2 });
    for (let round = 0; round < 2; round++) {
      const target = `thermo-fw-1.5.${round}`;
      h.artifacts.set(target, artifact({ target, version: `1.5.${round}` }));
      const d = await deployments.create({ target, selection: { things: ['flaky', 'fine', 'cam-1'] }, phases: ['100%'] }, alice);
      await deployments.tick();
      await deployments.report('flaky', d.id, failed);
      await deployments.report('fine', d.id, round === 0 ? failed : succeeded);
      h.clock.advance(MIN);
    }
    const list = await deployments.cannotUpdate();
    expect(list.map((c) => [c.thing, c.reasons, c.failedJobs])).toEqual([
      ['cam-1', ['incompatible-hardware'], 0],
      ['flaky', ['failing'], 2],
    ]);
    expect(h.alerts.filter((a) => a.kind === 'cannot-update').map((a) => a.thing)).toEqual(['flaky']);
  });
});
