import { FleetwardError } from '@fleetward/protocol';
import type { Role } from '../access/roles.js';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { JsonValue } from '../json.js';
import type { Store } from '../store/store.js';
import { isAuditedClass, type DataGrants } from './classification.js';
import type { DataContracts } from './data-contracts.js';
import { discloses, FieldSpecIndex, noteFieldReads, requirePurpose, type DisclosedField } from './disclosure.js';
import type { FieldCrypto } from './field-crypto.js';

/** Who reads: the audit actor and the operator role whose clearance applies. */
export interface Reader {
  readonly actor: Actor;
  readonly role: Role;
}

export interface DataQuery {
  readonly thing: string;
  /** Why the data is read; required. Only fields declared for this purpose are returned. */
  readonly purpose: string | undefined;
  /** ISO 8601; only data received at or after it. */
  readonly since?: string;
  /** At most this many messages, newest first (default 100, at most 1000). */
  readonly limit?: number;
}

export interface DataRow {
  readonly messageId: string;
  readonly receivedAt: string;
  readonly topic: string;
  readonly contract: string;
  readonly version: number;
  readonly fields: { readonly [path: string]: JsonValue };
}

export interface QueryResult {
  readonly thing: string;
  readonly purpose: string;
  readonly rows: readonly DataRow[];
  /** Fields present in the data but withheld: not declared for this purpose, or above the reader's clearance. */
  readonly withheld: readonly string[];
}

export interface Detokenized {
  readonly token: string;
  readonly value: string | number | boolean;
  readonly thing: string;
  readonly contract: string;
  readonly field: string;
}

export const MAX_QUERY_MESSAGES = 1000;
/** Storage groups per message are few (one per retention the contract declares); rows fetched per message at most. */
const ROWS_PER_MESSAGE = 16;

/**
 * Purpose-bound, least-privilege reads of stored telemetry. A read declares its purpose; a field
 * is returned only if its contract declares that purpose for it and its class is within the
 * reader's clearance. Every read that discloses personal or sensitive data is audited.
 */
export class DataAccess {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock; readonly contracts: DataContracts; readonly crypto: FieldCrypto; readonly grants: DataGrants };
  readonly #specs: FieldSpecIndex;

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock; readonly contracts: DataContracts; readonly crypto: FieldCrypto; readonly grants: DataGrants }) {
    this.#deps = deps;
    this.#specs = new FieldSpecIndex(deps.contracts);
  }

  async query(request: DataQuery, reader: Reader): Promise<QueryResult> {
    const purpose = requirePurpose(request.purpose);
    const limit = Math.min(request.limit ?? 100, MAX_QUERY_MESSAGES);
    if (!Number.isInteger(limit) || limit < 1) throw new FleetwardError('FW_ERR_VALIDATION', `limit must be 1-${MAX_QUERY_MESSAGES}`, { field: 'limit' });
    if (request.since !== undefined && Number.isNaN(Date.parse(request.since))) throw new FleetwardError('FW_ERR_VALIDATION', 'since must be an ISO 8601 date-time', { field: 'since' });
    let query = this.#deps.store.db.selectFrom('data_telemetry').select(['message_id', 'topic', 'contract', 'version', 'classification', 'fields', 'received_at']).where('thing', '=', request.thing);
    if (request.since !== undefined) query = query.where('received_at', '>=', new Date(request.since).toISOString());
    const cap = limit * ROWS_PER_MESSAGE;
    const rows = await query.orderBy('received_at', 'desc').orderBy('id', 'desc').limit(cap).execute();

    const messages = new Map<string, { row: (typeof rows)[number]; fields: Record<string, JsonValue> }>();
    const withheld = new Set<string>();
    const disclosed = new Map<string, DisclosedField>();
    for (const row of rows) {
      let message = messages.get(row.message_id);
      if (message === undefined) {
        if (messages.size === limit) break;
        message = { row, fields: {} };
        messages.set(row.message_id, message);
      }
      const specs = await this.#specs.of(row.contract, row.version);
      for (const [path, value] of Object.entries(JSON.parse(row.fields) as Record<string, JsonValue>)) {
        const spec = specs.get(path);
        if (!discloses(spec, purpose, reader.role, this.#deps.grants)) {
          withheld.add(path);
          continue;
        }
        message.fields[path] = value;
        disclosed.set(`${row.contract}\0${path}`, { ...spec, contract: row.contract });
      }
    }
    // A message cut by the row cap might be missing groups: leave it out rather than show part of it.
    if (rows.length === cap && messages.size > 1) messages.delete([...messages.keys()].at(-1) as string);

    const now = this.#deps.clock.now().toISOString();
    const audited = [...disclosed.values()].filter((s) => isAuditedClass(s.classification));
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await noteFieldReads(trx, disclosed.values(), purpose, now);
      if (audited.length > 0) {
        await this.#deps.audit.recordWithin(trx, [
          {
            ...actorFields(reader.actor),
            action: 'data.read',
            outcome: 'success',
            target: `thing:${request.thing}`,
            details: { purpose, role: reader.role, messages: messages.size, fields: audited.map((s) => `${s.contract}/${s.path}`), classes: [...new Set(audited.map((s) => s.classification))] },
          },
        ]);
      }
    });
    const result = [...messages.values()].map(({ row, fields }) => ({ messageId: row.message_id, receivedAt: row.received_at, topic: row.topic, contract: row.contract, version: row.version, fields }));
    return { thing: request.thing, purpose, rows: result, withheld: [...withheld].sort() };
  }

  /**
   * The value behind a token, for a purpose its field declares. Needs the detokenize grant (no
   * role but admin by default); every attempt is audited, refusals included.
   */
  async detokenize(token: string, purposeText: string | undefined, reader: Reader): Promise<Detokenized> {
    const purpose = requirePurpose(purposeText);
    if (!this.#deps.grants.detokenize.includes(reader.role)) {
      await this.#deps.audit.record({ ...actorFields(reader.actor), action: 'access.denied', outcome: 'denied', target: `token:${token.slice(0, 64)}`, details: { needed: 'data:detokenize', role: reader.role, purpose } });
      throw new FleetwardError('FW_ERR_FORBIDDEN', `role ${reader.role} may not detokenize: it needs data:detokenize`, { needed: 'data:detokenize' });
    }
    const row = await this.#deps.store.db.selectFrom('data_token_vault').selectAll().where('token', '=', token).executeTakeFirst();
    if (row === undefined) {
      await this.#deps.audit.record({ ...actorFields(reader.actor), action: 'data.detokenize', outcome: 'failure', target: `token:${token.slice(0, 64)}`, details: { purpose, reason: 'FW_ERR_NOT_FOUND' } });
      throw new FleetwardError('FW_ERR_NOT_FOUND', 'no such token in the vault (never issued, expired or erased)', {});
    }
    const contracts = await this.#deps.contracts.allVersions();
    const declared = contracts.some((c) => c.name === row.contract && c.fields.some((f) => f.path === row.field && f.purposes.includes(purpose)));
    if (!declared) {
      await this.#deps.audit.record({ ...actorFields(reader.actor), action: 'data.detokenize', outcome: 'denied', target: `token:${token}`, details: { purpose, thing: row.thing, field: `${row.contract}/${row.field}`, reason: 'purpose not declared' } });
      throw new FleetwardError('FW_ERR_FORBIDDEN', `field ${row.contract}/${row.field} is not declared for purpose ${purpose}`, { needed: `purpose of ${row.contract}/${row.field}` });
    }
    const value = this.#deps.crypto.openToken(token, row.sealed_value);
    await this.#deps.audit.record({ ...actorFields(reader.actor), action: 'data.detokenize', outcome: 'success', target: `token:${token}`, details: { purpose, thing: row.thing, field: `${row.contract}/${row.field}` } });
    return { token, value, thing: row.thing, contract: row.contract, field: row.field };
  }
}
