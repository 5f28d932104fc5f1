import { X509Certificate } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Tables } from '../store/tables.js';
import type { CaCertificate, CaRole, CaStatus } from './certificate-authority.js';
import { certificatesToPem, notAfterOf, type CaKeyAlgorithm } from './keys.js';

export interface StoredCa {
  readonly ca: CaCertificate;
  readonly sealedKey: string | null;
}

/** Records a CA; `sealedKey` is null when its key is not held here (an offline root, a third-party CA). */
export async function insertCa(db: Kysely<Tables>, ca: CaCertificate, sealedKey: string | null, now: Date): Promise<void> {
  await db
    .insertInto('certificate_authorities')
    .values({
      id: ca.id,
      role: ca.role,
      subject: ca.certificate.subject.split('\n').join(', '),
      serial: ca.certificate.serialNumber.toLowerCase(),
      key_algorithm: ca.keyAlgorithm,
      cert_pem: certificatesToPem([ca.certificate]),
      key_sealed: sealedKey,
      not_before: new Date(ca.certificate.validFrom).toISOString(),
      not_after: notAfterOf(ca.certificate).toISOString(),
      status: ca.status,
      created_at: now.toISOString(),
    })
    .execute();
}

export async function activeCas(db: Kysely<Tables>): Promise<StoredCa[]> {
  return (await allCas(db)).filter((c) => c.ca.status === 'active');
}

/** Every CA, active and retired, oldest first. */
export async function allCas(db: Kysely<Tables>): Promise<StoredCa[]> {
  const rows = await db.selectFrom('certificate_authorities').selectAll().orderBy('created_at').execute();
  return rows.map((row) => ({
    ca: {
      id: row.id,
      role: row.role as CaRole,
      status: row.status as CaStatus,
      keyAlgorithm: row.key_algorithm as CaKeyAlgorithm,
      certificate: new X509Certificate(row.cert_pem),
    },
    sealedKey: row.key_sealed,
  }));
}

/** Every CA key sealed with the KEK (not those in a token), for re-sealing after a KEK rotation. */
export async function sealedCaKeys(db: Kysely<Tables>): Promise<{ id: string; sealed: string }[]> {
  const rows = await db.selectFrom('certificate_authorities').select(['id', 'key_sealed']).where('key_sealed', 'like', 'fwseal1.%').execute();
  return rows.map((row) => ({ id: row.id, sealed: row.key_sealed as string }));
}

export async function updateSealedCaKey(db: Kysely<Tables>, id: string, sealed: string): Promise<void> {
  await db.updateTable('certificate_authorities').set({ key_sealed: sealed }).where('id', '=', id).execute();
}

/** A CA as operators see it. */
export interface CaSummary {
  readonly id: string;
  readonly role: CaRole;
  readonly status: CaStatus;
  readonly subject: string;
  readonly serial: string;
  readonly keyAlgorithm: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Whether its private key is online (sealed in the database); an offline root signs only elsewhere. */
  readonly keyOnline: boolean;
  readonly pem: string;
}

export async function caSummaries(db: Kysely<Tables>): Promise<CaSummary[]> {
  const rows = await db.selectFrom('certificate_authorities').selectAll().orderBy('created_at').execute();
  return rows.map((r) => ({
    id: r.id,
    role: r.role as CaRole,
    status: r.status as CaStatus,
    subject: r.subject,
    serial: r.serial,
    keyAlgorithm: r.key_algorithm,
    notBefore: r.not_before,
    notAfter: r.not_after,
    keyOnline: r.key_sealed !== null,
    pem: r.cert_pem,
  }));
}
