import SqliteDatabase from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetward, serve, type RunningServe } from '../helpers/cli.js';
import { testEnvironment, type TestEnvironment } from '../helpers/environment.js';

/** `fleetward health --json` against a running `fleetward serve`: exit 0 when every control held, 1 otherwise or with no node. */
describe('fleetward health', () => {
  let env: TestEnvironment;
  let node: RunningServe;
  let client: Record<string, string>;

  beforeAll(async () => {
    env = await testEnvironment('sqlite', { FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse', FLEETWARD_HEALTH_CANARIES: 'on' });
    node = await serve(env.env);
    client = { ...env.env, FLEETWARD_URL: node.ready.apiUrl, FLEETWARD_TOKEN: node.ready.bootstrapToken?.token ?? '', FLEETWARD_CA_FILE: node.ready.caFile };
  }, 30_000);
  afterAll(async () => {
    await node?.stop();
    await env?.cleanup();
  });

  it('ok/runs the canaries now and exits 0 when every control held', async () => {
    const run = await fleetward(['health', '--json'], client);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = run.json as { held: boolean; controls: { control: string; status: string; checkedAt: string }[] };
    expect(report.held).toBe(true);
    expect(report.controls).toHaveLength(9);
    expect(report.controls.find((c) => c.control === 'tampered-update-rejected')?.status).toBe('not-applicable');
    const human = await fleetward(['health', '--last'], client);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Every security control held.');
  }, 30_000);

  it('fail/exits 1 with "no running node" without FLEETWARD_URL', async () => {
    const run = await fleetward(['health', '--json'], env.env);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain('no running node');
  });

  it('fail/exits 1 when a control failed (a tampered audit trail)', async () => {
    const db = new SqliteDatabase(`${env.home}/fleetward.db`);
    try {
      db.exec('drop trigger audit_events_no_update');
      db.prepare('update audit_events set details = ? where seq = 1').run('{"tampered":true}');
    } finally {
      db.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 15_500)); // on-demand runs reuse a report younger than 15 s
    const run = await fleetward(['health', '--json'], client);
    expect(run.code).toBe(1);
    const report = run.json as { held: boolean; controls: { control: string; status: string }[] };
    expect(report.controls.find((c) => c.control === 'audit-chain-verifies')?.status).toBe('not-held');
  }, 40_000);
});
