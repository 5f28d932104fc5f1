import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, deviceWithCertificate, refusal, type Connected, type DeviceCredentials } from '../helpers/devices.js';
import { call } from '../helpers/https-client.js';
import { ownPostgres, type OwnPostgres } from '../helpers/own-postgres.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

/**
 * Rule 6, fail closed: with its database gone a node admits no new device and answers the API
 * with 503, while a connected device keeps its session under the policy it was admitted with;
 * when the database is back, the same node admits again without a restart, and the audit trail
 * still verifies. The test stops and starts a PostgreSQL of its own.
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
});
