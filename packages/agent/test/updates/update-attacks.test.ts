import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testPki, type TestPki } from './helpers/mtls-certs.js';
import { newRoleKey, TestRepository } from './helpers/tuf-repository.js';
import { jobFor, UpdateDevice } from './helpers/update-device.js';
import { UpdateServer } from './helpers/update-server.js';

/**
 * The update client from the attacker's side (issue 7): every one of these must be refused on the
 * device, reported with its reason, and leave the device running what it ran, with nothing written
 * to a slot.
 */
let pki: TestPki;
let server: UpdateServer;
const devices: UpdateDevice[] = [];
const GOOD = randomBytes(64_000);

function fleetRepository(): TestRepository {
  const repo = new TestRepository();
  repo.addTarget('sensor-fw-1.4.2', GOOD, { version: '1.4.2', securityVersion: 7, hardware: ['sensor-v2'] });
  repo.publish();
  return repo;
}

beforeAll(async () => {
  pki = await testPki();
  server = await UpdateServer.start(pki, fleetRepository());
});

afterAll(async () => {
  await server.close();
});

afterEach(async () => {
  server.replaced.clear();
  while (devices.length > 0) await devices.pop()?.close();
});

/** A device that trusts `repo`'s root and runs 1.4.0 with security version 5 (or what `factory` says). */
async function deviceTrusting(repo: TestRepository, factory = { version: '1.4.0', securityVersion: 5, imagePath: null }): Promise<UpdateDevice> {
  const d = await UpdateDevice.create(pki, repo.rootJson, { factory });
  devices.push(d);
  return d;
}

async function expectRefused(d: UpdateDevice, target: string, expected: { state: string; reason: string; message?: RegExp }): Promise<void> {
  const job = jobFor(server, target);
  await d.take(job);
  expect(d.last(job.jobId)).toMatchObject({ state: expected.state, reason: expected.reason, ...(expected.message && { message: expect.stringMatching(expected.message) }) });
  expect(d.reboots).toBe(0);
  expect(d.client.status()).toMatchObject({ activeSlot: 'a', pending: null });
  expect(await readdir(join(d.home, 'slots')).catch(() => [])).toEqual([]);
  expect(await readdir(join(d.home, 'updates', 'downloads'))).toEqual([]);
}

describe('refused and reported', () => {
  it('targets metadata signed by a key the root does not name (unsigned / unknown key)', async () => {
    const repo = fleetRepository();
    repo.addTarget('evil-fw', randomBytes(1_000), { version: '9.0.0', securityVersion: 99, hardware: ['sensor-v2'] });
    repo.publish({ targetsKey: newRoleKey() });
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo), 'evil-fw', { state: 'rejected', reason: 'signature', message: /signed by 0\/1 keys/ });
  });

  it('an artifact whose bytes were changed after signing (arbitrary software)', async () => {
    const repo = fleetRepository();
    server.repository = repo;
    const name = [...repo.files.keys()][0] as string;
    const changed = Buffer.from(GOOD);
    changed[100] = (changed[100] ?? 0) ^ 1;
    server.replaced.set(name, changed);
    await expectRefused(await deviceTrusting(repo), 'sensor-fw-1.4.2', { state: 'rejected', reason: 'signature', message: /hash/i });
  });

  it('an unsigned artifact: a target the signed metadata does not list', async () => {
    const repo = fleetRepository();
    repo.files.set('0'.repeat(64) + '.unlisted-fw', randomBytes(100));
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo), 'unlisted-fw', { state: 'rejected', reason: 'not-found' });
  });

  it('an older version (rollback), signed and valid', async () => {
    const repo = fleetRepository();
    repo.addTarget('sensor-fw-1.3.9', randomBytes(1_000), { version: '1.3.9', securityVersion: 5, hardware: ['sensor-v2'] });
    repo.publish();
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo), 'sensor-fw-1.3.9', { state: 'rejected', reason: 'rollback', message: /older/ });
  });

  it('the same version re-signed with a lower security version', async () => {
    const repo = fleetRepository();
    repo.addTarget('sensor-fw-1.4.2-resigned', randomBytes(1_000), { version: '1.4.2', securityVersion: 6, hardware: ['sensor-v2'] });
    repo.publish();
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo, { version: '1.4.2', securityVersion: 7, imagePath: null }), 'sensor-fw-1.4.2-resigned', { state: 'rejected', reason: 'rollback', message: /security version 6/ });
  });

  it('an expired timestamp (freeze attack)', async () => {
    const repo = fleetRepository();
    repo.addTarget('sensor-fw-1.5.0', randomBytes(1_000), { version: '1.5.0', securityVersion: 8, hardware: ['sensor-v2'] });
    repo.publish({ timestampExpires: new Date(Date.now() - 60_000) });
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo), 'sensor-fw-1.5.0', { state: 'rejected', reason: 'signature', message: /freeze/ });
  });

  it('metadata of another fleet (signed by another root)', async () => {
    const ours = fleetRepository();
    const theirs = fleetRepository();
    server.repository = theirs;
    await expectRefused(await deviceTrusting(ours), 'sensor-fw-1.4.2', { state: 'rejected', reason: 'signature' });
  });

  it('an oversized download (endless data): more bytes than signed', async () => {
    const repo = fleetRepository();
    server.repository = repo;
    const name = [...repo.files.keys()][0] as string;
    server.replaced.set(name, Buffer.concat([GOOD, randomBytes(2 * 1024 * 1024)]));
    const d = await deviceTrusting(repo);
    await expectRefused(d, 'sensor-fw-1.4.2', { state: 'rejected', reason: 'too-large' });
    expect(await readdir(join(d.home, 'updates', 'partial'))).toEqual([]);
  });

  it('a signed length beyond what the device accepts (maxArtifactBytes)', async () => {
    const repo = fleetRepository();
    server.repository = repo;
    const d = await UpdateDevice.create(pki, repo.rootJson, { config: { maxArtifactBytes: 1_000 } });
    devices.push(d);
    await expectRefused(d, 'sensor-fw-1.4.2', { state: 'rejected', reason: 'too-large' });
  });

  it('an artifact for another hardware type', async () => {
    const repo = fleetRepository();
    repo.addTarget('gateway-fw-2.0.0', randomBytes(1_000), { version: '2.0.0', securityVersion: 9, hardware: ['gateway-v1'] });
    repo.publish();
    server.repository = repo;
    await expectRefused(await deviceTrusting(repo), 'gateway-fw-2.0.0', { state: 'rejected', reason: 'incompatible', message: /gateway-v1/ });
  });

  it('rolled-back metadata: an older timestamp after the device has seen a newer one', async () => {
    const repo = fleetRepository();
    server.repository = repo;
    const d = await deviceTrusting(repo);
    const snapshotOfV1 = new Map(repo.metadata);
    repo.addTarget('sensor-fw-1.5.0', randomBytes(1_000), { version: '1.5.0', securityVersion: 8, hardware: ['sensor-v2'] });
    repo.publish();
    const first = jobFor(server, 'sensor-fw-1.5.0', 'job-seen-v2');
    await d.take(first); // sees timestamp version 2 (and installs)
    // A mirror (or a man in the middle with the old files) serves version 1 again.
    for (const [name, body] of snapshotOfV1) repo.metadata.set(name, body);
    const fresh = await UpdateDevice.create(pki, repo.rootJson);
    devices.push(fresh);
    const { cp } = await import('node:fs/promises');
    await cp(join(d.home, 'updates', 'tuf'), join(fresh.home, 'updates', 'tuf'), { recursive: true });
    await fresh.boot();
    const job = jobFor(server, 'sensor-fw-1.4.2', 'job-after-rollback');
    await fresh.take(job);
    expect(fresh.last(job.jobId)).toMatchObject({ state: 'rejected', reason: 'rollback' });
  });

  it('a repository whose TLS certificate is not from the platform CA is never trusted', async () => {
    const otherPki = await testPki('Impostor CA');
    const repo = fleetRepository();
    const impostor = await UpdateServer.start(otherPki, repo);
    try {
      const d = await deviceTrusting(repo);
      const job = { ...jobFor(impostor, 'sensor-fw-1.4.2') };
      await d.take(job);
      expect(d.last(job.jobId)).toMatchObject({ state: 'failed', reason: 'download-failed' });
      expect(impostor.requests).toEqual([]);
    } finally {
      await impostor.close();
    }
  });
});
