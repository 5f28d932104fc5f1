import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testPki, type TestPki } from './helpers/mtls-certs.js';
import { TestRepository } from './helpers/tuf-repository.js';
import { jobFor, UpdateDevice } from './helpers/update-device.js';
import { UpdateServer } from './helpers/update-server.js';

const IMAGE_142 = randomBytes(300_000);
const SHA_142 = createHash('sha256').update(IMAGE_142).digest('hex');

let pki: TestPki;
let repo: TestRepository;
let server: UpdateServer;
const devices: UpdateDevice[] = [];

beforeAll(async () => {
  pki = await testPki();
  repo = new TestRepository();
  repo.addTarget('sensor-fw-1.4.2', IMAGE_142, { version: '1.4.2', securityVersion: 7, hardware: ['sensor-v2', 'sensor-v3'] });
  repo.addTarget('sensor-fw-1.5.0', randomBytes(2_000), { version: '1.5.0', securityVersion: 8, hardware: ['sensor-v2'] });
  repo.publish();
  server = await UpdateServer.start(pki, repo);
});

afterAll(async () => {
  await server.close();
});

afterEach(async () => {
  server.cut = null;
  server.ignoreRange = false;
  while (devices.length > 0) await devices.pop()?.close();
});

async function device(options: Parameters<typeof UpdateDevice.create>[2] = {}): Promise<UpdateDevice> {
  const d = await UpdateDevice.create(pki, repo.rootJson, options);
  devices.push(d);
  return d;
}

const steps = (d: UpdateDevice, jobId: string): string[] => d.reportsFor(jobId).map((r) => (r.step ? `${r.state}/${r.step}` : r.reason ? `${r.state}/${r.reason}` : r.state));

describe('A/B install', () => {
  it('installs into the inactive slot, reboots on trial, confirms once the gateway is reached, and raises the floor', async () => {
    const d = await device();
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(d.reboots).toBe(1);
    expect(await readFile(join(d.home, 'slots', 'b', 'image'))).toEqual(IMAGE_142);
    expect(d.client.status()).toMatchObject({ activeSlot: 'a', pending: { slot: 'b', jobId: job.jobId, version: '1.4.2', securityVersion: 7, bootAttempts: 0 } });
    // Every request carried the device's client certificate.
    expect(server.requests.every((r) => r.client === 'sensor-1')).toBe(true);

    await d.boot(); // the reboot
    expect(d.client.status()).toMatchObject({ onTrial: true, pending: { bootAttempts: 1 } });
    expect(await d.client.runningFirmware()).toEqual({ firmwareVersion: '1.4.2', securityVersion: 7, imageHash: `sha256:${SHA_142}` });
    d.client.gatewayReached();
    await d.client.settled();

    expect(steps(d, job.jobId)).toEqual(['in-progress/downloading', 'in-progress/downloading', 'in-progress/verifying', 'in-progress/installing', 'in-progress/rebooting', 'in-progress/confirming', 'succeeded']);
    const progress = d.reportsFor(job.jobId).filter((r) => r.step === 'downloading').at(-1);
    expect(progress).toMatchObject({ bytes: IMAGE_142.length, totalBytes: IMAGE_142.length });
    expect(d.client.status()).toMatchObject({ activeSlot: 'b', floor: 7, pending: null, onTrial: false, running: { version: '1.4.2', securityVersion: 7, sha256: SHA_142 } });
    // The verified download is gone once installed; no partial file is left behind.
    expect(await readdir(join(d.home, 'updates', 'downloads'))).toEqual([]);
    expect(await readdir(join(d.home, 'updates', 'partial'))).toEqual([]);
    // The state file is private.
    expect((await stat(join(d.home, 'updates', 'state.json'))).mode & 0o077).toBe(0);
  });

  it('the next update goes into the other slot, and a job listed again after it finished is not redone', async () => {
    const d = await device();
    const first = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(first);
    await d.boot();
    d.client.gatewayReached();
    await d.client.settled();
    const second = jobFor(server, 'sensor-fw-1.5.0');
    await d.take(second);
    expect(d.client.status().pending).toMatchObject({ slot: 'a', version: '1.5.0' });
    const before = d.reports.length;
    d.client.offer([first]);
    await d.client.settled();
    expect(d.reports.length).toBe(before);
  });

  it('reports success without installing when the same version and image already run', async () => {
    const d = await device({ factory: { version: '1.4.2', securityVersion: 7, imagePath: null } });
    // A factory image with the same bytes: the device hashes it on first start.
    const image = join(d.home, 'factory.img');
    await import('node:fs/promises').then((fs) => fs.writeFile(image, IMAGE_142));
    await import('node:fs/promises').then((fs) => fs.rm(join(d.home, 'updates', 'state.json')));
    await d.boot({ factory: { version: '1.4.2', securityVersion: 7, imagePath: image } });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(d.last(job.jobId)).toMatchObject({ state: 'succeeded' });
    expect(d.reboots).toBe(0);
    expect(await d.client.runningFirmware()).toEqual({ firmwareVersion: '1.4.2', securityVersion: 7, imageHash: `sha256:${SHA_142}` });
  });
});

describe('automatic rollback', () => {
  it('a new slot that fails its health check is rolled back to the previous one and the device reboots into it', async () => {
    let healthy = false;
    const d = await device({ healthCheck: () => healthy });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    await d.boot();
    d.client.gatewayReached();
    await d.client.settled();
    expect(d.last(job.jobId)).toMatchObject({ state: 'failed', reason: 'health-check-failed' });
    expect(d.reboots).toBe(2); // into the new slot, and back
    expect(d.client.status()).toMatchObject({ activeSlot: 'a', floor: 5, pending: null, running: { version: '1.4.0' } });
    await d.boot();
    expect(await d.client.runningFirmware()).toMatchObject({ firmwareVersion: '1.4.0', securityVersion: 5 });
    // The same job is not tried again.
    healthy = true;
    await d.take(job);
    expect(d.reboots).toBe(2);
  });

  it('the boot-failure fault makes the new slot fail its health check', async () => {
    const d = await device({ faults: ['boot-failure'] });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    await d.boot();
    d.client.gatewayReached();
    await d.client.settled();
    expect(steps(d, job.jobId).slice(-2)).toEqual(['in-progress/confirming', 'failed/health-check-failed']);
    expect(d.client.status()).toMatchObject({ activeSlot: 'a', floor: 5 });
  });

  it('a new slot that keeps crashing before it confirms is abandoned after maxBootAttempts boots', async () => {
    const d = await device({ config: { maxBootAttempts: 2 } });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    await d.boot(); // boot 1: crashes before the gateway is reached
    await d.boot(); // boot 2: the same
    expect(d.client.status()).toMatchObject({ pending: { bootAttempts: 2 } });
    await d.boot(); // boot 3: the bootloader gives up on the new slot
    expect(d.last(job.jobId)).toMatchObject({ state: 'failed', reason: 'boot-failed' });
    expect(d.client.status()).toMatchObject({ activeSlot: 'a', pending: null, onTrial: false, floor: 5 });
    expect(await d.client.runningFirmware()).toMatchObject({ firmwareVersion: '1.4.0' });
  });

  it('a new slot that does not reach the gateway within healthTimeoutSeconds is rolled back', async () => {
    const d = await device({ config: { healthTimeoutSeconds: 120 } });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    await d.boot();
    await d.client.tick(new Date(d.clock.getTime() + 119_000));
    expect(d.client.status().onTrial).toBe(true);
    await d.client.tick(new Date(d.clock.getTime() + 120_000));
    expect(d.last(job.jobId)).toMatchObject({ state: 'failed', reason: 'health-check-failed' });
    expect(d.client.status()).toMatchObject({ activeSlot: 'a', pending: null });
  });
});

describe('anti-rollback floor', () => {
  it('survives a restart: after running security version 7, a release with 6 is refused, even as a newer version', async () => {
    const d = await device();
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    await d.boot();
    d.client.gatewayReached();
    await d.client.settled();
    await d.client.close();
    await d.boot(); // an ordinary restart, later
    expect(d.client.status().floor).toBe(7);

    repo.addTarget('sensor-fw-1.6.0-weak', randomBytes(1_000), { version: '1.6.0', securityVersion: 6, hardware: ['sensor-v2'] });
    repo.publish();
    const weak = jobFor(server, 'sensor-fw-1.6.0-weak');
    await d.take(weak);
    expect(d.last(weak.jobId)).toMatchObject({ state: 'rejected', reason: 'rollback' });
    expect(d.reboots).toBe(1);
  });
});

describe('battery and maintenance windows', () => {
  it('waits outside the maintenance window (reported queued once) and installs when it opens', async () => {
    const d = await device({ config: { maintenanceWindow: { start: '22:00', end: '04:00' } } });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    const requestsBefore = server.requests.length;
    await d.take(job); // 12:00 UTC
    d.client.offer([job]); // listed again on a reconnect
    await d.client.settled();
    await d.client.tick();
    expect(d.reportsFor(job.jobId)).toEqual([{ jobId: job.jobId, v: 1, state: 'queued', reason: 'maintenance-window', message: expect.stringContaining('22:00') }]);
    expect(server.requests.length).toBe(requestsBefore);
    d.clock = new Date('2030-01-01T23:30:00Z');
    await d.client.tick();
    expect(d.last(job.jobId)).toMatchObject({ state: 'in-progress', step: 'rebooting' });
  });

  it('waits on a low battery and goes on once it is charged; a device on mains power never waits', async () => {
    const d = await device({ config: { minBatteryPercent: 40 } });
    d.battery = 20;
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(d.reportsFor(job.jobId)).toEqual([{ jobId: job.jobId, v: 1, state: 'queued', reason: 'battery-low', message: expect.stringContaining('20 %') }]);
    d.battery = null;
    await d.client.tick();
    expect(d.last(job.jobId)).toMatchObject({ step: 'rebooting' });
  });
});

describe('resumed downloads', () => {
  it('an interrupted download resumes with Range from the bytes already on disk, and the image is complete', async () => {
    const d = await device();
    server.requests.length = 0;
    server.cut = { afterBytes: 100_000, times: 1 };
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    const targetRequests = server.requests.filter((r) => r.path.includes('/targets/'));
    expect(targetRequests.map((r) => r.range)).toEqual([null, expect.stringMatching(/^bytes=\d+-$/)]);
    const resumedAt = Number(/bytes=(\d+)-/.exec(targetRequests[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(100_000);
    expect(await readFile(join(d.home, 'slots', 'b', 'image'))).toEqual(IMAGE_142);
    expect(d.last(job.jobId)).toMatchObject({ step: 'rebooting' });
  });

  it('a server that answers 200 to a Range request restarts the file cleanly', async () => {
    const d = await device();
    server.requests.length = 0;
    server.cut = { afterBytes: 50_000, times: 1 };
    server.ignoreRange = true;
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(server.requests.filter((r) => r.path.includes('/targets/')).length).toBe(2);
    expect(await readFile(join(d.home, 'slots', 'b', 'image'))).toEqual(IMAGE_142);
  });

  it('gives up as download-failed after downloadAttempts, keeping nothing installed', async () => {
    const d = await device({ config: { downloadAttempts: 2 } });
    server.cut = { afterBytes: 10_000, times: 5 };
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(d.last(job.jobId)).toMatchObject({ state: 'failed', reason: 'download-failed' });
    expect(d.client.status().pending).toBeNull();
  });
});

describe('fault modes', () => {
  it('corrupt-download: a flipped byte is caught before install and the job is rejected', async () => {
    const d = await device({ faults: ['corrupt-download'] });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    await d.take(job);
    expect(d.last(job.jobId)).toMatchObject({ state: 'rejected', reason: 'signature', message: expect.stringMatching(/hash/i) });
    expect(d.reboots).toBe(0);
    expect(d.client.status().pending).toBeNull();
  });

  it('stall-update: the device goes silent after downloading starts', async () => {
    const d = await device({ faults: ['stall-update'] });
    const job = jobFor(server, 'sensor-fw-1.4.2');
    d.client.offer([job]);
    await new Promise((r) => setTimeout(r, 50));
    await d.client.tick();
    expect(steps(d, job.jobId)).toEqual(['in-progress/downloading']);
    expect(d.client.status().currentJob).toBe(job.jobId);
  });
});
