import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetward } from '../helpers/cli.js';
import { testEnvironment, type TestEnvironment } from '../helpers/environment.js';
import { softHsm, type SoftHsm } from '../helpers/softhsm.js';

/**
 * The documented offline-signing workflow (docs/rule-04-updates.md), as an operator runs it:
 * keys made offline (files and a PKCS#11 token), root and targets proposed by the node, signed
 * where the keys are, imported only at threshold.
 */
describe('firmware CLI: offline signing workflow', () => {
  let e: TestEnvironment;
  let hsm: SoftHsm;
  let work: string;
  const run = (...args: string[]) => fleetward(args, e.env, work);
  const pkcs11 = () => ['--pkcs11-module', hsm.module, '--pkcs11-token', 'release', '--pkcs11-pin-file', hsm.pinFile, '--pkcs11-key', 'targets-hsm'];

  beforeAll(async () => {
    hsm = await softHsm(['release']);
    e = await testEnvironment('sqlite');
    work = await mkdtemp(join(tmpdir(), 'fw-firmware-cli-'));
    expect((await fleetward(['init'], e.env)).code).toBe(0);
    expect((await run('thing-types', 'create', 'sensor-v2')).code).toBe(0);
    expect((await run('things', 'create', 'sensor-1', '--type', 'sensor-v2')).code).toBe(0);
  });
  afterAll(async () => {
    await e.cleanup();
    await hsm.cleanup();
  });

  it('makes keys offline: files 0600 never overwritten, and a key inside a PKCS#11 token', async () => {
    for (const name of ['root-1', 'root-2', 'targets-1']) expect((await run('firmware', 'keygen', name)).code).toBe(0);
    expect((await stat(join(work, 'root-1.key'))).mode & 0o777).toBe(0o600);
    const again = await run('firmware', 'keygen', 'root-1');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/never overwritten/);
    const token = await run('firmware', 'keygen', 'targets-hsm', ...pkcs11(), '--json');
    expect(token.code, token.stderr).toBe(0);
    expect((token.json as { pkcs11Key: string }).pkcs11Key).toBe('targets-hsm');
    expect(JSON.parse(await readFile(join(work, 'targets-hsm.pub.json'), 'utf8'))).toMatchObject({ keytype: 'ecdsa-sha2-nistp256' });
  });

  it('imports a root only with a threshold of root signatures', async () => {
    const proposed = await run('firmware', 'root', 'propose', '--root-key', 'root-1.pub.json', '--root-key', 'root-2.pub.json', '--root-threshold', '2', '--targets-key', 'targets-1.pub.json', '--targets-key', 'targets-hsm.pub.json', '--targets-threshold', '2', '--out', 'root.json');
    expect(proposed.code, proposed.stderr).toBe(0);
    expect((await run('firmware', 'sign', 'root.json', '--key', 'root-1.key')).code).toBe(0);
    const below = await run('firmware', 'root', 'import', 'root.json');
    expect(below.code).toBe(2);
    expect(below.stderr).toMatch(/FW_ERR_SIGNATURE_INVALID/);
    expect((await run('firmware', 'sign', 'root.json', '--key', 'root-2.key')).code).toBe(0);
    const imported = await run('firmware', 'root', 'import', 'root.json', '--json');
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.json).toMatchObject({ root: { version: 1, rootThreshold: 2, targetsThreshold: 2 } });
  });

  it('publishes an artifact signed by a key file and the token key; refuses bad input with exit 2', async () => {
    await writeFile(join(work, 'sensor-fw.bin'), randomBytes(10_000));
    await writeFile(join(work, 'sbom.json'), JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', components: [{ type: 'firmware', name: 'sensor-fw', version: '1.4.2' }] }));
    const bad = await run('firmware', 'add', 'sensor-fw.bin', '--version', 'one', '--security-version', '7', '--hardware', 'sensor-v2');
    expect(bad.code).toBe(2);
    const added = await run('firmware', 'add', 'sensor-fw.bin', '--version', '1.4.2', '--security-version', '7', '--hardware', 'sensor-v2', '--sbom', 'sbom.json', '--json');
    expect(added.code, added.stderr).toBe(0);
    expect(added.json).toMatchObject({ target: 'sensor-fw-1.4.2', securityVersion: 7, hasSbom: true, signed: false });

    expect((await run('firmware', 'targets', 'propose', '--out', 'targets.json')).code).toBe(0);
    expect((await run('firmware', 'sign', 'targets.json', '--key', 'targets-1.key')).code).toBe(0);
    const below = await run('firmware', 'targets', 'import', 'targets.json');
    expect(below.code).toBe(2);
    expect(below.stderr).toMatch(/threshold \(2\)/);
    const signed = await run('firmware', 'sign', 'targets.json', ...pkcs11(), '--json');
    expect(signed.code, signed.stderr).toBe(0);
    expect((signed.json as { signatures: number }).signatures).toBe(2);
    const published = await run('firmware', 'targets', 'import', 'targets.json', '--json');
    expect(published.code, published.stderr).toBe(0);
    expect(published.json).toMatchObject({ status: { targets: { version: 1, count: 1 }, snapshot: { version: 1 }, timestamp: { version: 1 } } });

    const list = await run('firmware', 'list', '--json');
    expect(list.json).toMatchObject({ artifacts: [{ target: 'sensor-fw-1.4.2', signed: true }] });
    const status = await run('firmware', 'status');
    expect(status.stdout).toMatch(/targets\s+version 1, 1 artifact/);
    const replay = await run('firmware', 'targets', 'import', 'targets.json');
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/FW_ERR_ROLLBACK_REFUSED/);
  });

  it('deploys the signed artifact and shows the deployment', async () => {
    const created = await run('deploy', 'create', 'sensor-fw-1.4.2', '--things', 'sensor-1', '--phases', '100%', '--json');
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const id = (created.json as { id: string }).id;
    const status = await run('deploy', 'status', id, '--json');
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({ id, target: 'sensor-fw-1.4.2', state: 'running' });
    const inventory = await run('firmware', 'inventory', '--json');
    expect(inventory.json).toMatchObject({ summary: { devices: 0, unauthorized: 0 } });
  });
});
