import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { parseAddress, parseCidr } from './policy/cidr.js';
import type { BanKind, BanTarget } from './throttling/index.js';

export const BAN_KINDS: readonly BanKind[] = ['thing', 'client-id', 'address'];

/** An operator's ban, as stored: every gateway node enforces it. */
export interface DeviceBan {
  readonly kind: BanKind;
  readonly value: string;
  /** ISO time the ban ends; null: until lifted. */
  readonly expiresAt: string | null;
  readonly note: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface BanRequest {
  readonly kind: string;
  readonly value: string;
  /** Seconds from now; absent: until lifted. */
  readonly durationSeconds?: number;
  readonly note?: string;
}

const MAX_DURATION_SECONDS = 10 * 365 * 86_400;

/**
 * Operator bans of devices by thing name, MQTT client id, or source address or block (rule 2,
 * like EMQX's banned clients). Stored, so every node enforces them (a node picks a change up
 * within a second) and they survive restarts; flapping bans stay per node and short.
 */
export class DeviceBans {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  /** Bans in force (expired ones are not listed). */
  async list(): Promise<DeviceBan[]> {
    const now = this.#deps.clock.now().toISOString();
    const rows = await this.#deps.store.db.selectFrom('device_bans').selectAll().where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)])).orderBy('kind').orderBy('value').execute();
    return rows.map((r) => ({ kind: r.kind as BanKind, value: r.value, expiresAt: r.expires_at, note: r.note, createdAt: r.created_at, createdBy: r.created_by }));
  }

  /** Bans (or re-bans, replacing expiry and note) a target; audited. */
  async add(request: BanRequest, actor: Actor): Promise<DeviceBan> {
    const target = banTarget(request.kind, request.value);
    if (request.durationSeconds !== undefined && (!Number.isInteger(request.durationSeconds) || request.durationSeconds < 1 || request.durationSeconds > MAX_DURATION_SECONDS)) {
      throw new FleetwardError('FW_ERR_VALIDATION', `a ban lasts 1 to ${MAX_DURATION_SECONDS} seconds, or until lifted`, { field: 'durationSeconds' });
    }
    if (request.note !== undefined && request.note.length > 256) throw new FleetwardError('FW_ERR_VALIDATION', 'a note is at most 256 characters', { field: 'note' });
    const now = this.#deps.clock.now();
    const ban: DeviceBan = {
      ...target,
      expiresAt: request.durationSeconds === undefined ? null : new Date(now.getTime() + request.durationSeconds * 1000).toISOString(),
      note: request.note ?? null,
      createdAt: now.toISOString(),
      createdBy: actor.name,
    };
    const row = { kind: ban.kind, value: ban.value, expires_at: ban.expiresAt, note: ban.note, created_at: ban.createdAt, created_by: ban.createdBy };
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('device_bans').where('kind', '=', ban.kind).where('value', '=', ban.value).execute();
      await trx.insertInto('device_bans').values(row).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'device.ban', outcome: 'success', target: `${ban.kind}:${ban.value}`, details: { expiresAt: ban.expiresAt, ...(ban.note !== null && { note: ban.note }) } }]);
    });
    return ban;
  }

  /** Lifts a ban; audited. FW_ERR_NOT_FOUND when there is none. */
  async lift(kind: string, value: string, actor: Actor): Promise<void> {
    const target = banTarget(kind, value);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const deleted = await trx.deleteFrom('device_bans').where('kind', '=', target.kind).where('value', '=', target.value).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `no ban on ${target.kind} ${target.value}`, { kind: target.kind, value: target.value });
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'device.unban', outcome: 'success', target: `${target.kind}:${target.value}` }]);
    });
  }

  /** Changes whenever a ban is added, replaced or lifted: what gateways poll before reloading. */
  async fingerprint(): Promise<string> {
    const row = await this.#deps.store.db
      .selectFrom('device_bans')
      .select((eb) => [eb.fn.countAll<string | number>().as('n'), eb.fn.max('created_at').as('latest')])
      .executeTakeFirstOrThrow();
    return `${String(row.n)}:${row.latest ?? ''}`;
  }
}

/** A validated target: a registry name, a client id, or an IPv4/IPv6 address or CIDR block. */
export function banTarget(kind: string, value: string): BanTarget {
  if (!(BAN_KINDS as readonly string[]).includes(kind)) throw new FleetwardError('FW_ERR_VALIDATION', `a ban is on one of ${BAN_KINDS.join(', ')}`, { field: 'kind' });
  if (value.length === 0 || value.length > 128) throw new FleetwardError('FW_ERR_VALIDATION', 'a banned value is 1 to 128 characters', { field: 'value' });
  if (kind === 'address' && (value.includes('/') ? typeof parseCidr(value) === 'string' : parseAddress(value) === null)) {
    throw new FleetwardError('FW_ERR_VALIDATION', `${value} is not an IPv4 or IPv6 address or CIDR block`, { field: 'value' });
  }
  return { kind: kind as BanKind, value };
}
