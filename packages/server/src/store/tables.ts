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
  thing_types: ThingTypesTable;
  things: ThingsTable;
  thing_attributes: ThingAttributesTable;
  thing_groups: ThingGroupsTable;
  group_members: GroupMembersTable;
  certificates: CertificatesTable;
  certificate_keys: CertificateKeysTable;
  crl_numbers: CrlNumbersTable;
  provisioning_templates: ProvisioningTemplatesTable;
  enrollment_tokens: EnrollmentTokensTable;
  registered_cas: RegisteredCasTable;
  ca_registration_codes: CaRegistrationCodesTable;
  pending_issuing_cas: PendingIssuingCasTable;
  certificate_uses: CertificateUsesTable;
  credential_findings: CredentialFindingsTable;
  credential_audit_runs: CredentialAuditRunsTable;
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

export interface ThingTypesTable {
  name: string;
  description: string;
  /** 1 when things of this type must hold their key in hardware (PKCS#11 token, TPM). */
  require_hardware_key: number;
  created_at: string;
  updated_at: string;
}

export interface ThingsTable {
  id: string;
  name: string;
  type: string | null;
  state: string;
  created_at: string;
  updated_at: string;
  state_changed_at: string;
}

export interface ThingAttributesTable {
  thing_id: string;
  key: string;
  value: string;
}

export interface ThingGroupsTable {
  id: string;
  name: string;
  parent_id: string | null;
  description: string;
  created_at: string;
}

export interface GroupMembersTable {
  group_id: string;
  thing_id: string;
}

export interface CertificatesTable {
  /** Lower-case hex; for a certificate of a registered third-party CA, `<ca id>:<hex>` (their serials may collide). */
  serial: string;
  ca_id: string;
  thing_id: string | null;
  kind: string;
  template: string | null;
  subject_cn: string;
  /** SHA-256 of the SubjectPublicKeyInfo. */
  key_fingerprint: string;
  key_algorithm: string;
  key_storage: string;
  /** JSON attestation evidence declared at enrollment. */
  attestation: string | null;
  issued_via: string;
  issued_by: string;
  not_before: string;
  not_after: string;
  status: string;
  revoked_at: string | null;
  revocation_reason: string | null;
  must_rotate: number;
  /** The serial this certificate renews. */
  replaces: string | null;
  last_used_at: string | null;
  pem: string;
  created_at: string;
}

/** A public key belongs to one thing, ever. */
export interface CertificateKeysTable {
  key_fingerprint: string;
  thing_id: string;
  created_at: string;
}

export interface CrlNumbersTable {
  ca_id: string;
  number: number;
}

export interface ProvisioningTemplatesTable {
  name: string;
  /** JSON of the template (see identity/provisioning/templates.ts). */
  definition: string;
  enabled: number;
  created_at: string;
  updated_at: string;
}

export interface EnrollmentTokensTable {
  id: string;
  template: string;
  /** SHA-256 of the token; the token itself is shown once. */
  token_hash: string;
  uses_left: number;
  expires_at: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
}

export interface RegisteredCasTable {
  ca_id: string;
  /** The template just-in-time registration creates things from; null: devices must be registered first. */
  template: string | null;
  registered_by: string;
  created_at: string;
}

export interface CaRegistrationCodesTable {
  code: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface PendingIssuingCasTable {
  id: string;
  /** Where its private key is (sealed or in a token), as for an active CA. */
  key_reference: string;
  key_fingerprint: string;
  key_algorithm: string;
  csr_pem: string;
  created_by: string;
  created_at: string;
}

export interface CertificateUsesTable {
  serial: string;
  client_id: string;
  first_seen_at: string;
  last_seen_at: string;
}

export interface CredentialFindingsTable {
  id: string;
  kind: string;
  severity: string;
  thing: string | null;
  serial: string | null;
  ca_id: string | null;
  message: string;
  found_at: string;
}

export interface CredentialAuditRunsTable {
  ran_at: string;
  trigger: string;
  findings: number;
}
