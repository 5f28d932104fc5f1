import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedFleet } from '../../src/sim/fleet-simulator.js';
import { NodeApi } from '../../src/sim/node-api.js';
import { parseSimOptions } from '../../src/sim/sim-options.js';
import { REBOOT_EXIT_CODE } from '../../src/updates/reboot-exit-code.js';
import { OtaFleet, until } from './helpers/ota-fleet.js';

/**
 * The simulator and the daemon taking an update from a real node. Here the node's own runner
 * releases the jobs (every second), as it does in production.
 */
let fleet: OtaFleet;

beforeAll(async () => {
  // The simulator brings its data contract; the rollout runs on the node's schedule.
  fleet = await OtaFleet.start({ FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse', FLEETWARD_UPDATES_ROLLOUT_INTERVAL_SECONDS: '1' });
});

afterAll(async () => {
  await fleet?.close();
});

describe('fleetward-sim --trusted-root', () => {
  it('a fleet of 5 simulated devices takes an update end to end: every job succeeds, the summary counts it', async () => {
    const token = await fleet.n.t.operatorToken('sim', 'operator');
    const api = new NodeApi({ apiUrl: fleet.n.apiUrl, token, caPem: fleet.n.caPem });
    const options = parseSimOptions(['--devices', '5', '--duration', '1', '--trusted-root', fleet.rootFile, '--hardware', 'sim-ota-v1']);
    const sim = await SimulatedFleet.create(api, { caPem: fleet.n.caPem, mqttUrl: fleet.n.mqttUrl }, options);
    try {
      await sim.start();
      await until(() => sim.online() === 5, 15_000, 'the simulated fleet online');
      const { artifact } = await fleet.release({ name: 'sim-fw', version: '1.1.0', securityVersion: 1, hardware: ['sim-ota-v1'] });
      const deployment = await fleet.deploy({ target: artifact.target, selection: { query: { thingType: 'sim-ota-v1' } }, phases: ['2', '100%'] });
      expect(deployment.counts).toMatchObject({ total: 5, queued: 5 });
      await until(async () => (await fleet.context.updates.deployments.get(deployment.id)).state === 'completed', 30_000, 'the deployment to complete');
      expect((await fleet.context.updates.deployments.get(deployment.id)).counts).toMatchObject({ succeeded: 5, total: 5 });
      await until(() => sim.devices.every((d) => d.agent?.updates?.status().running.version === '1.1.0'), 10_000, 'every device on the new slot');
      for (const d of sim.devices) expect(d.agent?.updates?.status()).toMatchObject({ activeSlot: 'b', floor: 1, pending: null });
      await until(async () => (await fleet.context.updates.inventory.list({ version: '1.1.0' })).length === 5, 10_000, 'the inventory');
      expect(sim.summary()).toMatchObject({ devices: 5, provisioned: 5, connected: 5, errors: 0, updates: { succeeded: 5, failed: 0, rejected: 0, reboots: 5 } });
    } finally {
      await sim.stop();
    }
  });
});

describe('fleetward-agent daemon', () => {
  const bin = new URL('../../bin/fleetward-agent.js', import.meta.url).pathname;

  function run(config: string): { exit: Promise<number | null>; lines: () => { type: string; [key: string]: unknown }[]; stop: () => void } {
    const child = spawn(process.execPath, [bin, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return {
      exit,
      lines: () => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string }),
      stop: () => child.kill('SIGTERM'),
    };
  }

  it('installs an update and exits 75 to reboot; started again it confirms the new slot and reports succeeded', async () => {
    await fleet.register('daemon-1', 'gw-v1');
    const { artifact, bytes } = await fleet.release({ name: 'gw-fw', version: '4.2.0', securityVersion: 3, hardware: ['gw-v1'] });
    const config = join(fleet.n.dir, 'daemon-1.json');
    await writeFile(config, JSON.stringify({ thing: 'daemon-1', mqttUrl: fleet.n.mqttUrl, caFile: 'ca.pem', stateDir: 'state-daemon-1', firmware: { version: '4.1.0', securityVersion: 2 }, updates: { trustedRoot: 'root.json', hardware: 'gw-v1' } }));
    const deployment = await fleet.deploy({ target: artifact.target, selection: { things: ['daemon-1'] } });

    const first = run(config);
    const code = await Promise.race([first.exit, new Promise((r) => setTimeout(() => r('still running'), 25_000))]);
    if (code === 'still running') first.stop();
    expect(code, JSON.stringify(first.lines())).toBe(REBOOT_EXIT_CODE);
    expect(first.lines()).toContainEqual(expect.objectContaining({ type: 'reboot', jobId: deployment.id, slot: 'b', why: 'install' }));
    expect(first.lines().at(-1)).toMatchObject({ type: 'restarting', exitCode: 75 });
    const installed = JSON.parse(await readFile(join(fleet.n.dir, 'state-daemon-1', 'updates', 'state.json'), 'utf8')) as { active: string; pending: { slot: string; version: string } | null };
    expect(installed).toMatchObject({ active: 'a', pending: { slot: 'b', version: '4.2.0' } });
    expect((await readFile(join(fleet.n.dir, 'state-daemon-1', 'slots', 'b', 'image'))).equals(bytes)).toBe(true);
    expect(await fleet.jobState(deployment.id, 'daemon-1')).toBe('in-progress');

    const second = run(config);
    try {
      await until(async () => (await fleet.jobState(deployment.id, 'daemon-1')) === 'succeeded', 20_000, 'the job to succeed');
      expect(second.lines()).toContainEqual(expect.objectContaining({ type: 'update', jobId: deployment.id, update: expect.objectContaining({ state: 'succeeded' }) }));
      const confirmed = JSON.parse(await readFile(join(fleet.n.dir, 'state-daemon-1', 'updates', 'state.json'), 'utf8')) as unknown;
      expect(confirmed).toMatchObject({ active: 'b', pending: null, floor: 3, running: { version: '4.2.0', securityVersion: 3 } });
      await until(async () => (await fleet.context.updates.inventory.get('daemon-1'))?.firmwareVersion === '4.2.0', 10_000, 'the inventory');
      expect(await fleet.context.updates.inventory.get('daemon-1')).toMatchObject({ securityVersion: 3, imageHash: `sha256:${artifact.sha256}`, authorized: true });
    } finally {
      second.stop();
    }
    expect(await second.exit).toBe(0);
  });
});
