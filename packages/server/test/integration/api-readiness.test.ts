import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/https-client.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';
import { TEST_DATABASE_URL } from '../helpers/database-url.js';

describe('health and readiness', () => {
  it('/healthz and /readyz answer without a token; /readyz names its checks', async () => {
    const t = await startTestNode('sqlite');
    try {
      const base = (await t.node.listen()).apiUrl;
      expect((await call(t.node.hierarchy.chainPem, `${base}/healthz`)).body).toEqual({ status: 'ok' });
      const ready = await call(t.node.hierarchy.chainPem, `${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: 'ready', checks: { store: { ok: true }, ca: { ok: true } } });
    } finally {
      await t.close();
    }
  });
});

describe('PostgreSQL becomes unreachable while the node runs', () => {
  const proxy = new TcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432));
  let t: TestNode;
  let base: string;
  let admin: string;
  const send = (url: string, options: Parameters<typeof call>[2] = {}) => call(t.node.hierarchy.chainPem, base + url, options);

  beforeAll(async () => {
    await proxy.start();
    const url = new URL(TEST_DATABASE_URL);
    url.port = String(proxy.port);
    t = await startTestNode('postgres', { env: { FLEETWARD_DATABASE_URL: url.toString() } });
    base = (await t.node.listen()).apiUrl;
    admin = await t.operatorToken('admin-user', 'admin');
  });
  afterAll(async () => {
    await proxy.restore().catch(() => undefined);
    await t.close();
    await proxy.cut();
  });

  it('/readyz turns 503 naming the store, requests get 503 FW_ERR_STORE_UNAVAILABLE, and all recovers without a restart', async () => {
    expect((await send('/readyz')).status).toBe(200);
    await proxy.cut();

    const notReady = await send('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatchObject({ code: 'FW_ERR_NOT_READY', checks: { store: { ok: false }, ca: { ok: true } } });
    const write = await send('/api/v1/operators', { method: 'POST', token: admin, json: { name: 'during-outage', role: 'viewer' } });
    expect(write.status).toBe(503);
    expect(write.body.code).toBe('FW_ERR_STORE_UNAVAILABLE');
    // A database outage is not an authentication failure: nothing counts against the client.
    expect((await send('/healthz')).status).toBe(200);

    await proxy.restore();
    await expect.poll(async () => (await send('/readyz')).status, { timeout: 10_000 }).toBe(200);
    const after = await send('/api/v1/operators', { method: 'POST', token: admin, json: { name: 'after-outage', role: 'viewer' } });
    expect(after.status).toBe(201);
    const names = (await t.node.context.operators.list()).map((o) => o.name);
    expect(names).toContain('after-outage');
    expect(names).not.toContain('during-outage');
    expect((await t.node.context.audit.verify()).ok).toBe(true);
  });
});
