import type { Certificates } from '../../identity/certificates.js';
import type { EnrollmentTokens } from '../../identity/provisioning/enrollment-tokens.js';
import type { ProvisioningTemplates } from '../../identity/provisioning/templates.js';
import type { Api } from '../types.js';
import { array, boolean, integer, nullable, object, record, string } from '../json-schema.js';
import { AttributesSchema, IssuedCertificate, RegistryNameSchema } from '../identity-schemas.js';
import { authenticatedErrors, Problem, Timestamp } from '../schemas.js';
import { actorOf } from './operators.js';

const read = { access: { kind: 'permission', permission: 'fleet:read' } } as const;
const write = { access: { kind: 'permission', permission: 'fleet:write' } } as const;
const errors = { ...authenticatedErrors, 404: Problem, 409: Problem };
const tags = ['provisioning'];
const Pattern = string({ minLength: 1, maxLength: 256, description: 'A regular expression the whole value must match' });

const Template = object({
  name: string(),
  namePattern: string(),
  thingType: nullable(string()),
  groups: array(string()),
  attributes: record(string()),
  parameters: record(string()),
  policies: array(string()),
  enabled: boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const TokenInfo = { id: string(), template: string(), usesLeft: integer(), expiresAt: Timestamp, createdAt: Timestamp, createdBy: string(), revokedAt: nullable(Timestamp) };

/** Provisioning templates and the claim credentials that let devices provision against them. */
export function templateRoutes(app: Api, deps: { readonly templates: ProvisioningTemplates; readonly enrollmentTokens: EnrollmentTokens; readonly certificates: Certificates }): void {
  const Params = object({ name: RegistryNameSchema });
  app.post(
    '/api/v1/templates',
    {
      config: write,
      schema: {
        tags,
        body: object(
          { name: RegistryNameSchema, namePattern: Pattern },
          { thingType: nullable(RegistryNameSchema), groups: array(RegistryNameSchema, { maxItems: 10 }), attributes: AttributesSchema, parameters: record(Pattern, { maxProperties: 20 }), policies: array(RegistryNameSchema, { maxItems: 20 }) },
        ),
        response: { 201: Template, ...errors },
      },
    },
    async (request, reply) => {
      const { name, ...definition } = request.body;
      return reply.code(201).send(await deps.templates.create(name, definition, actorOf(request)));
    },
  );
  app.get('/api/v1/templates', { config: read, schema: { tags, response: { 200: object({ templates: array(Template) }), ...errors } } }, async () => ({ templates: await deps.templates.list() }));
  app.get('/api/v1/templates/:name', { config: read, schema: { tags, params: Params, response: { 200: Template, ...errors } } }, async (request) => deps.templates.get(request.params.name));
  app.patch('/api/v1/templates/:name', { config: write, schema: { tags, params: Params, body: object({ enabled: boolean() }), response: { 200: Template, ...errors } } }, async (request) =>
    deps.templates.setEnabled(request.params.name, request.body.enabled, actorOf(request)),
  );

  app.post(
    '/api/v1/templates/:name/tokens',
    {
      config: write,
      schema: { tags, description: 'Issues an enrollment token (shown once).', params: Params, body: object({}, { uses: integer({ minimum: 1, maximum: 100_000 }), ttlHours: integer({ minimum: 1, maximum: 2160 }) }), response: { 201: object({ ...TokenInfo, token: string() }), ...errors } },
    },
    async (request, reply) => reply.code(201).send(await deps.enrollmentTokens.issue(request.params.name, { uses: request.body.uses ?? 1, ttlHours: request.body.ttlHours ?? 24 }, actorOf(request))),
  );
  app.get('/api/v1/templates/:name/tokens', { config: read, schema: { tags, params: Params, response: { 200: object({ tokens: array(object(TokenInfo)) }), ...errors } } }, async (request) => ({ tokens: await deps.enrollmentTokens.list(request.params.name) }));
  app.delete('/api/v1/enrollment-tokens/:id', { config: write, schema: { tags, params: object({ id: string({ pattern: '^enr_[a-f0-9]{16}$' }) }), response: { 200: object(TokenInfo), ...errors } } }, async (request) =>
    deps.enrollmentTokens.revoke(request.params.id, actorOf(request)),
  );

  app.post(
    '/api/v1/templates/:name/claim-certificates',
    {
      config: write,
      schema: {
        tags,
        description: "Issues a claim certificate for the template from a CSR whose CN is the template name. Devices built with it may only provision; revoke it to stop new claims.",
        params: Params,
        body: object({ csr: string({ maxLength: 32_768 }) }, { validityDays: integer({ minimum: 1, maximum: 3650 }) }),
        response: { 201: IssuedCertificate, ...errors },
      },
    },
    async (request, reply) => {
      await deps.templates.get(request.params.name);
      const issued = await deps.certificates.issue(
        { subject: request.params.name, kind: 'claim', csr: request.body.csr, via: 'operator', template: request.params.name, ...(request.body.validityDays !== undefined && { validityDays: request.body.validityDays }) },
        actorOf(request),
      );
      return reply.code(201).send(issued);
    },
  );
}
