import { permissionsOf } from '../../access/roles.js';
import type { Registry } from 'prom-client';
import type { Api } from '../types.js';
import { array, object, record, string, unknown } from '../json-schema.js';
import { authenticatedErrors, RoleSchema, ScopeSchema } from '../schemas.js';

/** The caller's own identity, the redacted configuration, Prometheus metrics and the OpenAPI document. */
export function systemRoutes(app: Api, deps: { readonly redactedConfig: Readonly<Record<string, unknown>>; readonly registry: Registry }): void {
  app.get(
    '/api/v1/whoami',
    {
      config: { access: { kind: 'authenticated' } },
      schema: {
        tags: ['system'],
        response: { 200: object({ operator: string(), role: RoleSchema, scopes: array(ScopeSchema), permissions: array(string()), tokenId: string() }), ...authenticatedErrors },
      },
    },
    (request) => {
      const principal = request.principal;
      if (principal === null) throw new Error('access control let an anonymous request through');
      return { operator: principal.operator, role: principal.role, scopes: principal.scopes, permissions: permissionsOf(principal.role), tokenId: principal.tokenId };
    },
  );

  app.get(
    '/api/v1/config',
    {
      config: { access: { kind: 'permission', permission: 'config:read' } },
      schema: { tags: ['system'], response: { 200: object({ config: record(unknown()) }), ...authenticatedErrors } },
    },
    () => ({ config: deps.redactedConfig }),
  );

  app.get(
    '/metrics',
    { config: { access: { kind: 'scope', scope: 'metrics' } }, schema: { tags: ['system'], hide: false } },
    async (_request, reply) => reply.type(deps.registry.contentType).send(await deps.registry.metrics()),
  );

  app.get(
    '/api/openapi.json',
    { config: { access: { kind: 'public' } }, schema: { hide: true } },
    () => app.swagger(),
  );
}
