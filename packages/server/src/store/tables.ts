/**
 * Row shapes of Fleetward's tables as Kysely sees them, identical on SQLite and PostgreSQL.
 * Timestamps are ISO-8601 UTC text (`2026-11-25T12:00:00.000Z`), which sorts correctly on both.
 */
export interface Tables {
  operators: OperatorsTable;
  api_tokens: ApiTokensTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  certificate_authorities: CertificateAuthoritiesTable;
}

export interface OperatorsTable {
  id: string;
  name: string;
  role: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
}

export interface ApiTokensTable {
  id: string;
  operator_id: string;
  token_hash: string;
  /** JSON array of scopes. */
  scopes: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface AuditEventsTable {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  source: string | null;
  /** Canonical JSON of the event's details, exactly as hashed. */
  details: string;
  prev_hash: string;
  hash: string;
}

/** The single row naming the newest audit event, written in the same transaction as the events. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface CertificateAuthoritiesTable {
  id: string;
  role: string;
  subject: string;
  serial: string;
  key_algorithm: string;
  cert_pem: string;
  /** The CA private key sealed with the key-encryption key; null when the key is kept offline. */
  key_sealed: string | null;
  not_before: string;
  not_after: string;
  status: string;
  created_at: string;
}
