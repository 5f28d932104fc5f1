import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, refusal, type Connected, type DeviceCredentials } from '../helpers/devices.js';
import { call } from '../helpers/https-client.js';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

/**
 * Rule 6, fail closed: with its database gone a node admits no new device and answers the API
 * with 503, while a connected device keeps its session under the policy it was admitted with;
 * when the database is back, the same node admits again without a restart, and the audit trail
 * still verifies. The live session's grace is bounded: past FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS
 * it is closed. The test stops and starts a PostgreSQL of its own.
 */
describe('fail closed when PostgreSQL is unavailable', () => {
  let pg: OwnPostgres;
  let t: TestNode;
  let mqttUrl: string;
  let apiUrl: string;
  let token: string;
  let first: Connected;
  let late: DeviceCredentials;

  beforeAll(async () => {
    pg = await ownPostgres();
    t = await startTestNode('postgres', { env: { FLEETWARD_DATABASE_URL: pg.url, FLEETWARD_DATABASE_POOL_SIZE: '4' } });
    ({ mqttUrl, apiUrl } = await t.node.listen());
    token = await t.operatorToken('ops', 'operator');
    first = await connectDevice(mqttUrl, t.node.hierarchy.chainPem, await deviceWithCertificate(t.node.context, 'meter-1'), { clientId: 'meter-1' });
    late = await deviceWithCertificate(t.node.context, 'meter-2');
  }, 60_000);
  afterAll(async () => {
    await first?.client.endAsync(true).catch(() => undefined);
    await pg?.start().catch(() => undefined);
    await t?.close();
    await pg?.cleanup();
  }, 60_000);

  it('refuses new devices and API actions while the database is down, keeps live sessions, and recovers without a restart', async () => {
    await pg.stop();

    // No admission on missing data: the registry cannot be asked, so the device is refused.
    const refused = await refusal(connectDevice(mqttUrl, t.node.hierarchy.chainPem, late, { clientId: 'meter-2' }));
    expect(refused.code).toBe(0x88);
    const api = await call(t.node.hierarchy.chainPem, `${apiUrl}/api/v1/things`, { token });
    expect(api.status).toBe(503);
    expect(api.body.code).toBe('FW_ERR_STORE_UNAVAILABLE');
    const ready = await call(t.node.hierarchy.chainPem, `${apiUrl}/readyz`);
    expect(ready.status).toBe(503);

    // The connected device keeps the session and the policy it was admitted with.
    const outcome = (topic: string) =>
      first.client.publishAsync(topic, 'payload', { qos: 1 }).then(
        () => 0,
        (error: { code?: number }) => error.code,
      );
    expect(await outcome('things/meter-1/telemetry')).toBe(0);
    expect(await outcome('things/meter-2/telemetry')).toBe(0x87);

    await pg.start();
    // The same node, not restarted: the pool reconnects and admission works again.
    let admitted: Connected | null = null;
    for (let attempt = 0; attempt < 20 && admitted === null; attempt += 1) {
      admitted = await connectDevice(mqttUrl, t.node.hierarchy.chainPem, late, { clientId: 'meter-2' }).catch(async () => {
        await new Promise((r) => setTimeout(r, 250));
        return null;
      });
    }
    expect(admitted).not.toBeNull();
    await admitted?.client.endAsync(true);
    expect((await call(t.node.hierarchy.chainPem, `${apiUrl}/api/v1/things`, { token })).status).toBe(200);
    const verification = await t.node.context.audit.verify();
    expect(verification.ok).toBe(true);
  }, 60_000);

  it('closes a live session with 0x89 once the database stays away longer than the bound, and admits it again when the database is back', async () => {
    // A node of its own with a short bound, on the same PostgreSQL (its own schema).
    const bounded = await startTestNode('postgres', { env: { FLEETWARD_DATABASE_URL: pg.url, FLEETWARD_DATABASE_POOL_SIZE: '4', FLEETWARD_HEALTH_FAIL_CLOSED_GRACE_SECONDS: '2' } });
    try {
      const { mqttUrl: url } = await bounded.node.listen();
      const chain = bounded.node.hierarchy.chainPem;
      const meter = await deviceWithCertificate(bounded.node.context, 'meter-9');
      const live = await connectDevice(url, chain, meter, { clientId: 'meter-9' });
      const closed = closing(live.client);

      const stoppedAt = Date.now();
      await pg.stop();
      // Within the bound the session lives on, under the policy it was admitted with.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + 1_000 - Date.now())));
      expect(live.client.connected).toBe(true);
      await live.client.publishAsync('things/meter-9/telemetry', 'within the bound', { qos: 1 });

      // Past it (2 s, seen by a probe within one more second) it is closed: MQTT 5 "Server busy", come back later.
      const { reasonCode, at } = await closed;
      expect(reasonCode).toBe(0x89);
      expect(at - stoppedAt).toBeGreaterThanOrEqual(2_000);
      expect(at - stoppedAt).toBeLessThan(6_000);
      const disconnects = await bounded.node.context.metrics.failClosedDisconnects.get();
      expect(disconnects.values.find((v) => v.labels.dependency === 'database')?.value).toBe(1);
      expect((await refusal(connectDevice(url, chain, meter, { clientId: 'meter-9' }))).code).toBe(0x88);

      await pg.start();
      let again: Connected | null = null;
      for (let attempt = 0; attempt < 40 && again === null; attempt += 1) {
        again = await connectDevice(url, chain, meter, { clientId: 'meter-9' }).catch(async () => {
          await new Promise((r) => setTimeout(r, 250));
          return null;
        });
      }
      expect(again).not.toBeNull();
      await again?.client.endAsync(true);
      // The outage could not be audited while it lasted; its end is, with what it cost.
      await expect.poll(async () => (await bounded.node.context.audit.list({ limit: 1_000, action: 'health.dependency.recovered' })).map((row) => JSON.parse(row.details) as unknown), { timeout: 5_000 }).toEqual([
        expect.objectContaining({ boundExceeded: true, sessionsClosed: 1 }),
      ]);
      expect((await bounded.node.context.audit.verify()).ok).toBe(true);
    } finally {
      await bounded.close();
    }
  }, 60_000);
});

/** How and when the server ends a live connection: the DISCONNECT reason code (null: closed without one). */
function closing(client: MqttClient): Promise<{ reasonCode: number | null; at: number }> {
  return new Promise((resolve) => {
    client.once('disconnect', (packet: { reasonCode?: number }) => resolve({ reasonCode: packet.reasonCode ?? null, at: Date.now() }));
    client.once('close', () => resolve({ reasonCode: null, at: Date.now() }));
  });
}
