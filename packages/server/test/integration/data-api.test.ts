import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../src/access/auth-throttle.js';
import { Operators } from '../../src/access/operators.js';
import { ROLES, type Role } from '../../src/access/roles.js';
import { registerAccessControl } from '../../src/api/access.js';
import type { SchemaTypeProvider } from '../../src/api/json-schema.js';
import { sendProblem, toProblem } from '../../src/api/problem.js';
import { dataRoutes } from '../../src/api/routes/data.js';
import type { Api } from '../../src/api/types.js';
import { validatorCompiler } from '../../src/api/validation.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { openDataServices, type DataServices } from '../../src/data/data-services.js';
import { KeyRing } from '../../src/identity/key-ring.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { migrateToLatest, openStore, type Store } from '../../src/store/store.js';
import { DIALECTS, testEnvironment, TestClock, type TestEnvironment } from '../helpers/environment.js';

const CONTRACT = {
  name: 'tracker',
  version: 1,
  topic: 'fleet/${thing.name}/position',
  retention: 'P7D',
  schema: { type: 'object', required: ['lat', 'lon'], properties: { lat: { type: 'number' }, lon: { type: 'number' }, driver: { type: 'string', maxLength: 64 }, speed: { type: 'number' } } },
  fields: {
    lat: { class: 'personal', purposes: ['routing'], transform: { kind: 'round', decimals: 3 } },
    lon: { class: 'personal', purposes: ['routing'], transform: { kind: 'round', decimals: 3 } },
    driver: { class: 'personal', purposes: ['payroll'], transform: 'tokenize' },
    speed: { class: 'internal', purposes: ['routing', 'safety'] },
  },
};

/** The operator API's access control, validation and error mapping around the data routes (as buildApi composes them). */
async function dataApi(audit: AuditLog, clock: TestClock, data: DataServices, operators: Operators): Promise<Api> {
  const app = Fastify().withTypeProvider<SchemaTypeProvider>() as unknown as Api;
  app.setValidatorCompiler(validatorCompiler());
  app.setErrorHandler(async (error, request, reply) => sendProblem(reply, toProblem(error, request.url.split('?')[0])));
  registerAccessControl(app, { operators, audit, throttle: new FailureThrottle({ limit: 100, windowMs: 60_000 }), metrics: createMetrics(), clock });
  dataRoutes(app, { data });
  await app.ready();
  return app;
}

describe.each(DIALECTS)('data API on %s', (dialect) => {
  let env: TestEnvironment;
  let store: Store;
  let audit: AuditLog;
  let data: DataServices;
  let app: Api;
  const clock = new TestClock();
  const tokens = new Map<Role, string>();
  let driverToken = '';

  const call = async (role: Role | null, method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const answer = await app.inject({ method, url, ...(role !== null && { headers: { authorization: `Bearer ${tokens.get(role) ?? ''}` } }), ...(payload !== undefined && { payload: payload as object }) });
    return { status: answer.statusCode, body: answer.json<Record<string, unknown>>() };
  };

  beforeAll(async () => {
    env = await testEnvironment(dialect);
    const config = env.config();
    await mkdir(env.home, { recursive: true, mode: 0o700 });
    store = await openStore(config.database.url === null ? { kind: 'sqlite', file: join(env.home, 'fleetward.db') } : { kind: 'postgres', url: config.database.url, schema: config.database.schema, poolSize: 4 });
    await migrateToLatest(store, config.database.schema);
    audit = new AuditLog(store, clock);
    data = await openDataServices({ store, audit, clock, keyRing: KeyRing.generate(clock.now()) });
    const operators = new Operators({ store, audit, clock, defaultTokenTtlDays: 30 });
    for (const role of ROLES) tokens.set(role, (await operators.create({ name: `${role}-user`, role }, { name: 'test' })).token.token);
    app = await dataApi(audit, clock, data, operators);
    expect((await call('operator', 'POST', '/api/v1/data/contracts', { contracts: [CONTRACT] })).status).toBe(200);
    const accepted = data.ingest.inspect({ thing: 'van-7', thingType: null, topic: 'fleet/van-7/position', payload: Buffer.from(JSON.stringify({ lat: 52.520_008, lon: 13.404_954, driver: 'D-4711', speed: 42 })), receivedAtMs: clock.nowMs() });
    if (accepted.verdict !== 'accept') throw new Error(accepted.detail);
    driverToken = (JSON.parse(accepted.payload.toString()) as { driver: string }).driver;
    await data.flush();
  });
  afterAll(async () => {
    await app.close();
    await data.flush();
    await audit.flush();
    await store.close();
    await env.cleanup();
  });

  /** Who may call each data route (the same rows are in api-access.test.ts). */
  const matrix: readonly [string, 'GET' | 'POST', () => string, readonly Role[], unknown?][] = [
    ['list contracts', 'GET', () => '/api/v1/data/contracts', ROLES],
    ['show a contract', 'GET', () => '/api/v1/data/contracts/tracker', ROLES],
    ['apply contracts', 'POST', () => '/api/v1/data/contracts', ['admin', 'operator'], { contracts: [CONTRACT] }],
    ['query a thing', 'GET', () => '/api/v1/data/things/van-7?purpose=safety', ROLES],
    ['detokenize', 'POST', () => '/api/v1/data/detokenize', ['admin'], { get token() { return driverToken; }, purpose: 'payroll' }],
    ['purge a thing', 'POST', () => '/api/v1/data/things/nobody/purge', ['admin', 'operator']],
    ['inventory', 'GET', () => '/api/v1/data/inventory', ROLES],
  ];
  for (const [name, method, url, allowed, body] of matrix) {
    for (const role of ROLES) {
      it(`${name}: ${role} is ${allowed.includes(role) ? 'allowed' : 'refused (403)'}`, async () => {
        const answer = await call(role, method, url(), body === undefined ? undefined : JSON.parse(JSON.stringify(body)));
        if (allowed.includes(role)) expect(answer.status, JSON.stringify(answer.body)).toBeLessThan(300);
        else expect(answer).toMatchObject({ status: 403, body: { code: 'FW_ERR_FORBIDDEN' } });
      });
    }
  }

  it('refuses anonymous callers', async () => {
    expect(await call(null, 'GET', '/api/v1/data/things/van-7?purpose=routing')).toMatchObject({ status: 401, body: { code: 'FW_ERR_UNAUTHENTICATED' } });
  });

  it('a query needs a purpose and returns only what the purpose and clearance allow', async () => {
    expect(await call('admin', 'GET', '/api/v1/data/things/van-7')).toMatchObject({ status: 400, body: { code: 'FW_ERR_PURPOSE_REQUIRED' } });
    const routing = await call('operator', 'GET', '/api/v1/data/things/van-7?purpose=routing');
    expect(routing.status).toBe(200);
    expect(routing.body).toMatchObject({ thing: 'van-7', purpose: 'routing', rows: [{ topic: 'fleet/van-7/position', contract: 'tracker', version: 1, fields: { lat: 52.52, lon: 13.405, speed: 42 } }], withheld: ['driver'] });
    // A viewer's clearance is public: personal coordinates and internal speed are withheld.
    expect((await call('viewer', 'GET', '/api/v1/data/things/van-7?purpose=routing')).body).toMatchObject({ rows: [{ fields: {} }], withheld: ['driver', 'lat', 'lon', 'speed'] });
    const reads = await audit.list({ limit: 100, action: 'data.read' });
    expect(reads.at(-1)).toMatchObject({ actor: 'operator:operator-user', target: 'thing:van-7', source: '127.0.0.1' });
  });

  it('bad input is refused with a stable code and changes nothing', async () => {
    const before = (await data.contracts.list()).map((c) => `${c.name}@${c.version}`);
    expect(await call('admin', 'POST', '/api/v1/data/contracts', { contracts: [{ ...CONTRACT, version: 2, fields: { ...CONTRACT.fields, speed: { class: 'internal', purposes: ['x'], retention: 'forever' } } }] })).toMatchObject({ status: 400, body: { code: 'FW_ERR_DATA_CONTRACT_INVALID' } });
    expect(await call('admin', 'POST', '/api/v1/data/contracts', { contracts: [CONTRACT], extra: true })).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION' } });
    expect(await call('admin', 'POST', '/api/v1/data/contracts', { contracts: [] })).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION' } });
    expect(await call('admin', 'GET', '/api/v1/data/things/van-7?purpose=Not%20A%20Purpose')).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION' } });
    expect(await call('admin', 'POST', '/api/v1/data/detokenize', { token: 'not-a-token', purpose: 'payroll' })).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION' } });
    expect(await call('admin', 'POST', '/api/v1/data/detokenize', { token: driverToken })).toMatchObject({ status: 400, body: { code: 'FW_ERR_PURPOSE_REQUIRED' } });
    expect(await call('admin', 'GET', '/api/v1/data/contracts/unknown')).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } });
    expect((await data.contracts.list()).map((c) => `${c.name}@${c.version}`)).toEqual(before);
  });

  it('detokenizes for an admin with a declared purpose, and erases a thing with its counts', async () => {
    expect(await call('admin', 'POST', '/api/v1/data/detokenize', { token: driverToken, purpose: 'payroll' })).toMatchObject({ status: 200, body: { value: 'D-4711', thing: 'van-7', field: 'driver' } });
    expect(await call('admin', 'POST', '/api/v1/data/detokenize', { token: driverToken, purpose: 'routing' })).toMatchObject({ status: 403, body: { code: 'FW_ERR_FORBIDDEN' } });
    const inventory = await call('auditor', 'GET', '/api/v1/data/inventory?unreadDays=7');
    expect(inventory.body).toMatchObject({ unreadDays: 7, contracts: [{ contract: 'tracker', topic: 'fleet/${thing.name}/position' }] });
    expect(await call('operator', 'POST', '/api/v1/data/things/van-7/purge')).toMatchObject({ status: 200, body: { thing: 'van-7', rows: 1, vaultEntries: 1 } });
    expect((await call('admin', 'GET', '/api/v1/data/things/van-7?purpose=routing')).body).toMatchObject({ rows: [] });
    expect(await call('admin', 'POST', '/api/v1/data/detokenize', { token: driverToken, purpose: 'payroll' })).toMatchObject({ status: 404, body: { code: 'FW_ERR_NOT_FOUND' } });
  });
});
