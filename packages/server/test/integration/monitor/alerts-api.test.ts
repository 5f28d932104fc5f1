import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../../src/access/auth-throttle.js';
import { registerAccessControl } from '../../../src/api/access.js';
import { toProblem, sendProblem } from '../../../src/api/problem.js';
import { alertRoutes } from '../../../src/api/routes/alerts.js';
import type { Api } from '../../../src/api/types.js';
import type { SchemaTypeProvider } from '../../../src/api/json-schema.js';
import { validatorCompiler } from '../../../src/api/validation.js';
import { alertServicesFor } from '../../helpers/alert-services.js';
import { deviceWithCertificate } from '../../helpers/devices.js';
import { startTestNode, type TestNode } from '../../helpers/test-node.js';

// The alert routes on their own Fastify instance with the real access control, validation and
// problem documents (api-access.test.ts covers them on the node once app.ts registers them).
describe('alert API routes', () => {
  let t: TestNode;
  let app: Api;
  let token: string;
  beforeAll(async () => {
    t = await startTestNode('sqlite');
    const { context } = t.node;
    const services = await alertServicesFor(context, { approvalRequired: ['force-rotation'] });
    app = Fastify().withTypeProvider<SchemaTypeProvider>() as unknown as Api;
    app.setValidatorCompiler(validatorCompiler());
    app.setErrorHandler(async (error, request, reply) => sendProblem(reply, toProblem(error, request.url)));
    registerAccessControl(app, { operators: context.operators, audit: context.audit, throttle: new FailureThrottle({ limit: 100, windowMs: 1000 }), metrics: context.metrics, clock: context.clock });
    alertRoutes(app, { alerts: services });
    await app.ready();
    token = await t.operatorToken('ops', 'operator');
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload !== undefined && { payload: payload as object }) });
    return { status: r.statusCode, body: r.body ? (JSON.parse(r.body) as Record<string, unknown>) : {} };
  };
  it('runs the runbook over the API', async () => {
    await deviceWithCertificate(t.node.context, 'dev-1');
    const q = await call('POST', '/api/v1/things/dev-1/response', { action: 'quarantine', durationSeconds: 600 });
    expect(q.status, JSON.stringify(q.body)).toBe(200);
    const services = await alertServicesFor(t.node.context, { approvalRequired: ['force-rotation'] });
    const o = await services.ingest({ thing: 'dev-1', behavior: 'b', profile: null, severity: 'high', metric: 'm', value: { a: [1, 2] }, message: 'x', at: new Date().toISOString(), dedupeKey: 'k1', actions: ['force-rotation', 'notify'] });
    if (o.kind === 'suppressed') throw new Error('x');
    const id = o.alert.id;
    const list = await call('GET', '/api/v1/alerts?state=active');
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const show = await call('GET', `/api/v1/alerts/${id}`);
    expect(show.status, JSON.stringify(show.body)).toBe(200);
    expect((show.body.timeline as unknown[]).length).toBe(4);
    for (const [m, u, b, status, field, value] of [
      ['POST', `/api/v1/alerts/${id}/acknowledge`, { note: 'on it' }, 200, 'state', 'acknowledged'],
      ['POST', `/api/v1/alerts/${id}/notes`, { text: 'n' }, 201, 'kind', 'note'],
      ['PUT', `/api/v1/alerts/${id}/verdict`, { verdict: 'benign' }, 200, 'verdict', 'benign'],
      ['POST', `/api/v1/response-actions/${o.actions[0]?.id ?? ''}/approve`, undefined, 200, 'state', 'succeeded'],
      ['POST', '/api/v1/things/dev-1/release', {}, 200, 'to', 'active'],
      ['POST', `/api/v1/alerts/${id}/resolve`, {}, 200, 'state', 'resolved'],
      ['POST', '/api/v1/alert-suppressions', { behavior: 'b', durationSeconds: 60 }, 201, 'behavior', 'b'],
      ['POST', '/api/v1/notify/webhooks', { name: 'w1', url: 'https://127.0.0.1:9/x', minSeverity: 'high' }, 201, undefined, undefined],
      ['POST', '/api/v1/notify/webhooks', { name: 'w2', url: 'http://127.0.0.1:9/x' }, 400, 'code', 'FW_ERR_VALIDATION'],
      ['DELETE', '/api/v1/notify/webhooks/w1', undefined, 200, 'removed', 'w1'],
      ['POST', '/api/v1/things/dev-1/response', { action: 'start-update', target: 'nope-1.0.0' }, 200, 'errorCode', 'FW_ERR_NOT_FOUND'],
      ['POST', '/api/v1/things/dev-1/response', { action: 'suspend', durationSeconds: 5 }, 400, 'code', 'FW_ERR_VALIDATION'],
      ['POST', '/api/v1/alerts/al-0000000000000000/resolve', {}, 404, 'code', 'FW_ERR_NOT_FOUND'],
    ] as const) {
      const r = await call(m, u, b);
      expect(r.status, `${m} ${u}: ${JSON.stringify(r.body)}`).toBe(status);
      if (field !== undefined) expect(r.body[field]).toBe(value);
    }
  });
});
