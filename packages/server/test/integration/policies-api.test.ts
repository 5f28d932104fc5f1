import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/environment.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

const local = { name: 'test' };
const own = { version: '2026-11', statements: [{ sid: 'own', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/#'] }] };

describe.each(DIALECTS)('policies API on %s', (dialect) => {
  let t: TestNode;
  let token: string;
  let viewer: string;
  const inject = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, as = token) => {
    const answer = await t.node.api.inject({ method, url, headers: { authorization: `Bearer ${as}` }, ...(payload !== undefined && { payload: payload as Record<string, unknown> }) });
    return { status: answer.statusCode, type: String(answer.headers['content-type']), body: answer.json<Record<string, unknown>>() };
  };
  const policyRows = async () => (await t.node.context.store.db.selectFrom('policy_versions').select(['policy', 'version']).execute()).length;
  const auditHead = async () => (await t.node.context.audit.verify()).head?.seq;

  beforeAll(async () => {
    t = await startTestNode(dialect);
    token = await t.operatorToken('ops', 'operator');
    viewer = await t.operatorToken('watcher', 'viewer');
    await t.node.context.identity.groups.create({ name: 'site' }, local);
    await t.node.context.identity.things.create({ name: 'dev-1', groups: ['site'] }, local);
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates, versions, attaches, simulates, rolls back and deletes', async () => {
    expect((await inject('POST', '/api/v1/policies', { name: 'own', document: own })).status).toBe(201);
    const updated = await inject('PUT', '/api/v1/policies/own', { document: { ...own, description: 'v2' } });
    expect(updated.body).toMatchObject({ defaultVersion: 2, latestVersion: 2, document: { description: 'v2' } });
    expect((await inject('GET', '/api/v1/policies/own/versions')).body.versions).toHaveLength(2);
    expect((await inject('GET', '/api/v1/policies/own/versions/1')).body).toMatchObject({ version: 1, isDefault: false });
    expect((await inject('PUT', '/api/v1/policies/own/attachments/group/site')).body).toMatchObject({ policy: 'own', target: { kind: 'group', name: 'site' } });
    const simulated = await inject('POST', '/api/v1/policies/simulate', { thing: 'dev-1', action: 'mqtt:publish', resource: 'things/dev-1/temp' }, viewer);
    expect(simulated.body).toMatchObject({ decision: 'allow', statement: { policy: 'own', version: 2, index: 0, sid: 'own', effect: 'allow' }, policies: [{ name: 'own', version: 2, via: { kind: 'group', name: 'site' } }] });
    const refused = await inject('POST', '/api/v1/policies/simulate', { thing: 'dev-1', action: 'mqtt:publish', resource: 'things/dev-2/temp' }, viewer);
    expect(refused.body).toMatchObject({ decision: 'deny', reason: 'default-deny', statement: null });
    expect((await inject('PUT', '/api/v1/policies/own/default-version', { version: 1 })).body).toMatchObject({ defaultVersion: 1 });
    expect((await inject('DELETE', '/api/v1/policies/own')).body.code).toBe('FW_ERR_CONFLICT');
    expect((await inject('DELETE', '/api/v1/policies/own?force=true')).body).toMatchObject({ detached: [{ target: { kind: 'group', name: 'site' } }] });
    expect((await inject('GET', '/api/v1/policies/own')).status).toBe(404);
  });

  it('answers problem+json with stable codes and writes nothing on refusal', async () => {
    const before = { rows: await policyRows(), seq: await auditHead() };
    const invalid = await inject('POST', '/api/v1/policies', { name: 'bad', document: { version: '2026-11', statements: [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/#/x'] }] } });
    expect(invalid).toMatchObject({ status: 400, body: { code: 'FW_ERR_VALIDATION', path: '/statements/0/resources/0' } });
    expect(invalid.type).toContain('application/problem+json');
    expect((await inject('POST', '/api/v1/policies', { name: 'bad', document: { version: '2026-11', statements: [], extra: true } })).body.code).toBe('FW_ERR_VALIDATION');
    expect((await inject('GET', '/api/v1/policies/ghost')).body.code).toBe('FW_ERR_NOT_FOUND');
    expect((await inject('PUT', '/api/v1/policies/ghost', { document: own })).body.code).toBe('FW_ERR_NOT_FOUND');
    expect((await inject('PUT', '/api/v1/policies/ghost/attachments/thing/dev-1')).body.code).toBe('FW_ERR_NOT_FOUND');
    expect((await inject('POST', '/api/v1/policies/simulate', { thing: 'ghost', action: 'mqtt:publish', resource: 'a' })).body.code).toBe('FW_ERR_NOT_FOUND');
    expect((await inject('POST', '/api/v1/policies/simulate', { thing: 'dev-1', action: 'iot:Publish', resource: 'a' })).body.code).toBe('FW_ERR_VALIDATION');
    const untranslatable = await inject('POST', '/api/v1/policies/import-aws', { name: 'aws', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:eu-west-1:123456789012:topic/*' }] } });
    expect(untranslatable).toMatchObject({ status: 422, body: { code: 'FW_ERR_POLICY_UNTRANSLATABLE', path: '/Statement/0/Resource' } });
    expect(await policyRows()).toBe(before.rows);
    expect(await auditHead()).toBe(before.seq);
  });

  it('analyzes: a policy attached to nothing is reported, the default policy in force is not', async () => {
    expect((await inject('POST', '/api/v1/policies', { name: 'orphan', document: own })).status).toBe(201);
    const analysis = await inject('GET', '/api/v1/policies/analyze?days=10', undefined, viewer);
    const findings = analysis.body.findings as { code: string; policy: string }[];
    expect(findings).toContainEqual(expect.objectContaining({ code: 'unattached-policy', policy: 'orphan' }));
    expect(findings.some((f) => f.policy === 'fleetward-default-device' && f.code === 'unattached-policy')).toBe(false);
    expect(analysis.body).toMatchObject({ unusedDays: 10, usageJudged: ['mqtt:connect'] });
  });
});
