import { FINDING_KINDS, FINDING_SEVERITIES } from '../../identity/credential-audit/checks.js';
import type { CredentialAudit } from '../../identity/credential-audit/credential-audit.js';
import { ThingNameSchema } from '../identity-schemas.js';
import { array, integer, nullable, object, oneOf, string } from '../json-schema.js';
import { authenticatedErrors, Timestamp } from '../schemas.js';
import type { Api } from '../types.js';
import { actorOf } from './operators.js';

const Report = object({
  ranAt: nullable(Timestamp),
  counts: object({ high: integer(), medium: integer(), low: integer() }),
  findings: array(
    object({
      kind: oneOf(FINDING_KINDS),
      severity: oneOf(FINDING_SEVERITIES),
      thing: nullable(string()),
      serial: nullable(string()),
      caId: nullable(string()),
      message: string(),
      foundAt: Timestamp,
    }),
  ),
});
const tags = ['credential audit'];

/** The credential audit: the stored report for anyone who reads the fleet; running it now is an operations action. */
export function credentialAuditRoutes(app: Api, deps: { readonly credentialAudit: CredentialAudit }): void {
  app.get(
    '/api/v1/credential-audit',
    {
      config: { access: { kind: 'permission', permission: 'fleet:read' } },
      schema: {
        tags,
        description: 'The findings of the last credential audit, kept current for things whose lifecycle or certificates changed since; most severe first.',
        querystring: object({}, { kind: oneOf(FINDING_KINDS), severity: oneOf(FINDING_SEVERITIES), thing: ThingNameSchema, limit: integer({ minimum: 1, maximum: 10_000 }) }),
        response: { 200: Report, ...authenticatedErrors },
      },
    },
    async (request) => {
      const { kind, severity, thing, limit = 1000 } = request.query;
      return deps.credentialAudit.report({ limit, ...(kind !== undefined && { kind }), ...(severity !== undefined && { severity }), ...(thing !== undefined && { thing }) });
    },
  );
  app.post(
    '/api/v1/credential-audit/run',
    {
      config: { access: { kind: 'permission', permission: 'fleet:write' } },
      schema: { tags, description: 'Audits every credential now and returns the report (up to 10,000 findings).', response: { 200: Report, ...authenticatedErrors } },
    },
    async (request) => deps.credentialAudit.run('operator', actorOf(request)),
  );
}
