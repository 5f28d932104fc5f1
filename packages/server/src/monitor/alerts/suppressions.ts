import { randomBytes } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import type { Detection } from '../types.js';

/** Suppressions must end: the longest is 90 days (a forgotten suppression hides attacks). */
export const SUPPRESSION_LIMITS = { maxDurationSeconds: 90 * 24 * 3600, maxNoteLength: 512 } as const;

export interface Suppression {
  readonly id: string;
  /** null: any behaviour. */
  readonly behavior: string | null;
  readonly thing: string | null;
  /** A group the thing is directly in. */
  readonly group: string | null;
  readonly expiresAt: string;
  readonly note: string | null;
  /** Detections it swallowed (counted, not alerted). */
  readonly suppressed: number;
  readonly lastSuppressedAt: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface SuppressionRequest {
  readonly behavior?: string;
  readonly thing?: string;
  readonly group?: string;
  readonly durationSeconds: number;
  readonly note?: string;
}

/** Whether a suppression in force covers a detection of a thing in these groups (pure). */
export function suppresses(s: Pick<Suppression, 'behavior' | 'thing' | 'group' | 'expiresAt'>, detection: Pick<Detection, 'behavior' | 'thing'>, groups: readonly string[], now: Date): boolean {
  if (s.expiresAt <= now.toISOString()) return false;
  if (s.behavior !== null && s.behavior !== detection.behavior) return false;
  if (s.thing !== null && s.thing !== detection.thing) return false;
  if (s.group !== null && !groups.includes(s.group)) return false;
  return true;
}

/** Suppressions with an expiry, by behaviour and/or thing and/or group. */
export class Suppressions {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  async add(request: SuppressionRequest, actor: Actor): Promise<Suppression> {
    if (request.behavior === undefined && request.thing === undefined && request.group === undefined) {
      throw new FleetwardError('FW_ERR_VALIDATION', 'a suppression names a behaviour, a thing or a group (or several)', { field: 'behavior' });
    }
    if (!Number.isInteger(request.durationSeconds) || request.durationSeconds < 1 || request.durationSeconds > SUPPRESSION_LIMITS.maxDurationSeconds) {
      throw new FleetwardError('FW_ERR_VALIDATION', `a suppression lasts 1 to ${SUPPRESSION_LIMITS.maxDurationSeconds} seconds`, { field: 'durationSeconds' });
    }
    if (request.note !== undefined && request.note.length > SUPPRESSION_LIMITS.maxNoteLength) throw new FleetwardError('FW_ERR_VALIDATION', 'the note is too long', { field: 'note' });
    const now = this.#deps.clock.now();
    const row: Tables['alert_suppressions'] = {
      id: `sup-${randomBytes(6).toString('hex')}`,
      behavior: request.behavior ?? null,
      thing: request.thing ?? null,
      group_name: request.group ?? null,
      expires_at: new Date(now.getTime() + request.durationSeconds * 1000).toISOString(),
      note: request.note ?? null,
      suppressed: 0,
      last_suppressed_at: null,
      created_at: now.toISOString(),
      created_by: actor.name,
      lifted_at: null,
    };
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('alert_suppressions').values(row).execute();
      await this.#deps.audit.recordWithin(trx, [
        { ...actorFields(actor), action: 'alert.suppress', outcome: 'success', target: `suppression:${row.id}`, details: { behavior: row.behavior, thing: row.thing, group: row.group_name, expiresAt: row.expires_at, note: row.note } },
      ]);
    });
    return suppressionOf(row);
  }

  /** Lifts a suppression now (an expired one is already gone). */
  async lift(id: string, actor: Actor): Promise<Suppression> {
    const now = this.#deps.clock.now().toISOString();
    const row = await this.#deps.store.db.transaction().execute(async (trx) => {
      const found = await trx.selectFrom('alert_suppressions').selectAll().where('id', '=', id).where('lifted_at', 'is', null).executeTakeFirst();
      if (!found) throw new FleetwardError('FW_ERR_NOT_FOUND', `suppression ${id} does not exist or was lifted`, { suppression: id });
      await trx.updateTable('alert_suppressions').set({ lifted_at: now, expires_at: found.expires_at < now ? found.expires_at : now }).where('id', '=', id).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'alert.unsuppress', outcome: 'success', target: `suppression:${id}` }]);
      return { ...found, lifted_at: now, expires_at: found.expires_at < now ? found.expires_at : now };
    });
    return suppressionOf(row);
  }

  /** Suppressions in force now (and, with `all`, expired and lifted ones too). */
  async list(options: { readonly all?: boolean } = {}): Promise<Suppression[]> {
    let select = this.#deps.store.db.selectFrom('alert_suppressions').selectAll();
    if (options.all !== true) select = select.where('expires_at', '>', this.#deps.clock.now().toISOString());
    return (await select.orderBy('created_at').limit(1000).execute()).map(suppressionOf);
  }

  /** The first suppression covering the detection, counted; null if none. */
  async consume(detection: Detection, groups: readonly string[], now: Date): Promise<Suppression | null> {
    const { db } = this.#deps.store;
    const candidates = await db.selectFrom('alert_suppressions').selectAll().where('expires_at', '>', now.toISOString()).orderBy('created_at').limit(1000).execute();
    const match = candidates.map(suppressionOf).find((s) => suppresses(s, detection, groups, now));
    if (!match) return null;
    await db
      .updateTable('alert_suppressions')
      .set((eb) => ({ suppressed: eb('suppressed', '+', 1), last_suppressed_at: now.toISOString() }))
      .where('id', '=', match.id)
      .execute();
    return { ...match, suppressed: match.suppressed + 1, lastSuppressedAt: now.toISOString() };
  }
}

function suppressionOf(row: Tables['alert_suppressions']): Suppression {
  return {
    id: row.id,
    behavior: row.behavior,
    thing: row.thing,
    group: row.group_name,
    expiresAt: row.expires_at,
    note: row.note,
    suppressed: Number(row.suppressed),
    lastSuppressedAt: row.last_suppressed_at,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
