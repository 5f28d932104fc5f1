import { sql } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { SigningCa } from './ca-hierarchy.js';
import { REVOCATION_REASONS, type RevocationReason } from './certificate-repository.js';
import { keyIdentifier } from './pki/certificate.js';
import { subjectOf, subjectPublicKeyInfoOf } from './pki/certificate-parts.js';
import { buildCrl } from './pki/crl.js';

interface Published {
  readonly der: Buffer;
  /** How many certificates of the CA were revoked when it was built. */
  readonly revoked: number;
  /** When it must be rebuilt even without a revocation: a quarter into its validity. */
  readonly refreshAt: number;
}

/**
 * Publishes one CRL per issuing CA: built on demand, kept until a revocation makes it stale or a
 * quarter of its validity has passed, so a published CRL is never close to expiring (an expired
 * CRL makes relying parties refuse every certificate). Staleness is read from the database (the
 * number of revoked certificates, which only grows because revocation is final), so a revocation
 * by another node or by the CLI on the data folder is published at once too. Concurrent requests
 * share one build.
 */
export class CrlPublisher {
  readonly #deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>>; readonly validityHours: number };
  readonly #published = new Map<string, Published>();
  readonly #building = new Map<string, Promise<Buffer>>();

  constructor(deps: { readonly store: Store; readonly clock: Clock; readonly cas: () => Promise<ReadonlyMap<string, SigningCa>>; readonly validityHours: number }) {
    this.#deps = deps;
  }

  /** The current CRL of an issuing CA, DER. */
  async crl(caId: string): Promise<Buffer> {
    const ca = (await this.#deps.cas()).get(caId);
    if (!ca) throw new FleetwardError('FW_ERR_NOT_FOUND', `no issuing CA ${caId}`, { ca: caId });
    const revoked = await this.#revokedCount(caId);
    const published = this.#published.get(caId);
    if (published && published.revoked === revoked && this.#deps.clock.now().getTime() < published.refreshAt) return published.der;
    const key = `${caId}:${revoked}`;
    let building = this.#building.get(key);
    if (!building) {
      const build = this.#build(ca, revoked).finally(() => this.#building.delete(key));
      building = build;
      this.#building.set(key, build);
    }
    return building;
  }

  /** Rebuilds every CRL that is due (run by the job runner), so none goes stale unrequested. */
  async refresh(): Promise<void> {
    for (const caId of (await this.#deps.cas()).keys()) await this.crl(caId);
  }

  async #revokedCount(caId: string): Promise<number> {
    const row = await this.#deps.store.db.selectFrom('certificates').select((eb) => eb.fn.countAll<number>().as('count')).where('ca_id', '=', caId).where('status', '=', 'revoked').executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  async #build(ca: SigningCa, revoked: number): Promise<Buffer> {
    const now = this.#deps.clock.now();
    const { db } = this.#deps.store;
    const number = await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('crl_numbers')
        .values({ ca_id: ca.ca.id, number: 1 })
        .onConflict((oc) => oc.column('ca_id').doUpdateSet({ number: sql<number>`crl_numbers.number + 1` }))
        .returning('number')
        .executeTakeFirstOrThrow();
      return Number(row.number);
    });
    // Entries may leave the CRL once the certificate has expired (RFC 5280 §3.3).
    const rows = await db
      .selectFrom('certificates')
      .select(['serial', 'revoked_at', 'revocation_reason'])
      .where('ca_id', '=', ca.ca.id)
      .where('status', '=', 'revoked')
      .where('not_after', '>', now.toISOString())
      .orderBy('serial')
      .execute();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const validityMs = this.#deps.validityHours * 3_600_000;
    const der = await buildCrl(
      {
        issuer: subjectOf(ca.ca.certificate),
        authorityKeyId: keyIdentifier(subjectPublicKeyInfoOf(ca.ca.certificate)),
        number,
        thisUpdate,
        nextUpdate: new Date(thisUpdate.getTime() + validityMs),
        revoked: rows.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at ?? now.toISOString()), reason: REVOCATION_REASONS[(r.revocation_reason ?? 'unspecified') as RevocationReason] })),
      },
      ca.signer,
    );
    const current = this.#published.get(ca.ca.id);
    if (current === undefined || current.revoked <= revoked) this.#published.set(ca.ca.id, { der, revoked, refreshAt: thisUpdate.getTime() + validityMs / 4 });
    return der;
  }
}
