import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyStore } from '../../src/access/policy-store/index.js';
import type { Role } from '../../src/access/roles.js';
import { DIALECTS, TestClock } from '../helpers/environment.js';
import { csrFor } from '../helpers/csr.js';
import { backdatedExternalCa } from '../helpers/external-ca.js';
import { call, type Answer, type CallOptions } from '../helpers/https-client.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';
import { openDataServices } from '../../src/data/data-services.js';
import { MetricsStore } from '../../src/monitor/metrics/metrics-store.js';
import { SecurityProfiles } from '../../src/monitor/security-profiles.js';
import { Readable } from 'node:stream';
import { signMetadata } from '../../src/updates/tuf/offline-signing.js';
import { publishTargets, setUpRepository, type SignedRepository } from '../helpers/update-repository.js';
import { alertServicesFor } from '../helpers/alert-services.js';
import type { ResponseActionName } from '../../src/monitor/types.js';

interface RouteCase {
  readonly method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH';
  /** The route as the API declares it. */
  readonly route: string;
  /** Builds a concrete request; may create what the request acts on. */
  readonly request: (t: TestNode) => Promise<{ url: string; json?: unknown; raw?: Buffer; contentType?: string }>;
  /** Roles allowed with an `api`-scoped token; `metrics` means a token with the metrics scope. */
  readonly allowed: readonly Role[] | 'public' | 'metrics';
  /** What an allowed role gets when success needs what this node lacks (an offline root); default 2xx. */
  readonly allowedStatus?: number;
}

const ALL: readonly Role[] = ['admin', 'operator', 'auditor', 'viewer'];
const FLEET_WRITERS: readonly Role[] = ['admin', 'operator'];
const local = { name: 'test' };
const newTemplate = async (t: TestNode) => (await t.node.context.identity.templates.create(unique(), { namePattern: 'd-.*' }, local)).name;
const newThing = async (t: TestNode, withCertificate = false) => {
  const name = unique();
  await t.node.context.identity.things.create({ name }, local);
  const issued = withCertificate ? await t.node.context.identity.certificates.issue({ subject: name, kind: 'device', csr: csrFor(name), via: 'operator' }, local) : undefined;
  return { name, serial: issued?.serial ?? '' };
};
const unique = () => `o${randomBytes(4).toString('hex')}`;
const policyStore = (t: TestNode) => new PolicyStore({ store: t.node.context.store, audit: t.node.context.audit, clock: t.node.context.clock, groups: t.node.context.identity.groups });
const policyDocument = { version: '2026-11', statements: [{ effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/things/${thing.name}/x'] }] };
const newPolicy = async (t: TestNode) => (await policyStore(t).create(unique(), policyDocument, local)).name;
const monitorProfile = (name: string) => ({ name, behaviors: [{ name: 'flood', metric: 'cloud.messagesIn', operator: 'gt', value: 600 }] });
const monitorProfiles = (t: TestNode) => new SecurityProfiles({ store: t.node.context.store, audit: t.node.context.audit, clock: t.node.context.clock });
const newMonitorProfile = async (t: TestNode) => (await monitorProfiles(t).put(monitorProfile(unique()), local)).name;
const disposable = async (t: TestNode) => {
  const name = unique();
  await t.operatorToken(name, 'viewer');
  return name;
};

// Rule 5 response (monitor/alerts): alerts, suppressions, response actions, webhooks.
const responseServices = (t: TestNode) => alertServicesFor(t.node.context, { approvalRequired: ['force-rotation'] });
const newAlert = async (t: TestNode, actions: readonly ResponseActionName[] = []) => {
  const thing = (await newThing(t, true)).name;
  const outcome = await (await responseServices(t)).ingest({ thing, behavior: 'matrix', profile: null, severity: 'high', metric: 'm', value: 1, message: 'matrix', at: new Date().toISOString(), dedupeKey: unique(), actions });
  if (outcome.kind === 'suppressed') throw new Error('unexpected suppression');
  return { id: outcome.alert.id, thing, pending: outcome.actions[0]?.id ?? '' };
};

const DATA_CONTRACT = {
  name: 'access-matrix',
  version: 1,
  topic: 'things/${thing.name}/meter',
  retention: 'P1D',
  schema: { type: 'object', required: ['owner'], properties: { owner: { type: 'string', maxLength: 64 } } },
  fields: { owner: { class: 'personal', purposes: ['billing'], transform: 'tokenize' } },
};
/** A thing with stored data and a token in the vault (written by the data services on the node's store). */
const dataToken = async (t: TestNode) => {
  const { store, audit, clock, keyRing } = t.node.context;
  const data = await openDataServices({ store, audit, clock, keyRing });
  await data.contracts.apply([DATA_CONTRACT], local);
  const thing = unique();
  const verdict = data.ingest.inspect({ thing, thingType: null, topic: `things/${thing}/meter`, payload: Buffer.from(JSON.stringify({ owner: thing })), receivedAtMs: clock.nowMs() });
  await data.flush();
  if (verdict.verdict !== 'accept') throw new Error(verdict.detail);
  return { thing, contract: DATA_CONTRACT.name, token: (JSON.parse(verdict.payload.toString()) as { owner: string }).owner };
};

const DATA_WEBHOOK = { url: 'https://127.0.0.1:9/hooks', purpose: 'billing', role: 'operator' };
const newDataWebhook = async (t: TestNode) => (await t.node.context.data.webhooks.create({ ...DATA_WEBHOOK, name: unique() }, { actor: local, role: 'admin' })).webhook.name;
/** One consumer per node for the routes that only read or toggle it. */
const dataWebhooks = new WeakMap<TestNode, Promise<string>>();
const dataWebhook = (t: TestNode) => {
  let name = dataWebhooks.get(t);
  if (name === undefined) {
    name = newDataWebhook(t);
    dataWebhooks.set(t, name);
  }
  return name;
};

/** Rule 4 fixtures, once per node: a signed repository, a signed artifact with an SBOM, a thing of its type, a group. */
const updateFixtures = new WeakMap<TestNode, Promise<{ repo: SignedRepository; target: string; thing: string; group: string }>>();
const updates = (t: TestNode) => {
  let fixture = updateFixtures.get(t);
  if (fixture === undefined) {
    fixture = (async () => {
      const { identity, updates: services } = t.node.context;
      await identity.thingTypes.create({ name: 'matrix-type' }, local);
      const thing = unique();
      await identity.things.create({ name: thing, type: 'matrix-type' }, local);
      const group = unique();
      await identity.groups.create({ name: group }, local);
      const repo = await setUpRepository(t.node.context);
      const sbom = JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [] });
      const artifact = await services.artifacts.add(Readable.from([randomBytes(256)]), { name: 'matrix-fw', version: '1.0.0', securityVersion: 1, hardware: ['matrix-type'], sbom }, local);
      await publishTargets(t.node.context, repo.targets);
      return { repo, target: artifact.target, thing, group };
    })();
    updateFixtures.set(t, fixture);
  }
  return fixture;
};
const newDeployment = async (t: TestNode) => {
  const { target, thing } = await updates(t);
  return (await t.node.context.updates.deployments.create({ target, selection: { things: [thing] } }, local)).id;
};
const signedNext = async (t: TestNode, role: 'root' | 'targets') => {
  const { repo } = await updates(t);
  const { repository } = t.node.context.updates;
  const proposal =
    role === 'root'
      ? await repository.proposeRoot({ rootKeys: repo.root.map((k) => k.publicKey), rootThreshold: 1, targetsKeys: repo.targets.map((k) => k.publicKey), targetsThreshold: 1, expiresDays: 30 })
      : await repository.proposeTargets(30);
  return signMetadata(proposal, (role === 'root' ? repo.root : repo.targets).map((k) => k.signer));
};

/**
 * The access rules the issue asks for, written out independently of the code: a viewer cannot
 * create, an auditor reads everything (audit included) but changes nothing, only admins manage
 * operators, and metrics need a token scoped for them.
 */
const ROUTES: readonly RouteCase[] = [
  { method: 'GET', route: '/healthz', request: () => Promise.resolve({ url: '/healthz' }), allowed: 'public' },
  { method: 'GET', route: '/readyz', request: () => Promise.resolve({ url: '/readyz' }), allowed: 'public' },
  { method: 'GET', route: '/api/openapi.json', request: () => Promise.resolve({ url: '/api/openapi.json' }), allowed: 'public' },
  { method: 'GET', route: '/metrics', request: () => Promise.resolve({ url: '/metrics' }), allowed: 'metrics' },
  { method: 'GET', route: '/api/v1/whoami', request: () => Promise.resolve({ url: '/api/v1/whoami' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/config', request: () => Promise.resolve({ url: '/api/v1/config' }), allowed: ['admin', 'auditor'] },
  { method: 'GET', route: '/api/v1/operators', request: () => Promise.resolve({ url: '/api/v1/operators' }), allowed: ['admin', 'auditor'] },
  { method: 'GET', route: '/api/v1/operators/:name', request: () => Promise.resolve({ url: '/api/v1/operators/bootstrap' }), allowed: ['admin', 'auditor'] },
  { method: 'POST', route: '/api/v1/operators', request: () => Promise.resolve({ url: '/api/v1/operators', json: { name: unique(), role: 'viewer' } }), allowed: ['admin'] },
  { method: 'DELETE', route: '/api/v1/operators/:name', request: async (t) => ({ url: `/api/v1/operators/${await disposable(t)}` }), allowed: ['admin'] },
  { method: 'POST', route: '/api/v1/operators/:name/tokens', request: async (t) => ({ url: `/api/v1/operators/${await disposable(t)}/tokens`, json: {} }), allowed: ['admin'] },
  {
    method: 'DELETE',
    route: '/api/v1/tokens/:id',
    request: async (t) => {
      const name = await disposable(t);
      const operator = await t.node.context.operators.get(name);
      return { url: `/api/v1/tokens/${operator.tokens[0]?.id ?? 'missing'}` };
    },
    allowed: ['admin'],
  },
  { method: 'GET', route: '/api/v1/audit/events', request: () => Promise.resolve({ url: '/api/v1/audit/events' }), allowed: ['admin', 'auditor'] },
  { method: 'GET', route: '/api/v1/things', request: () => Promise.resolve({ url: '/api/v1/things' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/things', request: () => Promise.resolve({ url: '/api/v1/things', json: { name: unique() } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/things/:name', request: async (t) => ({ url: `/api/v1/things/${(await newThing(t)).name}` }), allowed: ALL },
  { method: 'PATCH', route: '/api/v1/things/:name', request: async (t) => ({ url: `/api/v1/things/${(await newThing(t)).name}`, json: { attributes: { a: 'b' } } }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/things/:name/state', request: async (t) => ({ url: `/api/v1/things/${(await newThing(t)).name}/state`, json: { state: 'active' } }), allowed: FLEET_WRITERS },
  {
    method: 'POST',
    route: '/api/v1/things/:name/certificates',
    request: async (t) => {
      const { name } = await newThing(t);
      return { url: `/api/v1/things/${name}/certificates`, json: { csr: csrFor(name) } };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'POST', route: '/api/v1/things/:name/certificates/revoke', request: async (t) => ({ url: `/api/v1/things/${(await newThing(t, true)).name}/certificates/revoke`, json: { reason: 'unspecified' } }), allowed: FLEET_WRITERS },
  {
    method: 'POST',
    route: '/api/v1/things/provision',
    request: () => {
      const name = unique();
      return Promise.resolve({ url: '/api/v1/things/provision', json: { devices: [{ name, csr: csrFor(name) }] } });
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/certificates', request: () => Promise.resolve({ url: '/api/v1/certificates' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/certificates/:serial', request: async (t) => ({ url: `/api/v1/certificates/${(await newThing(t, true)).serial}` }), allowed: ALL },
  { method: 'POST', route: '/api/v1/certificates/:serial/revoke', request: async (t) => ({ url: `/api/v1/certificates/${(await newThing(t, true)).serial}/revoke`, json: { reason: 'keyCompromise' } }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/certificates/:serial/rotate', request: async (t) => ({ url: `/api/v1/certificates/${(await newThing(t, true)).serial}/rotate` }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/thing-types', request: () => Promise.resolve({ url: '/api/v1/thing-types' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/thing-types', request: () => Promise.resolve({ url: '/api/v1/thing-types', json: { name: unique() } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/thing-types/:name', request: async (t) => ({ url: `/api/v1/thing-types/${(await t.node.context.identity.thingTypes.create({ name: unique() }, local)).name}` }), allowed: ALL },
  { method: 'PATCH', route: '/api/v1/thing-types/:name', request: async (t) => ({ url: `/api/v1/thing-types/${(await t.node.context.identity.thingTypes.create({ name: unique() }, local)).name}`, json: { description: 'x' } }), allowed: FLEET_WRITERS },
  { method: 'DELETE', route: '/api/v1/thing-types/:name', request: async (t) => ({ url: `/api/v1/thing-types/${(await t.node.context.identity.thingTypes.create({ name: unique() }, local)).name}` }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/groups', request: () => Promise.resolve({ url: '/api/v1/groups' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/groups', request: () => Promise.resolve({ url: '/api/v1/groups', json: { name: unique() } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/groups/:group', request: async (t) => ({ url: `/api/v1/groups/${(await t.node.context.identity.groups.create({ name: unique() }, local)).name}` }), allowed: ALL },
  { method: 'DELETE', route: '/api/v1/groups/:group', request: async (t) => ({ url: `/api/v1/groups/${(await t.node.context.identity.groups.create({ name: unique() }, local)).name}` }), allowed: FLEET_WRITERS },
  {
    method: 'PUT',
    route: '/api/v1/groups/:group/things/:thing',
    request: async (t) => ({ url: `/api/v1/groups/${(await t.node.context.identity.groups.create({ name: unique() }, local)).name}/things/${(await newThing(t)).name}` }),
    allowed: FLEET_WRITERS,
  },
  {
    method: 'DELETE',
    route: '/api/v1/groups/:group/things/:thing',
    request: async (t) => {
      const group = (await t.node.context.identity.groups.create({ name: unique() }, local)).name;
      const { name } = await newThing(t);
      await t.node.context.identity.groups.addThing(group, name, local);
      return { url: `/api/v1/groups/${group}/things/${name}` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/templates', request: () => Promise.resolve({ url: '/api/v1/templates' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/templates', request: () => Promise.resolve({ url: '/api/v1/templates', json: { name: unique(), namePattern: 'd-.*' } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/templates/:name', request: async (t) => ({ url: `/api/v1/templates/${await newTemplate(t)}` }), allowed: ALL },
  { method: 'PATCH', route: '/api/v1/templates/:name', request: async (t) => ({ url: `/api/v1/templates/${await newTemplate(t)}`, json: { enabled: false } }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/templates/:name/tokens', request: async (t) => ({ url: `/api/v1/templates/${await newTemplate(t)}/tokens`, json: {} }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/templates/:name/tokens', request: async (t) => ({ url: `/api/v1/templates/${await newTemplate(t)}/tokens` }), allowed: ALL },
  {
    method: 'DELETE',
    route: '/api/v1/enrollment-tokens/:id',
    request: async (t) => ({ url: `/api/v1/enrollment-tokens/${(await t.node.context.identity.enrollmentTokens.issue(await newTemplate(t), { uses: 1, ttlHours: 1 }, local)).id}` }),
    allowed: FLEET_WRITERS,
  },
  {
    method: 'POST',
    route: '/api/v1/templates/:name/claim-certificates',
    request: async (t) => {
      const name = await newTemplate(t);
      return { url: `/api/v1/templates/${name}/claim-certificates`, json: { csr: csrFor(name) } };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/cas', request: () => Promise.resolve({ url: '/api/v1/cas' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/cas/rotate-issuing', request: () => Promise.resolve({ url: '/api/v1/cas/rotate-issuing', json: {} }), allowed: ['admin'] },
  // This node's root is online: a request is a conflict, and no certificate can match a pending key.
  { method: 'POST', route: '/api/v1/cas/issuing-request', request: () => Promise.resolve({ url: '/api/v1/cas/issuing-request' }), allowed: ['admin'], allowedStatus: 409 },
  { method: 'POST', route: '/api/v1/cas/import-issuing', request: (t) => Promise.resolve({ url: '/api/v1/cas/import-issuing', json: { certificate: t.node.hierarchy.issuing.certificate.toString() } }), allowed: ['admin'], allowedStatus: 404 },
  { method: 'POST', route: '/api/v1/cas/registration-code', request: () => Promise.resolve({ url: '/api/v1/cas/registration-code' }), allowed: ['admin'] },
  {
    method: 'POST',
    route: '/api/v1/cas/register',
    request: async (t) => {
      const ca = await backdatedExternalCa(unique());
      const { code } = await t.node.context.identity.thirdPartyCas.registrationCode();
      return { url: '/api/v1/cas/register', json: { caCertificate: ca.pem, verificationCertificate: await ca.sign(code) } };
    },
    allowed: ['admin'],
  },
  {
    method: 'POST',
    route: '/api/v1/cas/:id/deregister',
    request: async (t) => {
      const ca = await backdatedExternalCa(unique());
      const { code } = await t.node.context.identity.thirdPartyCas.registrationCode();
      const registered = await t.node.context.identity.thirdPartyCas.register({ caPem: ca.pem, verificationPem: await ca.sign(code) }, local);
      return { url: `/api/v1/cas/${registered.id}/deregister` };
    },
    allowed: ['admin'],
  },
  { method: 'GET', route: '/api/v1/credential-audit', request: () => Promise.resolve({ url: '/api/v1/credential-audit?severity=high' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/credential-audit/run', request: () => Promise.resolve({ url: '/api/v1/credential-audit/run' }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/pki/ca.pem', request: () => Promise.resolve({ url: '/pki/ca.pem' }), allowed: 'public' },
  { method: 'GET', route: '/pki/crl', request: () => Promise.resolve({ url: '/pki/crl' }), allowed: 'public' },
  { method: 'GET', route: '/pki/crl/:ca', request: (t) => Promise.resolve({ url: `/pki/crl/${t.node.hierarchy.issuing.id}` }), allowed: 'public' },
  { method: 'GET', route: '/api/v1/audit/verification', request: () => Promise.resolve({ url: '/api/v1/audit/verification' }), allowed: ['admin', 'auditor'] },
  { method: 'GET', route: '/api/v1/audit/keys', request: () => Promise.resolve({ url: '/api/v1/audit/keys' }), allowed: ['admin', 'auditor'] },
  // Rule 9 (data): reading is purpose-bound and filtered by clearance, detokenizing needs its own grant (admins).
  { method: 'GET', route: '/api/v1/data/contracts', request: () => Promise.resolve({ url: '/api/v1/data/contracts' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/data/contracts', request: () => Promise.resolve({ url: '/api/v1/data/contracts', json: { contracts: [{ ...DATA_CONTRACT, name: unique() }] } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/data/contracts/:name', request: async (t) => ({ url: `/api/v1/data/contracts/${(await dataToken(t)).contract}` }), allowed: ALL },
  { method: 'GET', route: '/api/v1/data/things/:thing', request: async (t) => ({ url: `/api/v1/data/things/${(await dataToken(t)).thing}?purpose=billing` }), allowed: ALL },
  { method: 'POST', route: '/api/v1/data/detokenize', request: async (t) => ({ url: '/api/v1/data/detokenize', json: { token: (await dataToken(t)).token, purpose: 'billing' } }), allowed: ['admin'] },
  { method: 'POST', route: '/api/v1/data/things/:thing/purge', request: async (t) => ({ url: `/api/v1/data/things/${(await dataToken(t)).thing}/purge` }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/data/inventory', request: () => Promise.resolve({ url: '/api/v1/data/inventory' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/data/sealing-key', request: () => Promise.resolve({ url: '/api/v1/data/sealing-key' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/data/sealing-key/rotate', request: () => Promise.resolve({ url: '/api/v1/data/sealing-key/rotate' }), allowed: ['admin'] },
  // Data webhook consumers: seen by every role, managed by fleet writers (a consumer never reads above its creator's clearance).
  { method: 'GET', route: '/api/v1/data/webhooks', request: () => Promise.resolve({ url: '/api/v1/data/webhooks' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/data/webhooks', request: () => Promise.resolve({ url: '/api/v1/data/webhooks', json: { ...DATA_WEBHOOK, name: unique() } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/data/webhooks/:name', request: async (t) => ({ url: `/api/v1/data/webhooks/${await dataWebhook(t)}` }), allowed: ALL },
  { method: 'DELETE', route: '/api/v1/data/webhooks/:name', request: async (t) => ({ url: `/api/v1/data/webhooks/${await newDataWebhook(t)}` }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/data/webhooks/:name/pause', request: async (t) => ({ url: `/api/v1/data/webhooks/${await dataWebhook(t)}/pause` }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/data/webhooks/:name/resume', request: async (t) => ({ url: `/api/v1/data/webhooks/${await dataWebhook(t)}/resume` }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/data/webhooks/:name/rotate-secret', request: async (t) => ({ url: `/api/v1/data/webhooks/${await dataWebhook(t)}/rotate-secret` }), allowed: FLEET_WRITERS },
  // Rule 4 (updates): reading is for every role, changing the repository and deployments for fleet writers.
  { method: 'GET', route: '/api/v1/firmware', request: () => Promise.resolve({ url: '/api/v1/firmware' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/firmware/:target', request: async (t) => ({ url: `/api/v1/firmware/${(await updates(t)).target}` }), allowed: ALL },
  { method: 'GET', route: '/api/v1/firmware/:target/sbom', request: async (t) => ({ url: `/api/v1/firmware/${(await updates(t)).target}/sbom` }), allowed: ALL },
  {
    method: 'POST',
    route: '/api/v1/firmware',
    request: async (t) => {
      await updates(t);
      return { url: `/api/v1/firmware?name=${unique()}&version=1.0.0&securityVersion=1&hardware=matrix-type`, raw: randomBytes(64), contentType: 'application/octet-stream' };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/updates/repository', request: () => Promise.resolve({ url: '/api/v1/updates/repository' }), allowed: ALL },
  {
    method: 'POST',
    route: '/api/v1/updates/root/proposal',
    request: async (t) => {
      const { repo } = await updates(t);
      return { url: '/api/v1/updates/root/proposal', json: { rootKeys: repo.root.map((k) => k.publicKey), rootThreshold: 1, targetsKeys: repo.targets.map((k) => k.publicKey), targetsThreshold: 1 } };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'PUT', route: '/api/v1/updates/root', request: async (t) => ({ url: '/api/v1/updates/root', json: await signedNext(t, 'root') }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/updates/targets/proposal', request: async (t) => (await updates(t), { url: '/api/v1/updates/targets/proposal', json: {} }), allowed: FLEET_WRITERS },
  { method: 'PUT', route: '/api/v1/updates/targets', request: async (t) => ({ url: '/api/v1/updates/targets', json: await signedNext(t, 'targets') }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/updates/inventory', request: () => Promise.resolve({ url: '/api/v1/updates/inventory' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/deployments', request: async (t) => ({ url: '/api/v1/deployments', json: { target: (await updates(t)).target, selection: { things: [(await updates(t)).thing] } } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/deployments', request: () => Promise.resolve({ url: '/api/v1/deployments' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/deployments/:id', request: async (t) => ({ url: `/api/v1/deployments/${await newDeployment(t)}` }), allowed: ALL },
  { method: 'GET', route: '/api/v1/deployments/:id/jobs', request: async (t) => ({ url: `/api/v1/deployments/${await newDeployment(t)}/jobs` }), allowed: ALL },
  { method: 'POST', route: '/api/v1/deployments/:id/cancel', request: async (t) => ({ url: `/api/v1/deployments/${await newDeployment(t)}/cancel` }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/deployments/:id/pause', request: async (t) => ({ url: `/api/v1/deployments/${await newDeployment(t)}/pause` }), allowed: FLEET_WRITERS },
  {
    method: 'POST',
    route: '/api/v1/deployments/:id/resume',
    request: async (t) => {
      const id = await newDeployment(t);
      await t.node.context.updates.deployments.pause(id, local);
      return { url: `/api/v1/deployments/${id}/resume` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/updates/cannot-update', request: () => Promise.resolve({ url: '/api/v1/updates/cannot-update' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/updates/auto-security-updates', request: () => Promise.resolve({ url: '/api/v1/updates/auto-security-updates' }), allowed: ALL },
  { method: 'PUT', route: '/api/v1/groups/:group/auto-security-updates', request: async (t) => ({ url: `/api/v1/groups/${(await updates(t)).group}/auto-security-updates`, json: { enabled: false } }), allowed: FLEET_WRITERS },
  // Rule 6: reading the canaries' report is for every role; running them (canary devices connect) for fleet writers.
  { method: 'GET', route: '/api/v1/health/controls', request: () => Promise.resolve({ url: '/api/v1/health/controls' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/health/controls/run', request: () => Promise.resolve({ url: '/api/v1/health/controls/run' }), allowed: FLEET_WRITERS },
  // Rule 5: security profiles, stored metrics, custom metric declarations.
  { method: 'GET', route: '/api/v1/monitor/profiles', request: () => Promise.resolve({ url: '/api/v1/monitor/profiles' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/monitor/profiles', request: () => Promise.resolve({ url: '/api/v1/monitor/profiles', json: monitorProfile(unique()) }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/monitor/profiles/:name', request: async (t) => ({ url: `/api/v1/monitor/profiles/${await newMonitorProfile(t)}` }), allowed: ALL },
  { method: 'DELETE', route: '/api/v1/monitor/profiles/:name', request: async (t) => ({ url: `/api/v1/monitor/profiles/${await newMonitorProfile(t)}` }), allowed: FLEET_WRITERS },
  {
    method: 'PUT',
    route: '/api/v1/monitor/profiles/:name/groups/:group',
    request: async (t) => {
      const group = unique();
      await t.node.context.identity.groups.create({ name: group }, local);
      return { url: `/api/v1/monitor/profiles/${await newMonitorProfile(t)}/groups/${group}` };
    },
    allowed: FLEET_WRITERS,
  },
  {
    method: 'DELETE',
    route: '/api/v1/monitor/profiles/:name/groups/:group',
    request: async (t) => {
      const group = unique();
      await t.node.context.identity.groups.create({ name: group }, local);
      const name = await newMonitorProfile(t);
      await monitorProfiles(t).attach(name, group, local);
      return { url: `/api/v1/monitor/profiles/${name}/groups/${group}` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/monitor/metrics/things/:thing', request: async (t) => ({ url: `/api/v1/monitor/metrics/things/${(await newThing(t)).name}` }), allowed: ALL },
  {
    method: 'GET',
    route: '/api/v1/monitor/metrics/groups/:group',
    request: async (t) => {
      const group = unique();
      await t.node.context.identity.groups.create({ name: group }, local);
      return { url: `/api/v1/monitor/metrics/groups/${group}` };
    },
    allowed: ALL,
  },
  { method: 'GET', route: '/api/v1/monitor/custom-metrics', request: () => Promise.resolve({ url: '/api/v1/monitor/custom-metrics' }), allowed: ALL },
  {
    method: 'POST',
    route: '/api/v1/monitor/custom-metrics',
    request: async (t) => {
      const thingType = unique();
      await t.node.context.identity.thingTypes.create({ name: thingType }, local);
      return { url: '/api/v1/monitor/custom-metrics', json: { thingType, name: 'queue.depth', kind: 'number' } };
    },
    allowed: FLEET_WRITERS,
  },
  {
    method: 'DELETE',
    route: '/api/v1/monitor/custom-metrics/:thingType/:name',
    request: async (t) => {
      const thingType = unique();
      await t.node.context.identity.thingTypes.create({ name: thingType }, local);
      await new MetricsStore({ store: t.node.context.store, audit: t.node.context.audit, clock: t.node.context.clock }).declareCustom({ thingType, name: 'queue.depth', kind: 'number' }, local);
      return { url: `/api/v1/monitor/custom-metrics/${thingType}/queue.depth` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/bans', request: () => Promise.resolve({ url: '/api/v1/bans' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/bans', request: () => Promise.resolve({ url: '/api/v1/bans', json: { kind: 'client-id', value: unique(), durationSeconds: 60 } }), allowed: FLEET_WRITERS },
  {
    method: 'DELETE',
    route: '/api/v1/bans/:kind/:value',
    request: async (t) => {
      const value = unique();
      await t.node.context.bans.add({ kind: 'thing', value }, { name: 'operator:test' });
      return { url: `/api/v1/bans/thing/${value}` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/policies', request: () => Promise.resolve({ url: '/api/v1/policies' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/policies', request: () => Promise.resolve({ url: '/api/v1/policies', json: { name: unique(), document: policyDocument } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/policies/:name', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}` }), allowed: ALL },
  { method: 'PUT', route: '/api/v1/policies/:name', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}`, json: { document: policyDocument } }), allowed: FLEET_WRITERS },
  { method: 'DELETE', route: '/api/v1/policies/:name', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}` }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/policies/:name/versions', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}/versions` }), allowed: ALL },
  { method: 'GET', route: '/api/v1/policies/:name/versions/:version', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}/versions/1` }), allowed: ALL },
  { method: 'PUT', route: '/api/v1/policies/:name/default-version', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}/default-version`, json: { version: 1 } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/policies/:name/attachments', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}/attachments` }), allowed: ALL },
  { method: 'PUT', route: '/api/v1/policies/:name/attachments/:kind/:target', request: async (t) => ({ url: `/api/v1/policies/${await newPolicy(t)}/attachments/thing/${(await newThing(t)).name}` }), allowed: FLEET_WRITERS },
  {
    method: 'DELETE',
    route: '/api/v1/policies/:name/attachments/:kind/:target',
    request: async (t) => {
      const policy = await newPolicy(t);
      const { name } = await newThing(t);
      await policyStore(t).attach(policy, { kind: 'thing', name }, local);
      return { url: `/api/v1/policies/${policy}/attachments/thing/${name}` };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'POST', route: '/api/v1/policies/simulate', request: async (t) => ({ url: '/api/v1/policies/simulate', json: { thing: (await newThing(t)).name, action: 'mqtt:publish', resource: 'a/b' } }), allowed: ALL },
  { method: 'GET', route: '/api/v1/policies/analyze', request: () => Promise.resolve({ url: '/api/v1/policies/analyze?days=7' }), allowed: ALL },
  {
    method: 'POST',
    route: '/api/v1/policies/import-aws',
    request: () =>
      Promise.resolve({ url: '/api/v1/policies/import-aws', json: { name: unique(), document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}' }] } } }),
    allowed: FLEET_WRITERS,
  },
  // Rule 5 response (monitor/alerts): one block.
  { method: 'GET', route: '/api/v1/alerts', request: () => Promise.resolve({ url: '/api/v1/alerts?state=active' }), allowed: ALL },
  { method: 'GET', route: '/api/v1/alerts/:id', request: async (t) => ({ url: `/api/v1/alerts/${(await newAlert(t)).id}` }), allowed: ALL },
  { method: 'POST', route: '/api/v1/alerts/:id/acknowledge', request: async (t) => ({ url: `/api/v1/alerts/${(await newAlert(t)).id}/acknowledge`, json: {} }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/alerts/:id/resolve', request: async (t) => ({ url: `/api/v1/alerts/${(await newAlert(t)).id}/resolve`, json: { verdict: 'benign' } }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/alerts/:id/notes', request: async (t) => ({ url: `/api/v1/alerts/${(await newAlert(t)).id}/notes`, json: { text: 'looked at it' } }), allowed: FLEET_WRITERS },
  { method: 'PUT', route: '/api/v1/alerts/:id/verdict', request: async (t) => ({ url: `/api/v1/alerts/${(await newAlert(t)).id}/verdict`, json: { verdict: 'true-positive' } }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/alert-suppressions', request: () => Promise.resolve({ url: '/api/v1/alert-suppressions' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/alert-suppressions', request: () => Promise.resolve({ url: '/api/v1/alert-suppressions', json: { thing: unique(), durationSeconds: 60 } }), allowed: FLEET_WRITERS },
  {
    method: 'DELETE',
    route: '/api/v1/alert-suppressions/:id',
    request: async (t) => ({ url: `/api/v1/alert-suppressions/${(await (await responseServices(t)).suppressions.add({ thing: unique(), durationSeconds: 60 }, local)).id}` }),
    allowed: FLEET_WRITERS,
  },
  { method: 'POST', route: '/api/v1/things/:name/response', request: async (t) => ({ url: `/api/v1/things/${(await newThing(t, true)).name}/response`, json: { action: 'suspend' } }), allowed: FLEET_WRITERS },
  {
    method: 'POST',
    route: '/api/v1/things/:name/release',
    request: async (t) => {
      const { name } = await newThing(t, true);
      await t.node.context.identity.things.setState(name, 'quarantined', local);
      return { url: `/api/v1/things/${name}/release`, json: {} };
    },
    allowed: FLEET_WRITERS,
  },
  { method: 'GET', route: '/api/v1/response-actions', request: () => Promise.resolve({ url: '/api/v1/response-actions?state=pending-approval' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/response-actions/:id/approve', request: async (t) => ({ url: `/api/v1/response-actions/${(await newAlert(t, ['force-rotation'])).pending}/approve` }), allowed: FLEET_WRITERS },
  { method: 'POST', route: '/api/v1/response-actions/:id/reject', request: async (t) => ({ url: `/api/v1/response-actions/${(await newAlert(t, ['force-rotation'])).pending}/reject`, json: {} }), allowed: FLEET_WRITERS },
  { method: 'GET', route: '/api/v1/notify/webhooks', request: () => Promise.resolve({ url: '/api/v1/notify/webhooks' }), allowed: ALL },
  { method: 'POST', route: '/api/v1/notify/webhooks', request: () => Promise.resolve({ url: '/api/v1/notify/webhooks', json: { name: unique(), url: 'https://127.0.0.1:9/hooks' } }), allowed: FLEET_WRITERS },
  {
    method: 'DELETE',
    route: '/api/v1/notify/webhooks/:name',
    request: async (t) => ({ url: `/api/v1/notify/webhooks/${(await (await responseServices(t)).notifier.addWebhook({ name: unique(), url: 'https://127.0.0.1:9/hooks' }, local)).webhook.name}` }),
    allowed: FLEET_WRITERS,
  },
];

describe.each(DIALECTS)('API access control on %s', (dialect) => {
  const clock = new TestClock();
  let t: TestNode;
  let base: string;
  let ca: string;
  const tokens = new Map<string, string>();
  const send = (url: string, options: CallOptions = {}) => call(ca, base + url, options);

  beforeAll(async () => {
    t = await startTestNode(dialect, { clock, env: { FLEETWARD_AUTH_FAILURE_LIMIT: '5' } });
    base = (await t.node.listen()).apiUrl;
    ca = t.node.hierarchy.chainPem;
    for (const role of ALL) {
      tokens.set(role, await t.operatorToken(`${role}-user`, role));
      tokens.set(`${role}+metrics`, await t.operatorToken(`${role}-scraper`, role, ['metrics']));
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it('the matrix covers every route the API serves', () => {
    const served = new Set<string>();
    const document = t.node.api.swagger() as { paths: Record<string, Record<string, unknown>> };
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const method of Object.keys(operations)) served.add(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`);
    }
    served.add('GET /api/openapi.json');
    // OCSP answers anyone (RFC 6960); its POST body and GET path are DER, tested in pki.test.ts.
    // EST routes authenticate devices themselves (certificate or enrollment token), tested in est.test.ts.
    // Update downloads authenticate devices by their certificate, tested in updates/update-repository.test.ts.
    for (const route of ['GET /updates/v1/metadata/:file', 'GET /updates/v1/targets/:file']) served.delete(route);
    for (const route of ['POST /pki/ocsp', 'GET /pki/ocsp/{*}', 'GET /.well-known/est/cacerts', 'POST /.well-known/est/simpleenroll', 'POST /.well-known/est/:template/simpleenroll', 'POST /.well-known/est/simplereenroll']) served.delete(route);
    expect(new Set(ROUTES.map((r) => `${r.method} ${r.route}`))).toEqual(served);
  });

  for (const route of ROUTES) {
    for (const role of ALL) {
      const allowed = route.allowed === 'public' || (Array.isArray(route.allowed) && route.allowed.includes(role));
      it(`${route.method} ${route.route}: ${role} is ${allowed ? 'allowed' : 'refused (403)'}`, async () => {
        if (route.allowed === 'metrics') return;
        const { url, json, raw, contentType } = await route.request(t);
        const before = await t.node.context.audit.verify();
        const answer = await send(url, { method: route.method, token: tokens.get(role) as string, ...(json !== undefined && { json }), ...(raw !== undefined && { raw, contentType }) });
        if (allowed && route.allowedStatus !== undefined) {
          expect(answer.status, answer.text).toBe(route.allowedStatus);
        } else if (allowed) {
          expect(answer.status, answer.text).toBeLessThan(300);
        } else {
          expect(answer.status).toBe(403);
          expect(answer.body.code).toBe('FW_ERR_FORBIDDEN');
          const denials = await t.node.context.audit.list({ afterSeq: before.head?.seq ?? 0, limit: 10, action: 'access.denied' });
          expect(denials.map((d) => d.actor)).toEqual([`operator:${role}-user`]);
        }
      });
    }
  }

  it('/metrics answers only tokens with the metrics scope, whatever their role', async () => {
    for (const role of ALL) {
      const scraped = await send('/metrics', { token: tokens.get(`${role}+metrics`) as string });
      expect(scraped.status).toBe(200);
      expect(scraped.text).toContain('fleetward_http_requests_total');
      expect(scraped.text).toContain('fleetward_audit_events_total');
      expect((await send('/metrics', { token: tokens.get(role) as string })).body.code).toBe('FW_ERR_FORBIDDEN');
    }
    expect((await send('/metrics')).status).toBe(401);
  });

  it('a metrics-only token cannot use the operator API, even an admin\'s', async () => {
    const answer = await send('/api/v1/operators', { token: tokens.get('admin+metrics') as string });
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe('FW_ERR_FORBIDDEN');
  });

  it('refused changes leave the store as it was', async () => {
    const count = async () => (await t.node.context.operators.list({ includeRevoked: true })).length;
    const before = await count();
    for (const role of ['operator', 'auditor', 'viewer'] as const) {
      expect((await send('/api/v1/operators', { method: 'POST', token: tokens.get(role) as string, json: { name: unique(), role: 'admin' } })).status).toBe(403);
      expect((await send('/api/v1/operators/admin-user', { method: 'DELETE', token: tokens.get(role) as string })).status).toBe(403);
    }
    expect(await count()).toBe(before);
    expect((await t.node.context.operators.get('admin-user')).revokedAt).toBeNull();
  });

  describe('authentication failures', () => {
    function expectRefused(answer: Answer, code: string): void {
      expect(answer.status).toBe(401);
      expect(answer.body.code).toBe(code);
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="fleetward"');
    }

    it('missing, malformed, unknown, expired and revoked tokens are refused with their own code and audited', async () => {
      const expiring = await t.node.context.operators.create({ name: unique(), role: 'admin', ttlDays: 1 }, { name: 'test' });
      const revoked = await t.node.context.operators.create({ name: unique(), role: 'admin' }, { name: 'test' });
      await t.node.context.operators.revokeToken(revoked.token.id, { name: 'test' });
      const before = (await t.node.context.audit.verify()).head?.seq ?? 0;
      expectRefused(await send('/api/v1/whoami'), 'FW_ERR_UNAUTHENTICATED');
      expectRefused(await send('/api/v1/whoami', { token: 'not-a-token' }), 'FW_ERR_TOKEN_INVALID');
      expectRefused(await send('/api/v1/whoami', { token: `fwt_${'x'.repeat(43)}` }), 'FW_ERR_TOKEN_INVALID');
      expectRefused(await send('/api/v1/whoami', { token: revoked.token.token }), 'FW_ERR_TOKEN_REVOKED');
      clock.advance(86_400_000 + 1);
      expectRefused(await send('/api/v1/whoami', { token: expiring.token.token }), 'FW_ERR_TOKEN_EXPIRED');
      const failures = await t.node.context.audit.list({ afterSeq: before, limit: 20, action: 'auth.failure' });
      expect(failures.map((f) => (JSON.parse(f.details) as { reason: string }).reason)).toEqual(['FW_ERR_UNAUTHENTICATED', 'FW_ERR_TOKEN_INVALID', 'FW_ERR_TOKEN_INVALID', 'FW_ERR_TOKEN_REVOKED', 'FW_ERR_TOKEN_EXPIRED']);
      expect(failures.every((f) => f.source === '127.0.0.1' && f.outcome === 'denied')).toBe(true);
    });

    it('a source that keeps failing is blocked (429, Retry-After) even with a valid token, once audited, then let back in', async () => {
      clock.advance(3_600_000);
      const before = (await t.node.context.audit.verify()).head?.seq ?? 0;
      for (let i = 0; i < 5; i++) expect((await send('/api/v1/whoami', { token: `fwt_${String(i).repeat(43)}` })).status).toBe(401);
      const blocked = await send('/api/v1/whoami', { token: tokens.get('admin') as string });
      expect(blocked.status).toBe(429);
      expect(blocked.body.code).toBe('FW_ERR_AUTH_THROTTLED');
      expect(Number(blocked.headers['retry-after'])).toBe(300);
      for (let i = 0; i < 20; i++) await send('/api/v1/whoami', { token: 'guess' });
      const events = await t.node.context.audit.list({ afterSeq: before, limit: 100 });
      expect(events.filter((e) => e.action === 'auth.failure')).toHaveLength(5);
      expect(events.filter((e) => e.action === 'auth.throttled')).toHaveLength(1);
      // Public routes stay reachable for health checks.
      expect((await send('/healthz')).status).toBe(200);
      clock.advance(300_001);
      expect((await send('/api/v1/whoami', { token: tokens.get('admin') as string })).status).toBe(200);
    });
  });

  it('never writes a token to the log', () => {
    expect(t.log.text.length).toBeGreaterThan(0);
    for (const token of tokens.values()) expect(t.log.text).not.toContain(token);
    expect(t.log.text).not.toContain(t.bootstrapToken.token);
    expect(t.log.text).not.toContain('PRIVATE KEY');
  });
});
