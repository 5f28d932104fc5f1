import type { AuditLog } from '../../audit/audit-log.js';
import type { Api } from '../types.js';
import { array, integer, nullable, object, string } from '../json-schema.js';
import { AuditRecord, AuditVerification, authenticatedErrors } from '../schemas.js';
import { actorOf } from './operators.js';

const tags = ['audit'];

/** Reading and verifying the audit trail: auditors and admins only. */
export function auditRoutes(app: Api, deps: { readonly audit: AuditLog }): void {
  app.get(
    '/api/v1/audit/events',
    {
      config: { access: { kind: 'permission', permission: 'audit:read' } },
      schema: {
        tags,
        querystring: object(
          {},
          {
            after: integer({ minimum: 0, default: 0, description: 'Return events with a sequence number above this' }),
            limit: integer({ minimum: 1, maximum: 1000, default: 100 }),
            action: string({ maxLength: 128 }),
            actor: string({ maxLength: 512 }),
          },
        ),
        response: { 200: object({ events: array(AuditRecord), next: nullable(integer()) }), ...authenticatedErrors },
      },
    },
    async (request) => {
      const { after, limit = 100, action, actor } = request.query;
      const events = await deps.audit.list({ limit, ...(after !== undefined && { afterSeq: after }), ...(action !== undefined && { action }), ...(actor !== undefined && { actor }) });
      return { events, next: events.length === limit ? (events.at(-1)?.seq ?? null) : null };
    },
  );

  app.get(
    '/api/v1/audit/verification',
    {
      config: { access: { kind: 'permission', permission: 'audit:read' } },
      schema: { tags, response: { 200: AuditVerification, ...authenticatedErrors } },
    },
    async (request) => deps.audit.verifyAs(actorOf(request)),
  );
}
