import { X509Certificate } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { Kysely } from 'kysely';
import type { Tables } from '../../store/tables.js';
import { subjectPublicKeyInfoOf, signatureAlgorithmOf } from '../pki/certificate-parts.js';
import { checkDeviceKey } from '../pki/key-policy.js';
import { Oid } from '../pki/oids.js';
import type { ThingState } from '../registry/lifecycle.js';
import type { CaFacts, CertificateFacts } from './checks.js';

/** How far back connections count when looking for one certificate used under several client ids. */
export const USE_WINDOW_DAYS = 30;

const SOUND_SIGNATURES: ReadonlySet<string> = new Set([Oid.ecdsaWithSha256, Oid.ecdsaWithSha384, Oid.ecdsaWithSha512, Oid.sha256WithRsa, Oid.sha384WithRsa, Oid.sha512WithRsa, Oid.rsassaPss, Oid.ed25519]);

/**
 * The active, unexpired device certificates to audit: of the given things (with any certificate
 * of another thing sharing their keys), or of the whole fleet.
 */
export async function certificateFacts(db: Kysely<Tables>, now: Date, things?: readonly string[]): Promise<CertificateFacts[]> {
  let query = db
    .selectFrom('certificates')
    .innerJoin('certificate_authorities as ca', 'ca.id', 'certificates.ca_id')
    .leftJoin('things', 'things.id', 'certificates.thing_id')
    .leftJoin('thing_types', 'thing_types.name', 'things.type')
    .select(['certificates.serial', 'things.name as thing', 'things.state', 'thing_types.require_hardware_key', 'certificates.key_fingerprint', 'certificates.key_storage', 'certificates.not_after', 'certificates.created_at', 'certificates.last_used_at', 'certificates.pem', 'ca.role'])
    .where('certificates.status', '=', 'active')
    .where('certificates.kind', '=', 'device')
    .where('certificates.not_after', '>', now.toISOString());
  if (things !== undefined) {
    if (things.length === 0) return [];
    const keys = db.selectFrom('certificates').innerJoin('things as owner', 'owner.id', 'certificates.thing_id').select('certificates.key_fingerprint').where('owner.name', 'in', things);
    query = query.where((eb) => eb.or([eb('things.name', 'in', things), eb('certificates.key_fingerprint', 'in', keys)]));
  }
  const rows = await query.execute();
  const uses = await clientIdsOf(db, rows.map((r) => r.serial), now);
  return rows.map((row) => ({
    serial: row.serial,
    thing: row.thing,
    thingState: row.state as ThingState | null,
    requireHardwareKey: row.require_hardware_key === 1,
    keyFingerprint: row.key_fingerprint,
    keyStorage: row.key_storage,
    notAfter: row.not_after,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    // Fleetward checked the keys it certified and signs soundly itself; a third-party CA's certificates are looked at here.
    weakness: row.role === 'external' ? weaknessOf(row.pem) : null,
    clientIds: uses.get(row.serial) ?? [],
  }));
}

/** The CAs that matter now: Fleetward's active root and issuing CAs, retired ones still in use, registered third-party CAs. */
export async function caFacts(db: Kysely<Tables>, now: Date): Promise<CaFacts[]> {
  const inUse = db.selectFrom('certificates').select('ca_id').where('status', '=', 'active').where('not_after', '>', now.toISOString());
  const rows = await db
    .selectFrom('certificate_authorities')
    .select(['id', 'role', 'subject', 'not_after'])
    .where((eb) => eb.or([eb('status', '=', 'active'), eb('id', 'in', inUse)]))
    .execute();
  return rows.map((row) => ({ id: row.id, role: row.role as CaFacts['role'], subject: row.subject, notAfter: row.not_after }));
}

async function clientIdsOf(db: Kysely<Tables>, serials: readonly string[], now: Date): Promise<Map<string, string[]>> {
  const uses = new Map<string, string[]>();
  if (serials.length === 0) return uses;
  const since = new Date(now.getTime() - USE_WINDOW_DAYS * 86_400_000).toISOString();
  // Few certificates are ever used under several ids: ask only for those, whatever the fleet size.
  const shared = db.selectFrom('certificate_uses').select('serial').where('last_seen_at', '>', since).groupBy('serial').having((eb) => eb.fn.countAll(), '>', 1);
  const rows = await db.selectFrom('certificate_uses').select(['serial', 'client_id']).where('last_seen_at', '>', since).where('serial', 'in', shared).orderBy('client_id').execute();
  const wanted = new Set(serials);
  for (const row of rows) {
    if (!wanted.has(row.serial)) continue;
    const ids = uses.get(row.serial);
    if (ids) ids.push(row.client_id);
    else uses.set(row.serial, [row.client_id]);
  }
  return uses;
}

function weaknessOf(pem: string): string | null {
  try {
    const certificate = new X509Certificate(pem);
    checkDeviceKey(subjectPublicKeyInfoOf(certificate));
    const signature = signatureAlgorithmOf(certificate);
    return SOUND_SIGNATURES.has(signature) ? null : `signed with a weak or unknown algorithm (${signature})`;
  } catch (error) {
    return error instanceof FleetwardError ? error.message : 'the certificate cannot be parsed';
  }
}
