import { randomBytes, X509Certificate } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import { isRole, ROLES, type Role } from '../access/roles.js';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { lockForTransaction } from '../store/locks.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import { checkWebhookUrl, redactWebhookUrl, type WebhookPost } from '../webhooks/https-webhook.js';
import { classRank, type DataGrants } from './classification.js';
import { CONTRACT_NAME } from './contract.js';
import type { Reader } from './data-access.js';
import type { KeySealer } from './data-keys.js';
import { cursorOf, DataWebhookDelivery, DEFAULT_DELIVERY_OPTIONS, secretLabel, type DeliveryOptions, type DeliveryRun } from './data-webhook-delivery.js';
import { FEED_START, feedHead, positionText, type FeedPosition } from './data-webhook-feed.js';
import { requirePurpose, type FieldSpecIndex } from './disclosure.js';

export const DATA_WEBHOOK_LIMITS = { maxConsumers: 20, maxCaPemBytes: 65_536, maxTopicBytes: 256, maxTopicLevels: 16 } as const;
export const DATA_WEBHOOK_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const DATA_WEBHOOK_STATES = ['active', 'paused'] as const;
export type DataWebhookState = (typeof DATA_WEBHOOK_STATES)[number];
/** Where a new consumer's cursor starts: at the newest stored data, or before everything still stored. */
export const DATA_WEBHOOK_STARTS = ['now', 'earliest'] as const;
export type DataWebhookStart = (typeof DATA_WEBHOOK_STARTS)[number];

/** What an operator asks for (API body, CLI flags): validated by `create`. */
export interface DataWebhookRequest {
  readonly name: string;
  readonly url: string;
  /** Why the consumer reads (required): only fields declared for it are sent. */
  readonly purpose?: string;
  /** The operator role whose clearance bounds the classes sent (required). */
  readonly role?: string;
  /** Only this contract's data. */
  readonly contract?: string;
  /** Only data published on topics this MQTT filter matches. */
  readonly topic?: string;
  /** Trust anchors for the receiver's TLS certificate (PEM), instead of the system's. */
  readonly caPem?: string;
  /** `now` (default) or `earliest`. */
  readonly start?: string;
}

/** A consumer as listed and shown; never its secret. */
export interface DataWebhook {
  readonly name: string;
  readonly url: string;
  readonly pinnedCa: boolean;
  readonly contract: string | null;
  readonly topic: string | null;
  readonly purpose: string;
  readonly role: Role;
  readonly state: DataWebhookState;
  /** The store position up to which the receiver acknowledged everything (opaque). */
  readonly cursor: string;
  /** The number of the newest batch made (1, 2, …): batches go out in this order. */
  readonly sequence: number;
  /** The batch in flight, resent with the same delivery id until acknowledged. */
  readonly pending: { readonly delivery: string; readonly sequence: number; readonly attempts: number; readonly nextAttemptAt: string | null } | null;
  readonly lastAttempt: { readonly at: string; readonly status: number | null; readonly error: string | null } | null;
  readonly lastDelivery: { readonly delivery: string; readonly at: string; readonly records: number } | null;
  readonly delivered: { readonly batches: number; readonly records: number };
  readonly failedAttempts: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly secretRotatedAt: string | null;
}

/** A consumer with its HMAC secret: answered once, on creation and on rotation. */
export interface DataWebhookSecret {
  readonly webhook: DataWebhook;
  readonly secret: string;
}

export interface DataWebhooksDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly sealer: KeySealer;
  readonly specs: FieldSpecIndex;
  readonly grants: DataGrants;
  readonly post?: WebhookPost;
}

type Row = Tables['data_webhooks'];

/**
 * Rule 9: consumers of the minimized telemetry stream over HMAC-signed HTTPS webhooks (rule 5's
 * signature format). A consumer reads like the query API: for a declared purpose, within a role's
 * clearance; disclosures of personal or sensitive fields are audited per batch.
 */
export class DataWebhooks {
  readonly #deps: DataWebhooksDependencies;
  readonly #delivery: DataWebhookDelivery;

  constructor(deps: DataWebhooksDependencies, options: Partial<DeliveryOptions> = {}) {
    this.#deps = deps;
    this.#delivery = new DataWebhookDelivery(deps, { ...DEFAULT_DELIVERY_OPTIONS, ...options });
  }

  /** Registers a consumer; its secret is generated here, sealed at rest, and answered this once. */
  async create(input: DataWebhookRequest, creator: Reader): Promise<DataWebhookSecret> {
    const checked = checkRequest(input);
    await this.#checkClearance(checked.columns.name, checked.columns.role, creator);
    const { store, clock, sealer, audit } = this.#deps;
    const secret = randomBytes(32).toString('base64url');
    const start = checked.start === 'earliest' ? FEED_START : await feedHead(store);
    const sealed = sealer.seal(Buffer.from(secret), secretLabel(checked.columns.name));
    const row = newRow(checked.columns, sealed, start, clock.now().toISOString(), creator.actor.name);
    await store.db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, store.dialect, 'fleetward.data-webhooks');
      if (await trx.selectFrom('data_webhooks').select('name').where('name', '=', row.name).executeTakeFirst()) throw new FleetwardError('FW_ERR_CONFLICT', `data webhook ${row.name} already exists`, { webhook: row.name });
      const count = await trx.selectFrom('data_webhooks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      if (Number(count.n) >= DATA_WEBHOOK_LIMITS.maxConsumers) throw new FleetwardError('FW_ERR_CONFLICT', `at most ${DATA_WEBHOOK_LIMITS.maxConsumers} data webhooks`, { limit: DATA_WEBHOOK_LIMITS.maxConsumers });
      await trx.insertInto('data_webhooks').values(row).execute();
      const details = { url: redactWebhookUrl(row.url), contract: row.contract, topic: row.topic, purpose: row.purpose, role: row.role, pinnedCa: row.ca_pem !== null, start: checked.start };
      await audit.recordWithin(trx, [{ ...actorFields(creator.actor), action: 'data.webhook.create', outcome: 'success', target: `data-webhook:${row.name}`, details }]);
    });
    return { webhook: webhookOf(row), secret };
  }

  async list(): Promise<DataWebhook[]> {
    return (await this.#deps.store.db.selectFrom('data_webhooks').selectAll().orderBy('name').execute()).map(webhookOf);
  }

  async get(name: string): Promise<DataWebhook> {
    return webhookOf(await this.#row(this.#deps.store.db, name));
  }

  /** Stops (paused) or restarts (active) deliveries; the cursor and any batch in flight are kept. Resuming retries at once. */
  async setState(name: string, state: DataWebhookState, actor: Actor): Promise<DataWebhook> {
    return this.#change(name, actor, state === 'paused' ? 'data.webhook.pause' : 'data.webhook.resume', () => ({ state, ...(state === 'active' && { next_attempt_at: null }) }));
  }

  /** A new secret, answered once; deliveries from now on (retries included) are signed with it. */
  async rotateSecret(name: string, actor: Actor): Promise<DataWebhookSecret> {
    const secret = randomBytes(32).toString('base64url');
    const now = this.#deps.clock.now().toISOString();
    const webhook = await this.#change(name, actor, 'data.webhook.rotate-secret', () => ({ secret_sealed: this.#deps.sealer.seal(Buffer.from(secret), secretLabel(name)), secret_rotated_at: now }));
    return { webhook, secret };
  }

  /** Removes a consumer and its cursor; a batch in flight is never acknowledged. */
  async delete(name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await this.#row(trx, name);
      await trx.deleteFrom('data_webhooks').where('name', '=', name).execute();
      const details = { cursor: positionText(cursorOf(row)), deliveredBatches: Number(row.delivered_batches), pending: row.batch_id };
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'data.webhook.delete', outcome: 'success', target: `data-webhook:${name}`, details }]);
    });
  }

  /** Delivers what is due to every active consumer (the node's job; tests pass their time). */
  deliver(at?: Date): Promise<DeliveryRun> {
    return this.#delivery.run(at);
  }

  async #change(name: string, actor: Actor, action: 'data.webhook.pause' | 'data.webhook.resume' | 'data.webhook.rotate-secret', change: () => Partial<Row>): Promise<DataWebhook> {
    return this.#deps.store.db.transaction().execute(async (trx) => {
      await this.#row(trx, name);
      await trx.updateTable('data_webhooks').set(change()).where('name', '=', name).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action, outcome: 'success', target: `data-webhook:${name}` }]);
      return webhookOf(await this.#row(trx, name));
    });
  }

  /** A consumer reads with at most its creator's clearance: an operator cannot hand a webhook an admin's reach. */
  async #checkClearance(name: string, role: Role, creator: Reader): Promise<void> {
    const { clearance } = this.#deps.grants;
    if (classRank(clearance[role]) <= classRank(clearance[creator.role])) return;
    const details = { needed: `clearance ${clearance[role]}`, role: creator.role, requested: role };
    await this.#deps.audit.record({ ...actorFields(creator.actor), action: 'access.denied', outcome: 'denied', target: `data-webhook:${name}`, details });
    throw new FleetwardError('FW_ERR_FORBIDDEN', `role ${creator.role} may not create a consumer that reads as ${role} (clearance ${clearance[role]})`, { needed: `clearance ${clearance[role]}` });
  }

  async #row(db: Kysely<Tables>, name: string): Promise<Row> {
    const row = await db.selectFrom('data_webhooks').selectAll().where('name', '=', name).executeTakeFirst();
    if (row === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `data webhook ${name} does not exist`, { webhook: name });
    return row;
  }
}

/** Re-seals every consumer's secret with the active key (key-encryption key rotation). */
export async function resealDataWebhookSecrets(db: Kysely<Tables>, sealer: { reseal(sealed: string, label: string): string }): Promise<number> {
  const rows = await db.selectFrom('data_webhooks').select(['name', 'secret_sealed']).execute();
  for (const row of rows) await db.updateTable('data_webhooks').set({ secret_sealed: sealer.reseal(row.secret_sealed, secretLabel(row.name)) }).where('name', '=', row.name).execute();
  return rows.length;
}

type CheckedColumns = Pick<Row, 'name' | 'url' | 'ca_pem' | 'contract' | 'topic' | 'purpose'> & { readonly role: Role };

/** A new consumer: active, its cursor at `start`, nothing in flight, nothing delivered yet. */
function newRow(columns: CheckedColumns, secretSealed: string, start: FeedPosition, now: string, createdBy: string): Row {
  return {
    ...columns,
    secret_sealed: secretSealed,
    state: 'active',
    cursor_txid: start.txid,
    cursor_id: start.id,
    sequence: 0,
    batch_id: null,
    batch_end_txid: null,
    batch_end_id: null,
    attempts: 0,
    next_attempt_at: null,
    lease_owner: null,
    lease_until: null,
    last_status: null,
    last_error: null,
    last_attempt_at: null,
    last_delivery_id: null,
    last_delivery_at: null,
    last_delivery_records: null,
    delivered_batches: 0,
    delivered_records: 0,
    failed_attempts: 0,
    created_at: now,
    created_by: createdBy,
    secret_rotated_at: null,
  };
}

/** Validates a request at the edge of the domain: each refusal names its field. */
function checkRequest(input: DataWebhookRequest): { readonly start: DataWebhookStart; readonly columns: CheckedColumns } {
  const invalid = (field: string, message: string) => new FleetwardError('FW_ERR_VALIDATION', message, { field });
  if (!DATA_WEBHOOK_NAME.test(input.name)) throw invalid('name', 'a data webhook name is 1 to 64 lower-case letters, digits, dots, dashes or underscores');
  const url = checkWebhookUrl(input.url);
  const purpose = requirePurpose(input.purpose);
  if (!isRole(input.role)) throw invalid('role', `a data webhook reads with a role's clearance: one of ${ROLES.join(', ')}`);
  const { role } = input;
  if (input.contract !== undefined && !CONTRACT_NAME.test(input.contract)) throw invalid('contract', 'not a contract name');
  if (input.topic !== undefined && !isTopicFilter(input.topic)) throw invalid('topic', 'not an MQTT topic filter for application data');
  const start = DATA_WEBHOOK_STARTS.find((s) => s === (input.start ?? 'now'));
  if (start === undefined) throw invalid('start', `start is ${DATA_WEBHOOK_STARTS.join(' or ')}`);
  if (input.caPem !== undefined) checkCaPem(input.caPem);
  return { start, columns: { name: input.name, url, ca_pem: input.caPem ?? null, contract: input.contract ?? null, topic: input.topic ?? null, purpose, role } };
}

/** An MQTT topic filter outside the reserved `$` topics: `#` only as the whole last level (MQTT-4.7.1-1), `+` only as a whole level (MQTT-4.7.1-2). */
function isTopicFilter(topic: string): boolean {
  const levels = topic.split('/');
  if (topic === '' || topic.startsWith('$') || topic.includes('\0') || Buffer.byteLength(topic) > DATA_WEBHOOK_LIMITS.maxTopicBytes || levels.length > DATA_WEBHOOK_LIMITS.maxTopicLevels) return false;
  return levels.every((level, i) => (level === '#' ? i === levels.length - 1 : level === '+' || !/[+#]/.test(level)));
}

/** A pinned CA is checked now, so a pasted key or a typo fails here rather than on every delivery. */
function checkCaPem(pem: string): void {
  const invalid = new FleetwardError('FW_ERR_VALIDATION', 'caPem must be one or more PEM certificates', { field: 'caPem' });
  if (Buffer.byteLength(pem) > DATA_WEBHOOK_LIMITS.maxCaPemBytes) throw invalid;
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0 || /-----BEGIN (?!CERTIFICATE)/.test(pem)) throw invalid;
  try {
    for (const block of blocks) new X509Certificate(block);
  } catch {
    throw invalid;
  }
}

function webhookOf(row: Row): DataWebhook {
  return {
    name: row.name,
    url: redactWebhookUrl(row.url),
    pinnedCa: row.ca_pem !== null,
    contract: row.contract,
    topic: row.topic,
    purpose: row.purpose,
    role: row.role as Role,
    state: row.state as DataWebhookState,
    cursor: positionText(cursorOf(row)),
    sequence: Number(row.sequence),
    pending: row.batch_id === null ? null : { delivery: row.batch_id, sequence: Number(row.sequence), attempts: Number(row.attempts), nextAttemptAt: row.next_attempt_at },
    lastAttempt: row.last_attempt_at === null ? null : { at: row.last_attempt_at, status: row.last_status === null ? null : Number(row.last_status), error: row.last_error },
    lastDelivery: row.last_delivery_id === null || row.last_delivery_at === null ? null : { delivery: row.last_delivery_id, at: row.last_delivery_at, records: Number(row.last_delivery_records ?? 0) },
    delivered: { batches: Number(row.delivered_batches), records: Number(row.delivered_records) },
    failedAttempts: Number(row.failed_attempts),
    createdAt: row.created_at,
    createdBy: row.created_by,
    secretRotatedAt: row.secret_rotated_at,
  };
}
