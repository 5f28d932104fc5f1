import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILTIN_RULE_NAMES } from '../../server/src/monitor/detection/builtin-rules.js';
import { parseSecurityProfile } from '../../server/src/monitor/detection/security-profile.js';
import { addArtifact, publishTargets, setUpRepository } from '../../server/test/helpers/update-repository.js';
import { ATTACK_DETECTIONS, ATTACK_KINDS, attacksOf, hostileProfile, REFUSED_ATTACKS } from '../src/sim/attacks.js';
import { runFleet, simFailed, type SimSummary } from '../src/sim/fleet-simulator.js';
import { hostileMetrics } from '../src/sim/hostile-reports.js';
import { NodeApi } from '../src/sim/node-api.js';
import { parseSimOptions } from '../src/sim/sim-options.js';
import { startAgentNode, type AgentNode } from './helpers/agent-node.js';

const run = promisify(execFile);
const bin = new URL('../bin/fleetward-sim.js', import.meta.url).pathname;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function fleetNode(env: Readonly<Record<string, string>> = {}): Promise<{ n: AgentNode; api: NodeApi }> {
  // The default for a new fleet: data on topics without a contract is refused. The simulator brings its contract.
  const n = await startAgentNode({ FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse', ...env });
  cleanups.push(() => n.close());
  const token = await n.t.operatorToken('sim', 'operator');
  return { n, api: new NodeApi({ apiUrl: n.apiUrl, token, caPem: n.caPem }) };
}

describe('fleetward-sim', () => {
  it('normal: every device provisions by claim, connects and has its telemetry acknowledged', async () => {
    const { n, api } = await fleetNode();
    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '12', '--duration', '3', '--rate', '2']));
    expect(summary).toMatchObject({ devices: 12, provisioned: 12, connected: 12, errors: 0, refused: 0 });
    expect(summary.published).toBeGreaterThanOrEqual(12 * 3);
    expect(summary.acknowledged).toBe(summary.published);
    expect(summary.connectSeconds).not.toBeNull();
    const things = await n.t.node.context.identity.things.list({ limit: 100 });
    expect(things.things.filter((t) => t.name.startsWith('sim-'))).toHaveLength(12);
    // What the gateway accepted was stored under the simulator's contract.
    const stored = await n.t.node.context.store.db.selectFrom('data_telemetry').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBeGreaterThanOrEqual(summary.acknowledged - 12);
  });

  it('faulty: malformed readings are refused on the device, low batteries thin telemetry, a flapping link loses nothing', async () => {
    const { n, api } = await fleetNode();
    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '6', '--duration', '8', '--rate', '4', '--profile', 'faulty']));
    expect(summary).toMatchObject({ provisioned: 6, errors: 0 });
    expect(summary.malformed).toBeGreaterThan(0);
    expect(summary.deferred).toBeGreaterThan(0);
    // Everything handed over and not refused locally reached the gateway, across the link's drops.
    expect(summary.acknowledged).toBe(summary.published);
    // The end of the run waits up to 15 s for a device whose link was cut just then (fleet-simulator.ts).
  }, 60_000);

  it('hostile: every attack kind is refused where it must be, and raises the alert of the behaviour or rule that covers it, for every device', async () => {
    // The shortest window a node allows, so the attacks judged when a window closes are judged within seconds.
    const { n, api } = await fleetNode({ FLEETWARD_MONITOR_WINDOW_SECONDS: '10' });
    // Signed firmware for the simulator's hardware: what an image a device reports is judged against.
    const { context } = n.t.node;
    await context.identity.thingTypes.create({ name: 'sim-device' }, { name: 'operator:admin' });
    const repository = await setUpRepository(context);
    await addArtifact(context, { version: '1.0.0', securityVersion: 0, hardware: ['sim-device'] });
    await publishTargets(context, repository.targets);

    const summary = await runFleet(api, { caPem: n.caPem, mqttUrl: n.mqttUrl }, parseSimOptions(['--devices', '10', '--duration', '2', '--profile', 'hostile']));
    const attacks = JSON.stringify(summary.attacks);
    expect(summary, JSON.stringify(summary)).toMatchObject({ provisioned: 10, errors: 0 });
    for (const kind of ATTACK_KINDS) {
      const devices = Array.from({ length: 10 }, (_, i) => attacksOf([kind], i)).filter((k) => k.length > 0).length;
      const result = summary.attacks.byKind[kind];
      expect(result, `${kind}: ${attacks}`).toMatchObject({ skipped: null, expected: devices * ATTACK_DETECTIONS[kind].length, missed: [] });
      expect(result?.detected, `${kind}: ${attacks}`).toBe(result?.expected);
      expect(result?.attempted, kind).toBeGreaterThanOrEqual(devices);
      if (REFUSED_ATTACKS.has(kind)) expect(result?.refused, kind).toBe(result?.attempted);
    }
    // The image's own figures trip nothing: each alert comes from the attack it is counted for.
    expect(summary.attacks.unexpected).toEqual([]);
    expect(summary.attacks.refused).toBe(summary.attacks.attempted);
    expect(simFailed(summary)).toBe(false);
  }, 120_000);

  it('hostile: a detection that does not happen fails the run (exit 1), naming the attack and device; an attack asked for that the node cannot judge refuses the run', async () => {
    const { n, api } = await fleetNode();
    // Detection broken for one kind: an operator's suppression swallows every flood alert.
    await api.call('POST', '/api/v1/alert-suppressions', { behavior: 'flood', durationSeconds: 600, note: 'fleet-sim test: detection broken on purpose' });
    const env = { PATH: process.env.PATH ?? '', FLEETWARD_URL: n.apiUrl, FLEETWARD_TOKEN: await n.t.operatorToken('sim-cli', 'operator'), FLEETWARD_HOME: n.dir };
    const sim = (args: string[]) => run(process.execPath, [bin, '--mqtt-url', n.mqttUrl, ...args], { env }).then(({ stdout }) => ({ code: 0, stdout, stderr: '' }), (e: { code: number; stdout: string; stderr: string }) => e);

    const broken = await sim(['--devices', '3', '--duration', '1', '--profile', 'hostile', '--attacks', 'flood,cross-device', '--json']);
    expect(broken.code, broken.stderr).toBe(1);
    const summary = JSON.parse(broken.stdout) as SimSummary;
    expect(summary.attacks.byKind.flood).toMatchObject({ attempted: 3, refused: 3, expected: 3, detected: 0 });
    expect(summary.attacks.byKind.flood?.missed).toEqual([0, 1, 2].map((i) => `${summary.template}-0000${i} flood`));
    expect(summary.attacks.byKind['cross-device']).toMatchObject({ expected: 3, detected: 3 });
    expect(Object.keys(summary.attacks.byKind)).toEqual(['cross-device', 'flood']);

    // Nothing is signed for the devices' hardware: an unknown image cannot be told from a known one.
    const unjudged = await sim(['--devices', '1', '--duration', '1', '--profile', 'hostile', '--attacks', 'firmware']);
    expect(unjudged).toMatchObject({ code: 1, stderr: expect.stringContaining('nothing is signed for hardware sim-device') });

    // An operator's token cannot read the node's configuration: without --mqtt-url the run stops and says what to pass.
    const noUrl = await run(process.execPath, [bin, '--devices', '1', '--duration', '1'], { env }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(noUrl).toMatchObject({ code: 2, stderr: expect.stringContaining('pass --mqtt-url') });
  }, 60_000);

  it('hostile: the attack catalogue names only behaviours of its profile and rules of the node, and the image alone violates none', () => {
    const document = hostileProfile('sim-abc123', 26);
    const profile = parseSecurityProfile(document);
    const expected = Object.values(ATTACK_DETECTIONS).flat();
    expect(expected.filter((d) => !d.builtin).map((d) => d.behavior).sort()).toEqual(profile.behaviors.map((b) => b.name).sort());
    for (const rule of expected.filter((d) => d.builtin)) expect(BUILTIN_RULE_NAMES).toContain(rule.behavior);
    // What the profile's window behaviours read, from the image's own report and a fully compromised one.
    const clean = hostileMetrics(new Set(), 1, new Date());
    const compromised = hostileMetrics(new Set(['ports', 'destinations', 'processes']), 2, new Date());
    expect(clean.network.listening.map((s) => s.port)).toEqual([22, 5353]);
    expect(compromised.network.listening.map((s) => s.port)).toContain(4444);
    expect(compromised.network.destinations).toContain('203.0.113.66');
    expect(compromised.processes).toBeGreaterThan(clean.processes);
  });

  it('the command refuses bad usage and a missing node with exit 2 and a clear message', async () => {
    const fail = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(await fail(['--devices', 'many', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--devices must be') });
    expect(await fail(['--devices', '1', '--duration', '1', '--profile', 'evil'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--profile') });
    expect(await fail(['--devices', '1', '--duration', '1', '--profile', 'hostile', '--attacks', 'flood,teleport'])).toMatchObject({ code: 2, stderr: expect.stringContaining('(not teleport)') });
    expect(await fail(['--devices', '1', '--duration', '1', '--attacks', 'flood'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--attacks needs --profile hostile') });
    expect(await fail(['--devices', '1', '--duration', '1'])).toMatchObject({ code: 2, stderr: expect.stringContaining('FLEETWARD_URL') });
  });
});
