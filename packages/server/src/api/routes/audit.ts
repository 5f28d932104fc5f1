import type { AuditCheckpoints, AuditTrailVerification } from '../../audit/audit-checkpoints.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Api } from '../types.js';
import { array, boolean, integer, nullable, object, string } from '../json-schema.js';
import { AuditRecord, authenticatedErrors } from '../schemas.js';
import { actorOf } from './operators.js';

const tags = ['audit'];

const AuditTrailVerificationSchema = object({
  ok: boolean(),
  checked: integer(),
  head: nullable(object({ seq: integer(), hash: string() })),
  firstBreak: nullable(object({ kind: string(), seq: integer(), message: string() }, { checkpoint: integer() })),
  checkpoints: object({
    checked: integer(),
    latest: nullable(object({ number: integer(), seq: integer(), ts: string(), keyId: string() })),
    uncovered: integer({ description: 'Events after the newest checkpoint (protected by the chain only)' }),
    keys: array(object({ keyId: string(), publicKey: string({ description: 'SPKI PEM' }) })),
  }),
  warnings: array(string()),
});

const AuditSigningKeySchema = object({ keyId: string(), algorithm: string(), publicKey: string({ description: 'SPKI PEM' }), createdAt: string() });

/** Reading and verifying the audit trail: auditors and admins only. */
export function auditRoutes(app: Api, deps: { readonly audit: AuditLog; readonly auditCheckpoints?: AuditCheckpoints }): void {
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
      schema: { tags, description: 'Verifies the hash chain and every signed checkpoint; names the first bad event or checkpoint.', response: { 200: AuditTrailVerificationSchema, ...authenticatedErrors } },
    },
    async (request): Promise<AuditTrailVerification> => {
      if (deps.auditCheckpoints) return deps.auditCheckpoints.verifyAs(deps.audit, actorOf(request));
      const result = await deps.audit.verifyAs(actorOf(request));
      return { ...result, checkpoints: { checked: 0, latest: null, uncovered: result.head?.seq ?? 0, keys: [] }, warnings: ['this node does not check signed checkpoints'] };
    },
  );

  app.get(
    '/api/v1/audit/keys',
    {
      config: { access: { kind: 'permission', permission: 'audit:read' } },
      schema: { tags, description: 'The Ed25519 public keys that sign audit checkpoints (SPKI PEM).', response: { 200: object({ keys: array(AuditSigningKeySchema) }), ...authenticatedErrors } },
    },
    async () => ({ keys: deps.auditCheckpoints ? await deps.auditCheckpoints.keys() : [] }),
  );
}
