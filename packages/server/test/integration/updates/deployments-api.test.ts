import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../../src/access/auth-throttle.js';
import { registerAccessControl } from '../../../src/api/access.js';
import type { SchemaTypeProvider } from '../../../src/api/json-schema.js';
import { sendProblem, toProblem } from '../../../src/api/problem.js';
import { deploymentRoutes } from '../../../src/api/routes/deployments.js';
import type { Api } from '../../../src/api/types.js';
import { validatorCompiler } from '../../../src/api/validation.js';
import { localActor } from '../../../src/node.js';
import { DIALECTS } from '../../helpers/environment.js';
import { harness, names, type Harness } from './deployments-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** The deployment routes behind the API's real access control (app.ts wires them the same way). */
async function api(h: Harness): Promise<{ app: Api; operator: string; viewer: string }> {
  const { context } = h;
  const app = Fastify().withTypeProvider<SchemaTypeProvider>() as unknown as Api;
  app.setValidatorCompiler(validatorCompiler());
  app.setErrorHandler(async (error, request, reply) => sendProblem(reply, toProblem(error, request.url.split('?')[0])));
  registerAccessControl(app, { operators: context.operators, audit: context.audit, throttle: new FailureThrottle({ limit: 1000, windowMs: 60_000 }), metrics: context.metrics, clock: h.clock });
  deploymentRoutes(app, { deployments: h.deployments() });
  await app.ready();
  cleanups.push(() => app.close());
  const token = async (name: string, role: 'operator' | 'viewer') => (await context.operators.create({ name, role, scopes: ['api'] }, localActor())).token.token;
  return { app, operator: await token('olga', 'operator'), viewer: await token('vic', 'viewer') };
}

describe.each(DIALECTS)('deployment API on %s', (dialect) => {
  it('creates, shows, lists and cancels deployments; fleet:read may look, only fleet:write may change', async () => {
    const h = await harness(dialect);
    cleanups.push(() => h.cleanup());
    await h.things(names('t', 4), { group: 'site-a' });
    const { app, operator, viewer } = await api(h);
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    const body = { target: 'thermo-fw-1.4.2', selection: { groups: ['site-a'] }, phases: ['1', '100%'], ratePerMinute: 10, abort: { failureRate: 0.25, minDevices: 2 }, maintenanceWindow: { start: '22:00', end: '02:00' } };

    expect((await app.inject({ method: 'POST', url: '/api/v1/deployments', headers: as(viewer), payload: body })).json()).toMatchObject({ status: 403, code: 'FW_ERR_FORBIDDEN' });
    expect((await app.inject({ method: 'POST', url: '/api/v1/deployments', payload: body })).statusCode).toBe(401);
    const created = await app.inject({ method: 'POST', url: '/api/v1/deployments', headers: as(operator), payload: body });
    expect(created.statusCode).toBe(201);
    const d = created.json<{ id: string }>();
    expect(created.json()).toMatchObject({ state: 'running', createdBy: 'operator:olga', rollout: { phases: ['1', '100%'], ratePerMinute: 10, maintenanceWindow: { start: '22:00', end: '02:00' } }, counts: { queued: 4, notReleased: 4, total: 4 } });

    const shown = await app.inject({ method: 'GET', url: `/api/v1/deployments/${d.id}`, headers: as(viewer) });
    expect(shown.json()).toMatchObject({ id: d.id, phases: [{ phase: 0, size: 1 }, { phase: 1, size: 3 }] });
    expect((await app.inject({ method: 'GET', url: '/api/v1/deployments?state=running', headers: as(viewer) })).json<{ deployments: unknown[] }>().deployments).toHaveLength(1);
    const jobs = await app.inject({ method: 'GET', url: `/api/v1/deployments/${d.id}/jobs?limit=2`, headers: as(viewer) });
    expect(jobs.json()).toMatchObject({ jobs: [{ thing: 't-000' }, { thing: 't-001' }], next: 't-001' });
    expect((await app.inject({ method: 'POST', url: `/api/v1/deployments/${d.id}/cancel`, headers: as(viewer) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: `/api/v1/deployments/${d.id}/cancel`, headers: as(operator) })).json()).toMatchObject({ state: 'cancelled', counts: { cancelled: 4 } });
    expect((await app.inject({ method: 'POST', url: `/api/v1/deployments/${d.id}/cancel`, headers: as(operator) })).json()).toMatchObject({ status: 409, code: 'FW_ERR_CONFLICT' });
    expect((await app.inject({ method: 'GET', url: '/api/v1/deployments/dep-nope', headers: as(viewer) })).json()).toMatchObject({ status: 404, code: 'FW_ERR_NOT_FOUND' });
  });

  it('refuses bad bodies with a stable code and changes nothing', async () => {
    const h = await harness(dialect);
    cleanups.push(() => h.cleanup());
    await h.things(['a']);
    const { app, operator } = await api(h);
    const post = (payload: unknown) => app.inject({ method: 'POST', url: '/api/v1/deployments', headers: { authorization: `Bearer ${operator}` }, payload: payload as Record<string, unknown> });
    const base = { target: 'thermo-fw-1.4.2', selection: { things: ['a'] } };
    for (const bad of [
      { ...base, phases: ['ten'] },
      { ...base, phases: ['50%', '10%'] },
      { ...base, selection: {} },
      { ...base, abort: { failureRate: 2 } },
      { ...base, maintenanceWindow: { start: '2am', end: '04:00' } },
      { ...base, unknown: true },
      { ...base, target: '../../etc/passwd' },
      { ...base, selection: { things: ['bad name with spaces'] } },
    ]) {
      const res = await post(bad);
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json<{ code: string }>().code).toMatch(/^FW_ERR_(VALIDATION|BAD_REQUEST)$/);
    }
    expect(await h.context.store.db.selectFrom('deployments').selectAll().execute()).toEqual([]);
  });

  it('lists devices that cannot update and sets a group\'s automatic security updates', async () => {
    const h = await harness(dialect);
    cleanups.push(() => h.cleanup());
    await h.things(['cam-1'], { type: 'camera', group: 'lobby' });
    const { app, operator, viewer } = await api(h);
    await app.inject({ method: 'POST', url: '/api/v1/deployments', headers: { authorization: `Bearer ${operator}` }, payload: { target: 'thermo-fw-1.4.2', selection: { things: ['cam-1'] } } });
    expect((await app.inject({ method: 'GET', url: '/api/v1/updates/cannot-update', headers: { authorization: `Bearer ${viewer}` } })).json()).toMatchObject({ devices: [{ thing: 'cam-1', reasons: ['incompatible-hardware'] }] });
    const put = (token: string, enabled: unknown) => app.inject({ method: 'PUT', url: '/api/v1/groups/lobby/auto-security-updates', headers: { authorization: `Bearer ${token}` }, payload: { enabled } as Record<string, unknown> });
    expect((await put(viewer, false)).statusCode).toBe(403);
    expect((await put(operator, 'no')).statusCode).toBe(400);
    expect((await put(operator, false)).json()).toEqual({ group: 'lobby', autoSecurityUpdates: false, effective: false, members: 1 });
    expect((await app.inject({ method: 'GET', url: '/api/v1/updates/auto-security-updates', headers: { authorization: `Bearer ${viewer}` } })).json()).toEqual({ groups: [{ group: 'lobby', autoSecurityUpdates: false, effective: false, members: 1 }] });
    expect((await app.inject({ method: 'PUT', url: '/api/v1/groups/nope/auto-security-updates', headers: { authorization: `Bearer ${operator}` }, payload: { enabled: true } })).statusCode).toBe(404);
  });
});
