import type { Generated } from 'kysely';

/**
 * Row shapes of Fleetward's tables as Kysely sees them, identical on SQLite and PostgreSQL.
 * Timestamps are ISO-8601 UTC text (`2026-11-25T12:00:00.000Z`), which sorts correctly on both.
 */
export interface Tables {
  monitor_windows: MonitorWindowsTable;
  monitor_custom_metrics: MonitorCustomMetricsTable;
  security_profiles: SecurityProfilesTable;
  security_profile_groups: SecurityProfileGroupsTable;
  detection_state: DetectionStateTable;
  alerts: AlertsTable;
  alert_timeline: AlertTimelineTable;
  alert_suppressions: AlertSuppressionsTable;
  response_actions: ResponseActionsTable;
  notify_webhooks: NotifyWebhooksTable;
  notify_deliveries: NotifyDeliveriesTable;
  device_bans: DeviceBansTable;
  firmware_artifacts: FirmwareArtifactsTable;
  tuf_online_keys: TufOnlineKeysTable;
  tuf_metadata: TufMetadataTable;
  deployments: DeploymentsTable;
  deployment_jobs: DeploymentJobsTable;
  device_software: DeviceSoftwareTable;
  operators: OperatorsTable;
  api_tokens: ApiTokensTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_signing_keys: AuditSigningKeysTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_export_cursors: AuditExportCursorsTable;
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
  policies: PoliciesTable;
  policy_versions: PolicyVersionsTable;
  policy_attachments: PolicyAttachmentsTable;
  policy_change_head: PolicyChangeHeadTable;
  policy_changes: PolicyChangesTable;
  data_contracts: DataContractsTable;
  data_keys: DataKeysTable;
  data_token_vault: DataTokenVaultTable;
  data_telemetry: DataTelemetryTable;
  data_field_reads: DataFieldReadsTable;
  data_unclassified: DataUnclassifiedTable;
  data_webhooks: DataWebhooksTable;
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

/** An Ed25519 key that signs audit checkpoints; the private key is sealed with the key ring (`audit:<key_id>`). */
export interface AuditSigningKeysTable {
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER). */
  key_id: string;
  algorithm: string;
  /** SPKI PEM; informative only: verification derives the public key from the sealed private key or a pinned key. */
  public_key: string;
  sealed_private_key: string;
  created_at: string;
}

/** A signed statement "event `seq` has hash `hash`" (audit-checkpoint.ts); append-only, numbered from 1 without gaps. */
export interface AuditCheckpointsTable {
  number: number;
  seq: number;
  hash: string;
  ts: string;
  key_id: string;
  /** Ed25519 signature (base64) over the checkpoint's canonical encoding. */
  signature: string;
}

/** How far an export to an external collector has got: the last sequence number it delivered. */
export interface AuditExportCursorsTable {
  name: string;
  seq: number;
  updated_at: string;
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
  /** 1: security releases deploy to the group's things automatically (rule 4). */
  auto_security_updates: Generated<number>;
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

/** One version of a data contract (data/contract.ts); versions are immutable once applied. */
export interface DataContractsTable {
  name: string;
  version: number;
  /** Canonical JSON of the contract document as applied. */
  definition: string;
  topic: string;
  thing_type: string | null;
  created_at: string;
  created_by: string;
}

/** Data keys (pseudonym HMAC key, token vault key) sealed with the key-encryption key. */
export interface DataKeysTable {
  name: string;
  sealed: string;
  created_at: string;
}

/** Token → original value (sealed with the vault key); detokenizing needs its own grant and is audited. */
export interface DataTokenVaultTable {
  token: string;
  thing: string;
  contract: string;
  field: string;
  sealed_value: string;
  created_at: string;
  expires_at: string;
}

/** Minimized telemetry: one row per message and retention (the fields deleted together). */
export interface DataTelemetryTable {
  id: Generated<number>;
  message_id: string;
  thing: string;
  thing_type: string | null;
  topic: string;
  contract: string;
  version: number;
  /** The highest class among the row's fields. */
  classification: string;
  /** JSON object: field path → minimized value. */
  fields: string;
  /** JSON object: field path → class. */
  classes: string;
  received_at: string;
  expires_at: string;
}

/** When a field was last read for a purpose (for the inventory's "never read" findings). */
export interface DataFieldReadsTable {
  contract: string;
  field: string;
  purpose: string;
  last_read_at: string;
}

/** Topics devices published to without a contract, by thing type and normalized topic. */
export interface DataUnclassifiedTable {
  /** '' when the thing has no type. */
  thing_type: string;
  topic: string;
  outcome: string;
  count: number;
  first_seen_at: string;
  last_seen_at: string;
}

/**
 * Rule 9: a consumer of the minimized telemetry stream over a signed webhook. Its HMAC secret is
 * sealed with the key ring (`data-webhook:<name>`). The cursor is the store position (see
 * data-webhook-feed.ts) of the last row the receiver acknowledged; `batch_*` is the one batch in
 * flight, if any, resent with the same delivery id until acknowledged.
 */
export interface DataWebhooksTable {
  name: string;
  url: string;
  ca_pem: string | null;
  secret_sealed: string;
  contract: string | null;
  topic: string | null;
  purpose: string;
  role: string;
  /** 'active' | 'paused'. */
  state: string;
  cursor_txid: number;
  cursor_id: number;
  /** Batches made so far: the number of the newest. */
  sequence: number;
  batch_id: string | null;
  batch_end_txid: number | null;
  batch_end_id: number | null;
  /** Attempts of the batch in flight. */
  attempts: number;
  next_attempt_at: string | null;
  /** Which delivery worker holds the consumer, until when (one sender across nodes). */
  lease_owner: string | null;
  lease_until: string | null;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  last_delivery_id: string | null;
  last_delivery_at: string | null;
  last_delivery_records: number | null;
  delivered_batches: number;
  delivered_records: number;
  failed_attempts: number;
  created_at: string;
  created_by: string;
  secret_rotated_at: string | null;
}

/** A device policy: its versions are in policy_versions, `default_version` is the one in force. */
export interface PoliciesTable {
  name: string;
  default_version: number;
  latest_version: number;
  created_at: string;
  created_by: string;
  updated_at: string;
}

export interface PolicyVersionsTable {
  policy: string;
  version: number;
  /** The canonical JSON of the document (serializePolicy). Versions never change. */
  document: string;
  created_at: string;
  created_by: string;
}

/** A policy attached to one thing, group or certificate; `target_name` is its name (a serial for a certificate). */
export interface PolicyAttachmentsTable {
  id: string;
  policy: string;
  target_kind: string;
  target_name: string;
  thing_id: string | null;
  group_id: string | null;
  certificate_serial: string | null;
  created_at: string;
  created_by: string;
}

/** The single row numbering policy-relevant changes (written by triggers, see migration 0009). */
export interface PolicyChangeHeadTable {
  id: number;
  seq: number;
}

/** A policy-relevant change, written by triggers: what live connections it may concern. */
export interface PolicyChangesTable {
  seq: number;
  kind: string;
  policy: string | null;
  thing: string | null;
  grp: string | null;
  certificate: string | null;
}

/** An operator's ban of a device by thing name, MQTT client id, or source address or block. */
export interface DeviceBansTable {
  kind: string;
  value: string;
  expires_at: string | null;
  note: string | null;
  created_at: string;
  created_by: string;
}

/** Rule 4: an uploaded firmware artifact; its bytes live content-addressed in the data folder. */
export interface FirmwareArtifactsTable {
  /** The TUF target path, `<name>-<version>`. */
  target: string;
  name: string;
  version: string;
  security_version: number;
  sha256: string;
  /** A number on SQLite, a string on PostgreSQL (bigint). */
  size: number | string;
  /** JSON array of thing type names. */
  hardware: string;
  release_notes: string | null;
  /** CycloneDX JSON, validated on upload. */
  sbom: string | null;
  security_release: number;
  created_at: string;
  created_by: string;
}

/** The TUF snapshot and timestamp keys (online roles), sealed with the key-encryption key. */
export interface TufOnlineKeysTable {
  role: string;
  keyid: string;
  /** The TUF key object (JSON). */
  public_key: string;
  sealed_private_key: string;
  created_at: string;
}

/** Every version of every TUF role's signed metadata, as served (JSON). */
export interface TufMetadataTable {
  role: string;
  version: number;
  body: string;
  expires_at: string;
  created_at: string;
}

export interface DeploymentsTable {
  id: string;
  target: string;
  state: string;
  /** JSON: the deployment's selection, phases, rate, thresholds, timeout, window. */
  spec: string;
  reason: string | null;
  automatic: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  phase_started_at: string | null;
}

/** One device's job in a deployment. */
export interface DeploymentJobsTable {
  deployment_id: string;
  thing: string;
  phase: number;
  state: string;
  step: string | null;
  reason: string | null;
  message: string | null;
  bytes: number | string | null;
  total_bytes: number | string | null;
  /** When the rollout handed the job to the device (null: not yet, its phase has not started). */
  released_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

/** The software a device last reported running (`$fw/things/{thing}/inventory`). */
export interface DeviceSoftwareTable {
  thing: string;
  firmware_version: string;
  security_version: number | null;
  image_hash: string | null;
  agent_version: string;
  /** 1: the image hash is a signed target for the device's type (or the device has no image file). */
  authorized: number;
  reported_at: string;
}

/** Rule 5: an alert — detections with one dedupe key, while it is open or acknowledged. */
export interface AlertsTable {
  id: string;
  dedupe_key: string;
  /** The dedupe key while open or acknowledged; null once resolved. */
  open_key: string | null;
  thing: string | null;
  behavior: string;
  profile: string | null;
  severity: string;
  metric: string;
  /** JSON of the last observed value. */
  value: string;
  message: string;
  state: string;
  verdict: string | null;
  first_seen: string;
  last_seen: string;
  count: number;
  created_at: string;
  updated_at: string;
}

/** Rule 5: one entry of an alert's incident timeline (detections, actions, notes, state changes). */
export interface AlertTimelineTable {
  alert_id: string;
  position: number;
  at: string;
  kind: string;
  actor: string;
  summary: string;
  /** JSON object. */
  details: string;
}

/** Rule 5: detections matching a suppression are counted, not alerted, until it expires. */
export interface AlertSuppressionsTable {
  id: string;
  behavior: string | null;
  thing: string | null;
  group_name: string | null;
  expires_at: string;
  note: string | null;
  suppressed: number;
  last_suppressed_at: string | null;
  created_at: string;
  created_by: string;
  lifted_at: string | null;
}

/** Rule 5: a response action run (or waiting for approval) against a thing. */
export interface ResponseActionsTable {
  id: string;
  alert_id: string | null;
  thing: string;
  action: string;
  /** JSON object. */
  params: string;
  mode: string;
  state: string;
  /** JSON object: what the action did, or why it failed. */
  result: string;
  error_code: string | null;
  requested_by: string;
  decided_by: string | null;
  /** A quarantine's automatic release time. */
  expires_at: string | null;
  released_at: string | null;
  created_at: string;
  finished_at: string | null;
}

/** Rule 5: an operator webhook; its HMAC secret is sealed with the key ring (`notify:<name>`). */
export interface NotifyWebhooksTable {
  name: string;
  url: string;
  secret_sealed: string;
  ca_pem: string | null;
  min_severity: string;
  created_at: string;
  created_by: string;
}

/** Rule 5: one notification to one webhook, retried with backoff until delivered or given up. */
export interface NotifyDeliveriesTable {
  id: string;
  webhook: string;
  alert_id: string;
  body: string;
  state: string;
  attempts: number;
  next_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

/** Rule 5: one device's security metrics in one window. bigint columns read as strings on PostgreSQL. */
export interface MonitorWindowsTable {
  thing: string;
  window_start: string;
  window_end: string;
  connect_attempts: number | string;
  authn_failures: number | string;
  authz_failures: number | string;
  disconnects: number | string;
  disconnected_seconds: number | string;
  messages_in: number | string;
  messages_out: number | string;
  bytes_in: number | string;
  bytes_out: number | string;
  message_size_max: number | string;
  source_address_count: number | string;
  certificate_addresses_max: number | string;
  message_size_mean: number;
  /** JSON array (at most 16). */
  source_addresses: string;
  /** 1 when the device sent a metrics report in the window (the device columns are then set). */
  reported: number;
  listening_total: number | string | null;
  established: number | string | null;
  device_bytes_in: number | string | null;
  device_bytes_out: number | string | null;
  packets_in: number | string | null;
  packets_out: number | string | null;
  processes: number | string | null;
  memory_used_bytes: number | string | null;
  disk_used_bytes: number | string | null;
  uptime_seconds: number | string | null;
  agent_restarts: number | string | null;
  device_auth_failures: number | string | null;
  cpu_percent: number | null;
  battery_percent: number | null;
  /** JSON arrays: listening sockets (`tcp/22`), destination addresses. */
  listening: string | null;
  destinations: string | null;
  /** JSON object of declared custom metrics' values. */
  custom: string;
}

/** A custom device metric declared by a thing type. */
export interface MonitorCustomMetricsTable {
  thing_type: string;
  name: string;
  kind: string;
  description: string;
  created_at: string;
  created_by: string;
}

/** A security profile: its document (JSON, as validated). */
export interface SecurityProfilesTable {
  name: string;
  document: string;
  created_at: string;
  updated_at: string;
  created_by: string;
}

export interface SecurityProfileGroupsTable {
  profile: string;
  group_name: string;
  created_at: string;
  created_by: string;
}

/** What detection remembers about a device between windows (JSON). */
export interface DetectionStateTable {
  thing: string;
  state: string;
  updated_at: string;
}
