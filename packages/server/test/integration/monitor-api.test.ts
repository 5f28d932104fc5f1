import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { sendProblem, toProblem } from '../../src/api/problem.js';
import { monitorRoutes } from '../../src/api/routes/monitor.js';
import type { Api } from '../../src/api/types.js';
import { validatorCompiler } from '../../src/api/validation.js';
import { MetricsStore } from '../../src/monitor/metrics/metrics-store.js';
import { EMPTY_CLOUD } from '../../src/monitor/metrics/window-metrics.js';
import { SecurityProfiles } from '../../src/monitor/security-profiles.js';
import { closeContext, openHome } from '../../src/node.js';
import { testEnvironment, TestClock } from '../helpers/environment.js';

/**
 * The monitor routes on a bare Fastify app with the API's validator and problem mapping (access
 * control is api-access.test.ts's matrix, once app.ts registers them): every route answers with
 * what its response schema declares.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function app() {
  const env = await testEnvironment('sqlite');
  const clock = new TestClock(Date.parse('2026-12-01T12:00:00.000Z'));
  const { context } = await openHome(env.config(), { create: true, clock });
  cleanups.push(() => env.cleanup(), () => closeContext(context));
  const deps = { store: context.store, audit: context.audit, clock };
  const metrics = new MetricsStore(deps);
  const profiles = new SecurityProfiles(deps);
  const api = Fastify().withTypeProvider() as unknown as Api;
  api.setValidatorCompiler(validatorCompiler());
  api.setErrorHandler(async (error, request, reply) => sendProblem(reply, toProblem(error, request.url)));
  monitorRoutes(api, { profiles, metrics, now: () => clock.now() });
  await api.ready();
  cleanups.push(() => api.close());
  return { api, context, metrics };
}

describe('monitor API routes', () => {
  it('profiles: create, read, attach, detach, delete; metrics per thing and group; custom metrics', async () => {
    const { api, context, metrics } = await app();
    const local = { name: 'test' };
    await context.identity.groups.create({ name: 'plant' }, local);
    await context.identity.things.create({ name: 'm1' }, local);
    await context.identity.groups.addThing('plant', 'm1', local);
    await context.identity.thingTypes.create({ name: 'meter' }, local);
    const profile = { name: 'meters', behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 600, actions: ['quarantine'] }] };

    const created = await api.inject({ method: 'POST', url: '/api/v1/monitor/profiles', payload: profile });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ name: 'meters', document: profile, groups: [] });
    const invalid = await api.inject({ method: 'POST', url: '/api/v1/monitor/profiles', payload: { name: 'x', behaviors: [{ name: 'y', metric: 'cloud.nope', operator: 'gt', value: 1 }] } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ code: 'FW_ERR_VALIDATION' });
    expect((await api.inject({ method: 'PUT', url: '/api/v1/monitor/profiles/meters/groups/plant' })).json()).toMatchObject({ groups: ['plant'] });
    expect((await api.inject({ method: 'GET', url: '/api/v1/monitor/profiles' })).json()).toMatchObject({ profiles: [{ name: 'meters', groups: ['plant'] }] });
    expect((await api.inject({ method: 'GET', url: '/api/v1/monitor/profiles/meters' })).statusCode).toBe(200);
    expect((await api.inject({ method: 'GET', url: '/api/v1/monitor/profiles/nope' })).statusCode).toBe(404);
    expect((await api.inject({ method: 'DELETE', url: '/api/v1/monitor/profiles/meters/groups/plant' })).json()).toMatchObject({ groups: [] });
    expect((await api.inject({ method: 'DELETE', url: '/api/v1/monitor/profiles/meters' })).json()).toEqual({ deleted: 'meters' });

    const start = '2026-12-01T11:00:00.000Z';
    await metrics.write([{ thing: 'm1', windowStart: start, windowEnd: '2026-12-01T11:01:00.000Z', cloud: { ...EMPTY_CLOUD, messagesIn: 7, sourceAddresses: ['192.0.2.1'], sourceAddressCount: 1 }, device: null, custom: {} }]);
    const thing = await api.inject({ method: 'GET', url: '/api/v1/monitor/metrics/things/m1' });
    expect(thing.statusCode, thing.body).toBe(200);
    expect(thing.json()).toMatchObject({ thing: 'm1', windows: [{ windowStart: start, cloud: { messagesIn: 7, sourceAddresses: ['192.0.2.1'] }, device: null }] });
    const group = await api.inject({ method: 'GET', url: `/api/v1/monitor/metrics/groups/plant?since=${encodeURIComponent('2026-12-01T00:00:00.000Z')}` });
    expect(group.statusCode, group.body).toBe(200);
    expect(group.json()).toMatchObject({ group: 'plant', windows: [{ windowStart: start, devices: 1, messagesIn: 7, cpuPercentMean: null }] });
    expect((await api.inject({ method: 'GET', url: '/api/v1/monitor/metrics/things/m1?since=2026-12-01T11:30:00.000Z' })).json()).toMatchObject({ windows: [] });

    const declared = await api.inject({ method: 'POST', url: '/api/v1/monitor/custom-metrics', payload: { thingType: 'meter', name: 'queue.depth', kind: 'number' } });
    expect(declared.statusCode, declared.body).toBe(201);
    expect((await api.inject({ method: 'GET', url: '/api/v1/monitor/custom-metrics?thingType=meter' })).json()).toEqual({ declarations: [{ thingType: 'meter', name: 'queue.depth', kind: 'number', description: '' }] });
    expect((await api.inject({ method: 'POST', url: '/api/v1/monitor/custom-metrics', payload: { thingType: 'meter', name: 'x', kind: 'blob' } })).statusCode).toBe(400);
    expect((await api.inject({ method: 'DELETE', url: '/api/v1/monitor/custom-metrics/meter/queue.depth' })).json()).toEqual({ removed: 'meter/queue.depth' });
  });
});
