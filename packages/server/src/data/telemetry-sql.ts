import type { StoreDialect } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import type { TelemetryRecord, UnclassifiedSighting } from './telemetry-writer.js';

/** Unclassified publishes of one kind since the last write (telemetry-writer.ts aggregates them). */
export interface SightingCount {
  readonly sighting: UnclassifiedSighting;
  readonly count: number;
  readonly first: string;
}

/** One statement with its parameters, in the placeholder style of its dialect. */
export interface SqlStatement {
  readonly text: string;
  readonly parameters: readonly unknown[];
}

type TelemetryRow = Omit<Tables['data_telemetry'], 'id'>;
type VaultRow = Tables['data_token_vault'];

/** Rows per INSERT statement: well inside SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const ROWS_PER_INSERT = 500;

const TELEMETRY_COLUMNS = ['message_id', 'thing', 'thing_type', 'topic', 'contract', 'version', 'classification', 'fields', 'classes', 'received_at', 'expires_at'] as const;
const VAULT_COLUMNS = ['token', 'thing', 'contract', 'field', 'sealed_value', 'created_at', 'expires_at'] as const;

/**
 * The statements that store a batch, in order, for one transaction: telemetry rows (one per
 * message and retention), token vault upserts (an entry's expiry only moves later), unclassified
 * sighting counts. Pure, so the SQLite writer thread and the PostgreSQL path run the same SQL.
 */
export function batchStatements(dialect: StoreDialect, records: readonly TelemetryRecord[], sightings: readonly SightingCount[]): SqlStatement[] {
  const rows: TelemetryRow[] = [];
  const vault = new Map<string, VaultRow>();
  for (const r of records) {
    for (const g of r.groups) {
      rows.push({
        message_id: r.messageId,
        thing: r.thing,
        thing_type: r.thingType,
        topic: r.topic,
        contract: r.contract,
        version: r.version,
        classification: g.classification,
        fields: g.fieldsJson,
        classes: g.classesJson,
        received_at: r.receivedAt,
        expires_at: new Date(Date.parse(r.receivedAt) + g.retentionSeconds * 1000).toISOString(),
      });
    }
    for (const v of r.vault) {
      const seen = vault.get(v.token);
      // One row per token per statement (PostgreSQL refuses to update a row twice in one upsert).
      if (seen === undefined || seen.expires_at < v.expiresAt) {
        vault.set(v.token, { token: v.token, thing: r.thing, contract: r.contract, field: v.field, sealed_value: v.sealed, created_at: r.receivedAt, expires_at: v.expiresAt });
      }
    }
  }
  const statements: SqlStatement[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) statements.push(multiRowInsert(dialect, 'data_telemetry', TELEMETRY_COLUMNS, rows.slice(i, i + ROWS_PER_INSERT), ''));
  const entries = [...vault.values()];
  const vaultConflict = ' on conflict (token) do update set expires_at = excluded.expires_at where data_token_vault.expires_at < excluded.expires_at';
  for (let i = 0; i < entries.length; i += ROWS_PER_INSERT) statements.push(multiRowInsert(dialect, 'data_token_vault', VAULT_COLUMNS, entries.slice(i, i + ROWS_PER_INSERT), vaultConflict));
  for (const { sighting, count, first } of sightings) {
    statements.push({
      text: `insert into data_unclassified (thing_type, topic, outcome, count, first_seen_at, last_seen_at) values (${placeholders(dialect, 0, 6)}) on conflict (thing_type, topic, outcome) do update set count = data_unclassified.count + excluded.count, last_seen_at = excluded.last_seen_at`,
      parameters: [sighting.thingType, sighting.topic, sighting.outcome, count, first, sighting.at],
    });
  }
  return statements;
}

const insertTexts = new Map<string, string>();

/**
 * A multi-row INSERT, its text built once per table, dialect and row count: the hot path of
 * storage, where building a query per batch cost more than SQLite's own work.
 */
function multiRowInsert<R extends object>(dialect: StoreDialect, table: string, columns: readonly (keyof R & string)[], rows: readonly R[], suffix: string): SqlStatement {
  const key = `${table}:${dialect}:${rows.length}`;
  let text = insertTexts.get(key);
  if (text === undefined) {
    const values = rows.map((_, i) => `(${placeholders(dialect, i * columns.length, columns.length)})`);
    text = `insert into ${table} (${columns.join(', ')}) values ${values.join(', ')}${suffix}`;
    insertTexts.set(key, text);
  }
  const parameters: unknown[] = [];
  for (const row of rows) for (const column of columns) parameters.push(row[column]);
  return { text, parameters };
}

function placeholders(dialect: StoreDialect, offset: number, count: number): string {
  return Array.from({ length: count }, (_, i) => (dialect === 'sqlite' ? '?' : `$${offset + i + 1}`)).join(', ');
}
