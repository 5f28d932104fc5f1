import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { signMetadata } from '../../../src/updates/tuf/offline-signing.js';
import { deviceWithCertificate, type DeviceCredentials } from '../../helpers/devices.js';
import { DIALECTS } from '../../helpers/environment.js';
import { startTestNode, type TestNode } from '../../helpers/test-node.js';
import { addArtifact, deviceUpdater, offlineKey, publishTargets, setUpRepository, type SignedRepository } from '../../helpers/update-repository.js';

const admin = { name: 'operator:admin' };
const DAY = 86_400_000;

/** Raw HTTPS GET with an optional client certificate and headers. */
function get(url: string, ca: string, device: { keyPem: string; certPem: string } | null, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers, ...(device && { key: device.keyPem, cert: device.certPem }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each(DIALECTS)('signed update repository (TUF) on %s', (dialect) => {
  let t: TestNode;
  let base: string;
  let ca: string;
  let repo: SignedRepository;
  let sensor: DeviceCredentials;
  let gateway: DeviceCredentials;
  // Starts two days back, so metadata signed "then" is expired in real time (freeze tests).
  const clock: Clock & { at: number } = { at: Date.now() - 2 * DAY, now: () => new Date(clock.at), nowMs: () => clock.at };

  beforeAll(async () => {
    t = await startTestNode(dialect, { clock });
    base = (await t.node.listen()).apiUrl;
    ca = await readFile(t.node.context.layout.caFile, 'utf8');
    const { identity } = t.node.context;
    await identity.thingTypes.create({ name: 'sensor-v2' }, admin);
    await identity.thingTypes.create({ name: 'gateway-v1' }, admin);
    await identity.things.create({ name: 'sensor-1', type: 'sensor-v2' }, admin);
    await identity.things.create({ name: 'gw-1', type: 'gateway-v1' }, admin);
    sensor = await deviceWithCertificate(t.node.context, 'sensor-1', { create: false });
    gateway = await deviceWithCertificate(t.node.context, 'gw-1', { create: false });
  });
  afterAll(async () => {
    await t.close();
  });

  it('has nothing to sign before a root is imported', async () => {
    await expect(t.node.context.updates.repository.proposeTargets(30)).rejects.toMatchObject({ code: 'FW_ERR_UPDATES_NOT_SET_UP' });
  });

  it('refuses a root that is unsigned, signed by another key, or names other online keys', async () => {
    const { repository } = t.node.context.updates;
    const key = offlineKey();
    const proposal = await repository.proposeRoot({ rootKeys: [key.publicKey], rootThreshold: 1, targetsKeys: [offlineKey().publicKey], targetsThreshold: 1, expiresDays: 30 });
    await expect(repository.importRoot(proposal, admin)).rejects.toMatchObject({ code: 'FW_ERR_SIGNATURE_INVALID' });
    await expect(repository.importRoot(await signMetadata(proposal, [offlineKey().signer]), admin)).rejects.toMatchObject({ code: 'FW_ERR_SIGNATURE_INVALID' });
    const forged = structuredClone(proposal) as { signed: { roles: { timestamp: { keyids: string[] } } } };
    forged.signed.roles.timestamp.keyids = [proposal.signed === null ? '' : Object.keys((proposal.signed as { keys: object }).keys)[0] as string];
    await expect(repository.importRoot(await signMetadata(forged, [key.signer]), admin)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    expect((await repository.status()).root).toBeNull();
  });

  it('publishes signed targets a device verifies with tuf-js and downloads over mutual TLS, with HTTP Range', async () => {
    repo = await setUpRepository(t.node.context, { rootThreshold: 2, targetsThreshold: 2, targetsKeys: 2 });
    const { artifact, bytes } = await addArtifact(t.node.context, { version: '1.0.0', securityVersion: 1, hardware: ['sensor-v2'] });
    expect(artifact.signed).toBe(false);
    await publishTargets(t.node.context, repo.targets);
    expect((await t.node.context.updates.artifacts.get(artifact.target))?.signed).toBe(true);

    // Metadata signed two days ago (the node's clock) expired in real time: re-signed by the job at "now".
    clock.at = Date.now();
    expect(await t.node.context.updates.repository.refreshOnline()).toBe(true);
    const { updater } = await deviceUpdater(base, ca, sensor, repo.rootJson);
    await updater.refresh();
    const info = await updater.getTargetInfo(artifact.target);
    expect(info?.custom).toEqual({ version: '1.0.0', securityVersion: 1, hardware: ['sensor-v2'], securityRelease: false });
    const file = await updater.downloadTarget(info!);
    expect((await readFile(file)).equals(bytes)).toBe(true);

    const url = `${base}/updates/v1/targets/${artifact.sha256}.${artifact.target}`;
    const partial = await get(url, ca, sensor, { range: 'bytes=1000-' });
    expect(partial.status).toBe(206);
    expect(partial.headers['content-range']).toBe(`bytes 1000-4095/4096`);
    expect(partial.body.equals(bytes.subarray(1000))).toBe(true);
    expect((await get(url, ca, sensor, { range: 'bytes=5000-' })).status).toBe(416);
  });

  it('refuses targets metadata that is unsigned, below threshold, by a non-targets key, replayed or not matching the artifacts', async () => {
    const { repository } = t.node.context.updates;
    await addArtifact(t.node.context, { version: '1.1.0', securityVersion: 2, hardware: ['sensor-v2'] });
    const proposal = await repository.proposeTargets(30);
    const refused = async (document: unknown, code: string) => expect(repository.importTargets(document, admin)).rejects.toMatchObject({ code });
    await refused(proposal, 'FW_ERR_SIGNATURE_INVALID');
    await refused(await signMetadata(proposal, [repo.targets[0]!.signer]), 'FW_ERR_SIGNATURE_INVALID');
    await refused(await signMetadata(proposal, [repo.root[0]!.signer, repo.root[1]!.signer]), 'FW_ERR_SIGNATURE_INVALID');

    const tampered = structuredClone(proposal) as { signed: { targets: Record<string, { length: number; hashes: { sha256: string } }> } };
    const entry = tampered.signed.targets['sensor-fw-1.1.0']!;
    entry.hashes.sha256 = randomBytes(32).toString('hex');
    await refused(await signMetadata(tampered, repo.targets.map((k) => k.signer)), 'FW_ERR_SIGNATURE_INVALID');

    const lowered = structuredClone(proposal) as { signed: { targets: Record<string, { custom: { securityVersion: number } }> } };
    lowered.signed.targets['sensor-fw-1.0.0']!.custom.securityVersion = 0;
    await refused(await signMetadata(lowered, repo.targets.map((k) => k.signer)), 'FW_ERR_ROLLBACK_REFUSED');

    const status = await repository.status();
    const replay = JSON.parse((await repository.metadataFile(`${status.targets!.version}.targets.json`))!.toString('utf8')) as unknown;
    await refused(replay, 'FW_ERR_ROLLBACK_REFUSED');
    expect((await repository.status()).targets?.version).toBe(status.targets?.version);
    const refusals = await t.node.context.store.db.selectFrom('audit_events').select('action').where('action', '=', 'firmware.metadata.refused').execute();
    expect(refusals.length).toBeGreaterThanOrEqual(6);
  });

  it('serves artifacts only to devices of their hardware type, with a valid certificate', async () => {
    const [artifact] = await t.node.context.updates.artifacts.list();
    const url = `${base}/updates/v1/targets/${artifact!.sha256}.${artifact!.target}`;
    const other = await get(url, ca, gateway);
    expect(other.status).toBe(409);
    expect((JSON.parse(other.body.toString()) as { code: string }).code).toBe('FW_ERR_INCOMPATIBLE_HARDWARE');
    expect((await get(url, ca, null)).status).toBe(401);
    expect((await get(`${base}/updates/v1/metadata/1.root.json`, ca, null)).status).toBe(401);
    expect((await get(`${base}/updates/v1/targets/${'0'.repeat(64)}.${artifact!.target}`, ca, sensor)).status).toBe(404);
    await t.node.context.identity.certificates.revoke(gateway.serial, 'keyCompromise', admin);
    expect((await get(`${base}/updates/v1/metadata/timestamp.json`, ca, gateway)).status).toBe(403);
  });

  it('a device refuses artifact bytes changed after signing', async () => {
    const [artifact] = await t.node.context.updates.artifacts.list();
    const blob = join(t.node.context.layout.artifactsDir, 'sha256', artifact!.sha256);
    const original = await readFile(blob);
    const changed = Buffer.from(original);
    changed[10] = (changed[10] ?? 0) ^ 0xff;
    await writeFile(blob, changed);
    try {
      const { updater } = await deviceUpdater(base, ca, sensor, repo.rootJson);
      await updater.refresh();
      await expect(updater.downloadTarget((await updater.getTargetInfo(artifact!.target))!)).rejects.toThrow(/hash/i);
    } finally {
      await writeFile(blob, original);
    }
  });

  it('a device refuses metadata of another fleet and frozen metadata', async () => {
    const other = await startTestNode(dialect);
    try {
      const otherRepo = await setUpRepository(other.node.context);
      const { updater } = await deviceUpdater(base, ca, sensor, otherRepo.rootJson);
      await expect(updater.refresh()).rejects.toThrow();
    } finally {
      await other.close();
    }
    // The timestamp the node signs "two days ago" is expired now: a device takes that for a freeze.
    clock.at = Date.now() - 2 * DAY;
    await addArtifact(t.node.context, { version: '1.2.0', securityVersion: 3, hardware: ['sensor-v2'] });
    await publishTargets(t.node.context, repo.targets);
    const { updater } = await deviceUpdater(base, ca, sensor, repo.rootJson);
    await expect(updater.refresh()).rejects.toThrow(/expired/i);
    clock.at = Date.now();
    await t.node.context.updates.repository.refreshOnline();
    await updater.refresh();
    expect(await updater.getTargetInfo('sensor-fw-1.2.0')).toBeDefined();
  });

  it('rotates the targets keys with a root signed by the old and the new root keys; devices follow', async () => {
    const { repository } = t.node.context.updates;
    const device = await deviceUpdater(base, ca, sensor, repo.rootJson);
    await device.updater.refresh();
    const newRoot = offlineKey();
    const newTargets = offlineKey();
    const proposal = await repository.proposeRoot({ rootKeys: [newRoot.publicKey], rootThreshold: 1, targetsKeys: [newTargets.publicKey], targetsThreshold: 1, expiresDays: 365 });
    // The new keys alone cannot take over: the old root's threshold must approve.
    await expect(repository.importRoot(await signMetadata(proposal, [newRoot.signer]), admin)).rejects.toMatchObject({ code: 'FW_ERR_SIGNATURE_INVALID' });
    await repository.importRoot(await signMetadata(proposal, [newRoot.signer, ...repo.root.map((k) => k.signer)]), admin);
    await expect(publishTargets(t.node.context, repo.targets)).rejects.toMatchObject({ code: 'FW_ERR_SIGNATURE_INVALID' });
    await publishTargets(t.node.context, [newTargets]);
    const again = await deviceUpdater(base, ca, sensor, null, device.dir);
    await again.updater.refresh();
    expect((JSON.parse(await readFile(join(device.dir, 'metadata', 'root.json'), 'utf8')) as { signed: { version: number } }).signed.version).toBe(2);
    repo = { ...repo, root: [newRoot], targets: [newTargets] };
  });

  it('refuses artifacts with a bad version, an unknown type, a security version out of order, a duplicate or a bad SBOM, keeping nothing', async () => {
    const { artifacts } = t.node.context.updates;
    const add = (request: Partial<Parameters<typeof artifacts.add>[1]>) =>
      artifacts.add(Readable.from([randomBytes(64)]), { name: 'sensor-fw', version: '9.0.0', securityVersion: 9, hardware: ['sensor-v2'], ...request }, admin);
    const before = (await readdir(join(t.node.context.layout.artifactsDir, 'sha256'))).length;
    await expect(add({ version: '1.2' })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    await expect(add({ hardware: ['toaster'] })).rejects.toMatchObject({ code: 'FW_ERR_NOT_FOUND' });
    await expect(add({ version: '1.5.0', securityVersion: 1 })).rejects.toMatchObject({ code: 'FW_ERR_ROLLBACK_REFUSED' });
    await expect(add({ version: '0.9.0', securityVersion: 2 })).rejects.toMatchObject({ code: 'FW_ERR_ROLLBACK_REFUSED' });
    await expect(add({ version: '1.0.0', securityVersion: 1 })).rejects.toMatchObject({ code: 'FW_ERR_CONFLICT' });
    await expect(add({ sbom: '{"bomFormat":"SPDX"}' })).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION' });
    expect((await readdir(join(t.node.context.layout.artifactsDir, 'sha256'))).length).toBe(before);
    const sbom = JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ type: 'library', name: 'openssl', version: '3.0.13', purl: 'pkg:generic/openssl@3.0.13' }] });
    const added = await add({ sbom });
    expect(added.hasSbom).toBe(true);
    expect(await artifacts.sbom(added.target)).toMatchObject({ bomFormat: 'CycloneDX' });
  });

  it('flags a device running an image that is not a signed target of its type, and can quarantine it', async () => {
    const { inventory } = t.node.context.updates;
    const [artifact] = (await t.node.context.updates.artifacts.list()).filter((a) => a.signed);
    const report = (imageHash: string | null) => ({ v: 1 as const, at: new Date().toISOString(), agentVersion: '0.1.0', firmwareVersion: '1.0.0', securityVersion: 1, imageHash, os: { type: 'Linux', release: '6', arch: 'x64', name: null }, sbomRef: null });
    expect((await inventory.record('sensor-1', 'sensor-v2', report(`sha256:${artifact!.sha256}`))).authorized).toBe(true);
    expect((await inventory.record('sensor-1', 'sensor-v2', report(`sha256:${'ab'.repeat(32)}`))).authorized).toBe(false);
    const alerts = await t.node.context.store.db.selectFrom('audit_events').select(['action', 'details']).where('action', '=', 'updates.alert').execute();
    expect(alerts.some((a) => String(a.details).includes('unauthorized-firmware'))).toBe(true);
    const summary = await inventory.summary();
    expect(summary.unauthorized).toBe(1);
    expect((await inventory.list({ unauthorized: true })).map((d) => d.thing)).toEqual(['sensor-1']);

    // An agent older than FLEETWARD_UPDATES_MIN_AGENT_VERSION (0.1.0) cannot take jobs: listed for replacement.
    await inventory.record('gw-1', 'gateway-v1', { ...report(null), agentVersion: '0.0.9' });
    expect(await t.node.context.updates.deployments.cannotUpdate('gw-1')).toEqual([expect.objectContaining({ thing: 'gw-1', reasons: ['agent-too-old'], lastDeployment: null })]);
  });

  it('deploys a newly signed security release to the groups that opt in, and alerts for devices that cannot take it', async () => {
    const { identity, updates, store } = t.node.context;
    await identity.groups.create({ name: 'field' }, admin);
    await identity.groups.create({ name: 'lab' }, admin);
    await identity.things.create({ name: 'sensor-2', type: 'sensor-v2' }, admin);
    await identity.things.create({ name: 'sensor-lab', type: 'sensor-v2' }, admin);
    for (const thing of ['sensor-1', 'sensor-2', 'gw-1']) await identity.groups.addThing('field', thing, admin);
    await identity.groups.addThing('lab', 'sensor-lab', admin);
    await updates.deployments.setGroupAutoUpdates('lab', false, admin);

    const { artifact } = await addArtifact(t.node.context, { version: '10.0.0', securityVersion: 20, hardware: ['sensor-v2'], securityRelease: true });
    await publishTargets(t.node.context, repo.targets);
    const [deployment] = (await updates.deployments.list()).filter((d) => d.target === artifact.target);
    expect(deployment?.automatic).toBe(true);
    const jobs = (await updates.deployments.jobs(deployment!.id)).jobs;
    expect(jobs.filter((j) => j.state !== 'rejected').map((j) => j.thing).sort()).toEqual(['sensor-1', 'sensor-2']);
    expect(jobs.find((j) => j.thing === 'gw-1')).toMatchObject({ state: 'rejected', reason: 'incompatible' });
    expect(jobs.some((j) => j.thing === 'sensor-lab')).toBe(false);
    const alerts = (await store.db.selectFrom('audit_events').select('details').where('action', '=', 'updates.alert').execute()).map((a) => String(a.details));
    expect(alerts.some((d) => d.includes('security-update-blocked') && d.includes('gw-1'))).toBe(true);
    expect(alerts.some((d) => d.includes('security-update-blocked') && d.includes('lab'))).toBe(true);

    // Published again with nothing new, no second deployment starts.
    await publishTargets(t.node.context, repo.targets);
    expect((await updates.deployments.list()).filter((d) => d.target === artifact.target)).toHaveLength(1);
  });
});
