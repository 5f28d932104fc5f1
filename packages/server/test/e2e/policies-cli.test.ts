import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetward, serve } from '../helpers/cli.js';
import { DIALECTS, testEnvironment } from '../helpers/environment.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const thermostat = {
  version: '2026-11',
  statements: [
    { sid: 'own', effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe'], resources: ['topic/things/${thing.name}/#'] },
    { sid: 'no-firmware', effect: 'deny', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/firmware/#'] },
  ],
};

async function setUp(dialect: 'sqlite' | 'postgres') {
  const e = await testEnvironment(dialect);
  cleanups.push(() => e.cleanup());
  expect((await fleetward(['init'], e.env)).code).toBe(0);
  const work = await mkdtemp(join(tmpdir(), 'fw-policies-cli-'));
  const file = join(work, 'thermostat.json');
  await writeFile(file, JSON.stringify(thermostat));
  expect((await fleetward(['groups', 'create', 'thermostats'], e.env)).code).toBe(0);
  expect((await fleetward(['things', 'create', 'sensor-1', '--group', 'thermostats'], e.env)).code).toBe(0);
  return { e, work, file };
}

describe.each(DIALECTS)('policies CLI on %s', (dialect) => {
  it('creates, attaches, simulates (exit 0 allow, 1 deny), versions, analyzes and deletes on the data folder', async () => {
    const { e, work, file } = await setUp(dialect);
    expect((await fleetward(['policies', 'create', 'thermostat', '--file', file], e.env)).code).toBe(0);
    expect((await fleetward(['policies', 'attach', 'thermostat', '--group', 'thermostats'], e.env)).code).toBe(0);
    const allowed = await fleetward(['policies', 'simulate', '--thing', 'sensor-1', '--action', 'mqtt:publish', '--resource', 'things/sensor-1/telemetry'], e.env);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toContain('allowed');
    expect(allowed.stdout).toContain('thermostat v1 #0 (own)');
    const denied = await fleetward(['policies', 'simulate', '--thing', 'sensor-1', '--action', 'mqtt:publish', '--resource', 'things/sensor-1/firmware/x', '--json'], e.env);
    expect(denied.code).toBe(1);
    expect(denied.json).toMatchObject({ decision: 'deny', statement: { policy: 'thermostat', sid: 'no-firmware', effect: 'deny' } });
    expect((await fleetward(['policies', 'update', 'thermostat', '--file', file, '--no-default'], e.env)).code).toBe(0);
    expect((await fleetward(['policies', 'versions', 'thermostat', '--json'], e.env)).json).toMatchObject({ versions: [{ version: 2, isDefault: false }, { version: 1, isDefault: true }] });
    expect((await fleetward(['policies', 'list', '--json'], e.env)).json).toMatchObject({ policies: [{ name: 'fleetward-default-device' }, { name: 'thermostat', attachments: 1 }] });
    const analysis = await fleetward(['policies', 'analyze', '--days', '7', '--json'], e.env);
    expect(analysis.code).toBe(0);
    expect(analysis.json).toMatchObject({ unusedDays: 7 });
    const refused = await fleetward(['policies', 'delete', 'thermostat'], e.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FW_ERR_CONFLICT');
    expect((await fleetward(['policies', 'delete', 'thermostat', '--force'], e.env)).code).toBe(0);
    const bad = join(work, 'bad.json');
    await writeFile(bad, JSON.stringify({ version: '2026-11', statements: [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/a/#/b'] }] }));
    const invalid = await fleetward(['policies', 'create', 'bad', '--file', bad], e.env);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('FW_ERR_VALIDATION');
    expect((await fleetward(['policies', 'attach', 'x', '--thing', 'a', '--group', 'b'], e.env)).code).toBe(2);
  });

  it('works against a running node over the API, and refuses untranslatable AWS policies', async () => {
    const { e, work, file } = await setUp(dialect);
    const node = await serve(e.env);
    cleanups.push(() => node.stop());
    const operator = await fleetward(['operator', 'create', 'ops', '--role', 'operator', '--json'], e.env);
    const remote = { ...e.env, FLEETWARD_URL: node.ready.apiUrl, FLEETWARD_TOKEN: (operator.json as { token: { token: string } }).token.token };
    expect((await fleetward(['policies', 'create', 'thermostat', '--file', file], remote)).code).toBe(0);
    expect((await fleetward(['policies', 'attach', 'thermostat', '--thing', 'sensor-1'], remote)).code).toBe(0);
    expect((await fleetward(['policies', 'simulate', '--thing', 'sensor-1', '--action', 'mqtt:subscribe', '--resource', 'things/+/telemetry'], remote)).code).toBe(1);
    expect((await fleetward(['policies', 'detach', 'thermostat', '--thing', 'sensor-1'], remote)).code).toBe(0);
    const aws = join(work, 'aws.json');
    await writeFile(aws, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }));
    const untranslatable = await fleetward(['policies', 'import-aws', '--name', 'aws', '--file', aws], remote);
    expect(untranslatable.code).toBe(2);
    expect(untranslatable.stderr).toContain('FW_ERR_POLICY_UNTRANSLATABLE');
    const ok = join(work, 'aws-ok.json');
    await writeFile(ok, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}' }] }));
    expect((await fleetward(['policies', 'import-aws', '--name', 'aws', '--file', ok, '--json'], remote)).json).toMatchObject({ name: 'aws', document: { statements: [{ resources: ['client/${thing.name}'] }] } });
  });
});
