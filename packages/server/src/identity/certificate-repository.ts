import type { Kysely, Transaction } from 'kysely';
import type { JsonValue } from '../json.js';
import type { Tables } from '../store/tables.js';
import type { CertificateKind } from './issuance-profile.js';

export const KEY_STORAGES = ['software', 'pkcs11', 'tpm', 'unknown'] as const;
/** Where a device declared its private key lives, at enrollment. */
export type KeyStorage = (typeof KEY_STORAGES)[number];

export const ISSUE_PATHS = ['operator', 'manufacturing', 'claim', 'est', 'renewal', 'jitr'] as const;
/** How a certificate came to be issued (key provenance). */
export type IssuePath = (typeof ISSUE_PATHS)[number];

/** RFC 5280 §5.3.1 CRLReason codes Fleetward uses for device certificates (no certificateHold: revocation is final). */
export const REVOCATION_REASONS = { unspecified: 0, keyCompromise: 1, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5, privilegeWithdrawn: 9 } as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export type CertificateStatus = 'active' | 'revoked';

export interface CertificateInfo {
  readonly serial: string;
  readonly caId: string;
  readonly thing: string | null;
  readonly kind: CertificateKind;
  readonly template: string | null;
  readonly subject: string;
  readonly keyFingerprint: string;
  readonly keyAlgorithm: string;
  readonly keyStorage: KeyStorage;
  readonly attestation: Readonly<Record<string, JsonValue>> | null;
  readonly issuedVia: IssuePath;
  readonly issuedBy: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly status: CertificateStatus;
  readonly revokedAt: string | null;
  readonly revocationReason: RevocationReason | null;
  readonly mustRotate: boolean;
  readonly replaces: string | null;
  readonly lastUsedAt: string | null;
  readonly pem: string;
}

type Db = Kysely<Tables> | Transaction<Tables>;

export function toCertificateInfo(row: Tables['certificates'] & { thing_name: string | null }): CertificateInfo {
  return {
    serial: row.serial,
    caId: row.ca_id,
    thing: row.thing_name,
    kind: row.kind as CertificateKind,
    template: row.template,
    subject: row.subject_cn,
    keyFingerprint: row.key_fingerprint,
    keyAlgorithm: row.key_algorithm,
    keyStorage: row.key_storage as KeyStorage,
    attestation: row.attestation === null ? null : (JSON.parse(row.attestation) as Record<string, JsonValue>),
    issuedVia: row.issued_via as IssuePath,
    issuedBy: row.issued_by,
    notBefore: row.not_before,
    notAfter: row.not_after,
    status: row.status as CertificateStatus,
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason as RevocationReason | null,
    mustRotate: row.must_rotate === 1,
    replaces: row.replaces,
    lastUsedAt: row.last_used_at,
    pem: row.pem,
  };
}

export function selectCertificates(db: Db) {
  return db.selectFrom('certificates').leftJoin('things', 'things.id', 'certificates.thing_id').selectAll('certificates').select('things.name as thing_name');
}

/** Revokes active certificates matching the condition; returns their serials. Revocation is final. */
export async function revokeCertificates(
  trx: Transaction<Tables>,
  where: { readonly thingId: string } | { readonly serials: readonly string[] },
  reason: RevocationReason,
  at: Date,
): Promise<string[]> {
  // `in ()` is a syntax error on PostgreSQL (SQLite accepts it): nothing asked, nothing revoked.
  if ('serials' in where && where.serials.length === 0) return [];
  let select = trx.selectFrom('certificates').select('serial').where('status', '=', 'active');
  select = 'thingId' in where ? select.where('thing_id', '=', where.thingId) : select.where('serial', 'in', [...where.serials]);
  const serials = (await select.execute()).map((r) => r.serial);
  if (serials.length === 0) return [];
  await trx.updateTable('certificates').set({ status: 'revoked', revoked_at: at.toISOString(), revocation_reason: reason }).where('serial', 'in', serials).execute();
  return serials;
}
