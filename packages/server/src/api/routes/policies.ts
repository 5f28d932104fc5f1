import { ANALYZE_LIMITS, attachmentTarget, type PolicyStore } from '../../access/policy-store/index.js';
import { POLICY_ACTIONS } from '../../access/policy/index.js';
import type { Api } from '../types.js';
import { array, boolean, integer, nullable, object, oneOf, string, unknown } from '../json-schema.js';
import { RegistryNameSchema, ThingNameSchema } from '../identity-schemas.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem, 422: Problem };
const tags = ['policies'];

const Document = unknown();
const Target = object({ kind: oneOf(['thing', 'group', 'certificate'] as const), name: string() });
const StoredPolicy = object({
  name: string(),
  defaultVersion: integer(),
  latestVersion: integer(),
  document: Document,
  attachments: integer(),
  isDefaultDevicePolicy: boolean(),
  createdAt: Timestamp,
  createdBy: string(),
  updatedAt: Timestamp,
});
const Version = object({ policy: string(), version: integer(), isDefault: boolean(), document: Document, createdAt: Timestamp, createdBy: string() });
const Attachment = object({ policy: string(), target: Target, createdAt: Timestamp, createdBy: string() });
const Deciding = object({ policy: string(), index: integer(), sid: nullable(string()), version: integer(), effect: oneOf(['allow', 'deny'] as const) });
const Finding = object({
  code: string(),
  severity: string(),
  policy: string(),
  statement: nullable(object({ policy: string(), index: integer(), sid: nullable(string()) })),
  action: nullable(string()),
  resource: nullable(string()),
  things: array(string()),
  thingCount: integer(),
  message: string(),
});
const Params = object({ name: RegistryNameSchema });
const TargetParams = object({ name: RegistryNameSchema, kind: oneOf(['thing', 'group', 'certificate'] as const), target: string({ minLength: 1, maxLength: 200 }) });

/**
 * Device policies (docs/policies.md "Managing policies"): CRUD with versions, attachments, the
 * simulator, the analyzer and the AWS IoT importer. Reading needs fleet:read, changing fleet:write.
 */
export function policyRoutes(app: Api, deps: { readonly policies: PolicyStore }): void {
  const { policies } = deps;
  app.get('/api/v1/policies', { config: read, schema: { tags, response: { 200: object({ policies: array(StoredPolicy) }), ...errors } } }, async () => ({ policies: await policies.list() }));
  app.post(
    '/api/v1/policies',
    { config: write, schema: { tags, description: 'Creates a policy (version 1). An invalid document is FW_ERR_VALIDATION with `path`.', body: object({ name: RegistryNameSchema, document: Document }), response: { 201: StoredPolicy, ...errors } } },
    async (request, reply) => reply.code(201).send(await policies.create(request.body.name, request.body.document, actorOf(request))),
  );
  app.post(
    '/api/v1/policies/import-aws',
    {
      config: write,
      schema: {
        tags,
        description: 'Creates a policy from an AWS IoT policy document, translated exactly or refused (FW_ERR_POLICY_UNTRANSLATABLE with `path`).',
        body: object(
          { name: RegistryNameSchema, document: Document },
          { region: string({ maxLength: 64 }), account: string({ maxLength: 64 }), expandWildcardActions: boolean(), description: string({ maxLength: 500 }) },
        ),
        response: { 201: StoredPolicy, ...errors },
      },
    },
    async (request, reply) => {
      const { name, document, ...options } = request.body;
      return reply.code(201).send(await policies.importAws(name, document, options, actorOf(request)));
    },
  );
  app.post(
    '/api/v1/policies/simulate',
    {
      config: read,
      schema: {
        tags,
        description: "Decides one request for a thing with its effective policies, as the gateway would, and names the deciding statement.",
        body: object(
          { thing: ThingNameSchema, action: oneOf(POLICY_ACTIONS), resource: string({ minLength: 1, maxLength: 512 }) },
          { source: string({ maxLength: 64 }), certificate: string({ minLength: 1, maxLength: 200 }) },
        ),
        response: {
          200: object({
            decision: oneOf(['allow', 'deny'] as const),
            reason: string(),
            description: string(),
            statement: nullable(Deciding),
            together: array(Deciding),
            thing: object({ name: string(), state: string() }),
            certificate: nullable(string()),
            policies: array(object({ name: string(), version: integer(), via: nullable(Target) })),
            statements: array(unknown()),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { thing, action, resource, source, certificate } = request.body;
      return policies.simulate({ thing, action, resource, ...(source !== undefined && { sourceAddress: source }), ...(certificate !== undefined && { certificate }) });
    },
  );
  app.get(
    '/api/v1/policies/analyze',
    {
      config: read,
      schema: {
        tags,
        querystring: object({}, { days: integer({ minimum: 1, maximum: ANALYZE_LIMITS.maxUnusedDays, description: 'unused-action window (default 30)' }) }),
        response: { 200: object({ findings: array(Finding), unusedDays: integer(), usageJudged: array(string()), things: integer() }), ...errors },
      },
    },
    async (request) => policies.analyze(request.query.days === undefined ? {} : { unusedDays: request.query.days }),
  );
  app.get('/api/v1/policies/:name', { config: read, schema: { tags, params: Params, response: { 200: StoredPolicy, ...errors } } }, async (request) => policies.get(request.params.name));
  app.put(
    '/api/v1/policies/:name',
    { config: write, schema: { tags, description: 'Adds a version (in force at once unless makeDefault is false).', params: Params, body: object({ document: Document }, { makeDefault: boolean() }), response: { 200: StoredPolicy, ...errors } } },
    async (request) => policies.update(request.params.name, request.body.document, actorOf(request), request.body.makeDefault === undefined ? {} : { makeDefault: request.body.makeDefault }),
  );
  app.delete(
    '/api/v1/policies/:name',
    {
      config: write,
      schema: { tags, description: 'Refused while attached unless force=true, which detaches it everywhere.', params: Params, querystring: object({}, { force: boolean() }), response: { 200: object({ detached: array(Attachment) }), ...errors } },
    },
    async (request) => policies.delete(request.params.name, actorOf(request), { force: request.query.force === true }),
  );
  app.get('/api/v1/policies/:name/versions', { config: read, schema: { tags, params: Params, response: { 200: object({ versions: array(Version) }), ...errors } } }, async (request) => ({ versions: await policies.versions(request.params.name) }));
  app.get(
    '/api/v1/policies/:name/versions/:version',
    { config: read, schema: { tags, params: object({ name: RegistryNameSchema, version: integer({ minimum: 1 }) }), response: { 200: Version, ...errors } } },
    async (request) => policies.version(request.params.name, request.params.version),
  );
  app.put(
    '/api/v1/policies/:name/default-version',
    { config: write, schema: { tags, description: 'Puts an existing version in force (a rollback).', params: Params, body: object({ version: integer({ minimum: 1 }) }), response: { 200: StoredPolicy, ...errors } } },
    async (request) => policies.setDefaultVersion(request.params.name, request.body.version, actorOf(request)),
  );
  app.get('/api/v1/policies/:name/attachments', { config: read, schema: { tags, params: Params, response: { 200: object({ attachments: array(Attachment) }), ...errors } } }, async (request) => ({
    attachments: await policies.attachments({ policy: request.params.name }),
  }));
  app.put(
    '/api/v1/policies/:name/attachments/:kind/:target',
    { config: write, schema: { tags, description: 'Attaches the policy to a thing, a group (and the groups below it) or a device certificate; idempotent.', params: TargetParams, response: { 200: Attachment, ...errors } } },
    async (request) => policies.attach(request.params.name, attachmentTarget({ [request.params.kind]: request.params.target }), actorOf(request)),
  );
  app.delete(
    '/api/v1/policies/:name/attachments/:kind/:target',
    { config: write, schema: { tags, params: TargetParams, response: { 200: object({ detached: Attachment }), ...errors } } },
    async (request) => ({ detached: await policies.detach(request.params.name, attachmentTarget({ [request.params.kind]: request.params.target }), actorOf(request)) }),
  );
}
