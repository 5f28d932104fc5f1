import { ROLES, TOKEN_SCOPES } from '../access/roles.js';
import { array, boolean, integer, nullable, object, oneOf, string } from './json-schema.js';

export const Problem = object(
  { type: string(), title: string(), status: integer(), code: string({ description: 'Stable error code; see docs/errors.md' }), detail: string() },
  { instance: string() },
  { open: true, description: 'RFC 9457 problem details' },
);

/** The error answers every authenticated route can give. */
export const authenticatedErrors = { 400: Problem, 401: Problem, 403: Problem, 429: Problem, 503: Problem } as const;

export const RoleSchema = oneOf(ROLES);
export const ScopeSchema = oneOf(TOKEN_SCOPES);
export const OperatorName = string({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'Lower-case letters, digits, ".", "_", "-"' });
export const Timestamp = string({ format: 'date-time' });

export const TokenSummary = object({
  id: string(),
  scopes: array(ScopeSchema),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  revokedAt: nullable(Timestamp),
  lastUsedAt: nullable(Timestamp),
});

export const IssuedToken = object({
  id: string(),
  token: string({ description: 'The secret bearer token. Shown once; store it now.' }),
  scopes: array(ScopeSchema),
  expiresAt: Timestamp,
});

export const Operator = object({
  name: string(),
  role: RoleSchema,
  createdAt: Timestamp,
  createdBy: string(),
  revokedAt: nullable(Timestamp),
  tokens: array(TokenSummary),
});

export const TokenRequest = {
  scopes: array(ScopeSchema, { minItems: 1, maxItems: TOKEN_SCOPES.length, uniqueItems: true }),
  ttlDays: integer({ minimum: 1, maximum: 365, description: 'Token lifetime in days' }),
};

export const AuditRecord = object({
  seq: integer(),
  ts: Timestamp,
  actor: string(),
  action: string(),
  target: nullable(string()),
  outcome: string(),
  source: nullable(string()),
  details: string({ description: 'Canonical JSON of the event details' }),
  prevHash: string(),
  hash: string(),
});

export const AuditVerification = object({
  ok: boolean(),
  checked: integer(),
  head: nullable(object({ seq: integer(), hash: string() })),
  firstBreak: nullable(object({ kind: string(), seq: integer(), message: string() })),
});
