import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import { hashSecret, isWellFormedSecret, newSecret, newSecretId } from '../../secrets.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';

export interface EnrollmentTokenInfo {
  readonly id: string;
  readonly template: string;
  readonly usesLeft: number;
  readonly expiresAt: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly revokedAt: string | null;
}

export interface IssuedEnrollmentToken extends EnrollmentTokenInfo {
  /** The secret: shown once. */
  readonly token: string;
}

export const ENROLLMENT_TOKEN_LIMITS = { maxUses: 100_000, maxTtlHours: 24 * 90 } as const;

export type EnrollmentRefusal = 'unknown' | 'expired' | 'used-up' | 'revoked' | 'other-template';

/**
 * One-time (or N-time) enrollment tokens for a provisioning template: short-lived, stored as a
 * hash, and consumed in the same transaction that issues the device's certificate.
 */
export class EnrollmentTokens {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  async issue(template: string, grant: { readonly uses: number; readonly ttlHours: number }, actor: Actor): Promise<IssuedEnrollmentToken> {
    if (!Number.isInteger(grant.uses) || grant.uses < 1 || grant.uses > ENROLLMENT_TOKEN_LIMITS.maxUses) {
      throw new FleetwardError('FW_ERR_VALIDATION', `uses must be a whole number between 1 and ${ENROLLMENT_TOKEN_LIMITS.maxUses}`, { field: 'uses' });
    }
    if (!Number.isInteger(grant.ttlHours) || grant.ttlHours < 1 || grant.ttlHours > ENROLLMENT_TOKEN_LIMITS.maxTtlHours) {
      throw new FleetwardError('FW_ERR_VALIDATION', `ttlHours must be a whole number between 1 and ${ENROLLMENT_TOKEN_LIMITS.maxTtlHours}`, { field: 'ttlHours' });
    }
    const { token, hash } = newSecret('fwe_');
    const now = this.#deps.clock.now();
    const row: Tables['enrollment_tokens'] = {
      id: newSecretId('enr_'),
      template,
      token_hash: hash,
      uses_left: grant.uses,
      expires_at: new Date(now.getTime() + grant.ttlHours * 3_600_000).toISOString(),
      created_at: now.toISOString(),
      created_by: actor.name,
      revoked_at: null,
    };
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (!(await trx.selectFrom('provisioning_templates').select('name').where('name', '=', template).executeTakeFirst())) {
        throw new FleetwardError('FW_ERR_NOT_FOUND', `template ${template} does not exist`, { template });
      }
      await trx.insertInto('enrollment_tokens').values(row).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'enrollment-token.create', outcome: 'success', target: `template:${template}`, details: { id: row.id, uses: grant.uses, expiresAt: row.expires_at } }]);
    });
    return { ...toInfo(row), token };
  }

  async list(template: string): Promise<EnrollmentTokenInfo[]> {
    return (await this.#deps.store.db.selectFrom('enrollment_tokens').selectAll().where('template', '=', template).orderBy('created_at').execute()).map(toInfo);
  }

  async revoke(id: string, actor: Actor): Promise<EnrollmentTokenInfo> {
    return this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('enrollment_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `enrollment token ${id} does not exist`, { token: id });
      const now = this.#deps.clock.now().toISOString();
      await trx.updateTable('enrollment_tokens').set({ revoked_at: now }).where('id', '=', id).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'enrollment-token.revoke', outcome: 'success', target: `template:${row.template}`, details: { id } }]);
      return toInfo({ ...row, revoked_at: now });
    });
  }

  /**
   * Spends one use of a token inside the issuing transaction: a single conditional UPDATE, so two
   * devices racing for the last use cannot both win. Refusals say why.
   */
  async consumeWithin(trx: Transaction<Tables>, token: string, template: string): Promise<string> {
    if (!isWellFormedSecret(token, 'fwe_')) throw denied('unknown');
    const now = this.#deps.clock.now().toISOString();
    const hash = hashSecret(token);
    const spent = await trx
      .updateTable('enrollment_tokens')
      .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
      .where('token_hash', '=', hash)
      .where('template', '=', template)
      .where('uses_left', '>', 0)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .returning('id')
      .executeTakeFirst();
    if (spent) return spent.id;
    const row = await trx.selectFrom('enrollment_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    if (!row) throw denied('unknown');
    if (row.template !== template) throw denied('other-template');
    if (row.revoked_at !== null) throw denied('revoked');
    if (row.expires_at <= now) throw denied('expired');
    throw denied('used-up');
  }
}

export function denied(reason: EnrollmentRefusal | 'template-disabled' | 'not-a-claim-certificate'): FleetwardError {
  return new FleetwardError('FW_ERR_ENROLLMENT_DENIED', `the enrollment credential is refused: ${reason}`, { reason });
}

function toInfo(row: Tables['enrollment_tokens']): EnrollmentTokenInfo {
  return { id: row.id, template: row.template, usesLeft: row.uses_left, expiresAt: row.expires_at, createdAt: row.created_at, createdBy: row.created_by, revokedAt: row.revoked_at };
}
