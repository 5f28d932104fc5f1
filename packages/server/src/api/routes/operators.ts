import type { Operators } from '../../access/operators.js';
import type { Actor } from '../../audit/audit-events.js';
import type { Api } from '../types.js';
import type { FastifyRequest } from 'fastify';
import { array, boolean, object, string } from '../json-schema.js';
import { authenticatedErrors, IssuedToken, Operator, OperatorName, Problem, RoleSchema, TokenRequest, TokenSummary } from '../schemas.js';

const tags = ['operators'];
const NameParams = object({ name: OperatorName });

/** Operator accounts and API tokens. Reading needs operators:read, changing needs operators:write. */
export function operatorRoutes(app: Api, deps: { readonly operators: Operators }): void {
  app.get(
    '/api/v1/operators',
    {
      config: { access: { kind: 'permission', permission: 'operators:read' } },
      schema: {
        tags,
        querystring: object({}, { includeRevoked: boolean({ default: false }) }),
        response: { 200: object({ operators: array(Operator) }), ...authenticatedErrors },
      },
    },
    async (request) => ({ operators: await deps.operators.list({ includeRevoked: request.query.includeRevoked === true }) }),
  );

  app.post(
    '/api/v1/operators',
    {
      config: { access: { kind: 'permission', permission: 'operators:write' } },
      schema: {
        tags,
        body: object({ name: OperatorName, role: RoleSchema }, TokenRequest),
        response: { 201: object({ operator: Operator, token: IssuedToken }), 409: Problem, ...authenticatedErrors },
      },
    },
    async (request, reply) => {
      const { name, role, scopes, ttlDays } = request.body;
      const created = await deps.operators.create({ name, role, ...(scopes && { scopes }), ...(ttlDays !== undefined && { ttlDays }) }, actorOf(request));
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/api/v1/operators/:name',
    {
      config: { access: { kind: 'permission', permission: 'operators:read' } },
      schema: { tags, params: NameParams, response: { 200: Operator, 404: Problem, ...authenticatedErrors } },
    },
    async (request) => deps.operators.get(request.params.name),
  );

  app.delete(
    '/api/v1/operators/:name',
    {
      config: { access: { kind: 'permission', permission: 'operators:write' } },
      schema: { tags, params: NameParams, response: { 200: Operator, 404: Problem, 409: Problem, ...authenticatedErrors } },
    },
    async (request) => deps.operators.revoke(request.params.name, actorOf(request)),
  );

  app.post(
    '/api/v1/operators/:name/tokens',
    {
      config: { access: { kind: 'permission', permission: 'operators:write' } },
      schema: { tags, params: NameParams, body: object({}, TokenRequest), response: { 201: IssuedToken, 404: Problem, 409: Problem, ...authenticatedErrors } },
    },
    async (request, reply) => {
      const { scopes, ttlDays } = request.body;
      const token = await deps.operators.issueToken(request.params.name, { ...(scopes && { scopes }), ...(ttlDays !== undefined && { ttlDays }) }, actorOf(request));
      return reply.code(201).send(token);
    },
  );

  app.delete(
    '/api/v1/tokens/:id',
    {
      config: { access: { kind: 'permission', permission: 'operators:write' } },
      schema: { tags, params: object({ id: string({ pattern: '^tok_[a-f0-9]{16}$' }) }), response: { 200: TokenSummary, 404: Problem, 409: Problem, ...authenticatedErrors } },
    },
    async (request) => deps.operators.revokeToken(request.params.id, actorOf(request)),
  );
}

/** The audit actor for an authenticated request. */
export function actorOf(request: FastifyRequest): Actor {
  return { name: request.principal ? `operator:${request.principal.operator}` : 'anonymous', source: request.ip };
}
