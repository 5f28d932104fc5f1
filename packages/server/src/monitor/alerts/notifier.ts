import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { KeyRing } from '../../identity/key-ring.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import type { Severity } from '../types.js';
import { isSeverity, severityRank } from './alert-states.js';
import type { Alert, Alerts } from './alerts.js';
import { checkWebhookUrl, httpsPost, MAX_WEBHOOK_URL_LENGTH, redactWebhookUrl, type WebhookPost } from '../../webhooks/https-webhook.js';
import { backoffMs, DELIVERY_HEADER, SIGNATURE_HEADER, signBody } from '../../webhooks/webhook-signature.js';

/** Every limit of notification delivery, named, with its unit. */
export const NOTIFY_LIMITS = { maxWebhooks: 20, maxAttempts: 6, baseBackoffMs: 1000, maxBackoffMs: 300_000, timeoutMs: 5000, batch: 100, maxUrlLength: MAX_WEBHOOK_URL_LENGTH } as const;

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface Webhook {
  readonly name: string;
  readonly url: string;
  readonly minSeverity: Severity;
  readonly pinnedCa: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface WebhookRequest {
  readonly name: string;
  readonly url: string;
  /** The HMAC secret; generated (and shown once) when absent. */
  readonly secret?: string;
  /** Trust anchors for this webhook's TLS server (PEM), instead of the system's. */
  readonly caPem?: string;
  readonly minSeverity?: Severity;
}

export interface Delivery {
  readonly id: string;
  readonly webhook: string;
  readonly alert: string;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly deliveredAt: string | null;
}

/** Publishes on the node's broker as the server (the gateway's `publishFromServer`). */
export type OperatorPublish = (topic: string, payload: Buffer) => void;

export interface NotifierDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly alerts: Alerts;
  readonly publish: OperatorPublish;
  readonly post?: WebhookPost;
}

/** The operator topic of an alert: `$fw/alerts/{severity}`. */
export function alertTopic(severity: Severity): string {
  return `$fw/alerts/${severity}`;
}

/** Notifications: HMAC-signed webhooks (retried with bounded exponential backoff) and an MQTT topic for operators. */
export class Notifier {
  readonly #deps: NotifierDependencies;
  readonly #post: WebhookPost;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: NotifierDependencies) {
    this.#deps = deps;
    this.#post = deps.post ?? httpsPost;
  }

  async addWebhook(input: WebhookRequest, actor: Actor): Promise<{ readonly webhook: Webhook; readonly secret: string }> {
    const name = input.name;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new FleetwardError('FW_ERR_VALIDATION', 'a webhook name is 1 to 64 letters, digits, dots, dashes or underscores', { field: 'name' });
    const url = checkWebhookUrl(input.url);
    const minSeverity = input.minSeverity ?? 'low';
    if (!isSeverity(minSeverity)) throw new FleetwardError('FW_ERR_VALIDATION', 'unknown severity', { field: 'minSeverity' });
    const secret = input.secret ?? randomBytes(32).toString('base64url');
    if (secret.length < 16 || secret.length > 256) throw new FleetwardError('FW_ERR_VALIDATION', 'a webhook secret is 16 to 256 characters', { field: 'secret' });
    const now = this.#deps.clock.now().toISOString();
    const row: Tables['notify_webhooks'] = { name, url, secret_sealed: this.#deps.keyRing.seal(Buffer.from(secret), `notify:${name}`), ca_pem: input.caPem ?? null, min_severity: minSeverity, created_at: now, created_by: actor.name };
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (await trx.selectFrom('notify_webhooks').select('name').where('name', '=', name).executeTakeFirst()) throw new FleetwardError('FW_ERR_CONFLICT', `webhook ${name} already exists`, { webhook: name });
      const count = await trx.selectFrom('notify_webhooks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      if (Number(count.n) >= NOTIFY_LIMITS.maxWebhooks) throw new FleetwardError('FW_ERR_CONFLICT', `at most ${NOTIFY_LIMITS.maxWebhooks} webhooks`, { limit: NOTIFY_LIMITS.maxWebhooks });
      await trx.insertInto('notify_webhooks').values(row).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'notify.webhook.add', outcome: 'success', target: `webhook:${name}`, details: { url: redactWebhookUrl(url), minSeverity, pinnedCa: row.ca_pem !== null } }]);
    });
    return { webhook: webhookOf(row), secret };
  }

  async listWebhooks(): Promise<Webhook[]> {
    return (await this.#deps.store.db.selectFrom('notify_webhooks').selectAll().orderBy('name').execute()).map(webhookOf);
  }

  async removeWebhook(name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const removed = await trx.deleteFrom('notify_webhooks').where('name', '=', name).executeTakeFirst();
      if (Number(removed.numDeletedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `webhook ${name} does not exist`, { webhook: name });
      await trx.updateTable('notify_deliveries').set({ state: 'failed', last_error: 'webhook removed', next_attempt_at: null }).where('webhook', '=', name).where('state', '=', 'pending').execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'notify.webhook.remove', outcome: 'success', target: `webhook:${name}` }]);
    });
  }

  /** Publishes an alert on `$fw/alerts/{severity}` for operator applications. */
  publishAlert(alert: Alert, event: 'opened' | 'notify'): void {
    this.#deps.publish(alertTopic(alert.severity), Buffer.from(JSON.stringify({ event, alert })));
  }

  /**
   * Queues a signed notification of the alert to every webhook whose minimum severity it reaches
   * (recorded before the first attempt, so a crash loses nothing), publishes it on the operator
   * topic, and starts the first attempts; `tick` retries what failed.
   */
  async notify(alert: Alert, actor: Actor): Promise<readonly string[]> {
    const now = this.#deps.clock.now().toISOString();
    const webhooks = (await this.#deps.store.db.selectFrom('notify_webhooks').selectAll().execute()).filter((w) => severityRank(alert.severity) >= severityRank(w.min_severity as Severity));
    const rows = webhooks.map((w) => {
      const id = `dl-${randomBytes(8).toString('hex')}`;
      const body = JSON.stringify({ type: 'fleetward.alert', delivery: id, sentAt: now, alert });
      return { id, webhook: w.name, alert_id: alert.id, body, state: 'pending', attempts: 0, next_attempt_at: now, last_status: null, last_error: null, created_at: now, delivered_at: null } satisfies Tables['notify_deliveries'];
    });
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (rows.length > 0) await trx.insertInto('notify_deliveries').values(rows).execute();
      await this.#deps.alerts.appendWithin(trx, alert.id, [{ kind: 'notification', actor: actor.name, summary: `notification queued for ${rows.length} webhook(s) and published on ${alertTopic(alert.severity)}`, details: { webhooks: rows.map((r) => r.webhook), deliveries: rows.map((r) => r.id), topic: alertTopic(alert.severity) } }]);
    });
    this.publishAlert(alert, 'notify');
    for (const row of rows) this.#track(this.#attempt(row.id, now));
    return rows.map((r) => r.id);
  }

  /** Retries deliveries that are due (the job runner calls it; tests pass their time). */
  async tick(now: Date): Promise<{ readonly attempted: number }> {
    const due = await this.#deps.store.db
      .selectFrom('notify_deliveries')
      .select(['id', 'next_attempt_at'])
      .where('state', '=', 'pending')
      .where('next_attempt_at', '<=', now.toISOString())
      .orderBy('next_attempt_at')
      .limit(NOTIFY_LIMITS.batch)
      .execute();
    await Promise.all(due.map((d) => this.#attempt(d.id, d.next_attempt_at ?? '', now)));
    return { attempted: due.length };
  }

  /** Waits for the first attempts started by `notify` (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  async deliveries(filter: { readonly alert?: string; readonly webhook?: string } = {}): Promise<Delivery[]> {
    let select = this.#deps.store.db.selectFrom('notify_deliveries').selectAll();
    if (filter.alert !== undefined) select = select.where('alert_id', '=', filter.alert);
    if (filter.webhook !== undefined) select = select.where('webhook', '=', filter.webhook);
    return (await select.orderBy('created_at').limit(500).execute()).map(deliveryOf);
  }

  #track(work: Promise<void>): void {
    // A first attempt that cannot even be recorded stays pending: its lease runs out and `tick` retries it.
    const tracked = work.catch(() => undefined).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** One attempt, claimed first (only one node or run sends a given attempt). */
  async #attempt(id: string, expectedNext: string, at?: Date): Promise<void> {
    const { db } = this.#deps.store;
    const now = at ?? this.#deps.clock.now();
    const lease = new Date(now.getTime() + NOTIFY_LIMITS.timeoutMs * 2).toISOString();
    const claimed = await db.updateTable('notify_deliveries').set({ next_attempt_at: lease }).where('id', '=', id).where('state', '=', 'pending').where('next_attempt_at', '=', expectedNext).executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return;
    const delivery = await db.selectFrom('notify_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const webhook = await db.selectFrom('notify_webhooks').selectAll().where('name', '=', delivery.webhook).executeTakeFirst();
    let status: number | null = null;
    let error: string | null = null;
    if (!webhook) error = 'webhook removed';
    else {
      try {
        const secret = this.#deps.keyRing.open(webhook.secret_sealed, `notify:${webhook.name}`);
        status = await this.#post(webhook.url, delivery.body, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(secret, delivery.body), [DELIVERY_HEADER]: delivery.id, 'user-agent': 'fleetward-notify' }, webhook.ca_pem, NOTIFY_LIMITS.timeoutMs);
        if (status < 200 || status >= 300) error = `HTTP ${status}`;
      } catch (e) {
        error = e instanceof Error ? e.message.slice(0, 300) : 'delivery failed';
      }
    }
    const attempts = Number(delivery.attempts) + 1;
    const finishedAt = this.#deps.clock.now();
    const doneAt = (at ?? finishedAt).toISOString();
    if (error === null) {
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('notify_deliveries').set({ state: 'delivered', attempts, last_status: status, last_error: null, next_attempt_at: null, delivered_at: doneAt }).where('id', '=', id).execute();
        await this.#deps.alerts.appendWithin(trx, delivery.alert_id, [{ kind: 'notification', actor: 'notify', summary: `delivered to webhook ${delivery.webhook} (attempt ${attempts}, HTTP ${status})`, details: { delivery: id, webhook: delivery.webhook, attempts, status } }]);
      });
      return;
    }
    const giveUp = attempts >= NOTIFY_LIMITS.maxAttempts || !webhook;
    const next = giveUp ? null : new Date((at ?? finishedAt).getTime() + backoffMs(attempts, { baseMs: NOTIFY_LIMITS.baseBackoffMs, capMs: NOTIFY_LIMITS.maxBackoffMs })).toISOString();
    await db.transaction().execute(async (trx) => {
      await trx.updateTable('notify_deliveries').set({ state: giveUp ? 'failed' : 'pending', attempts, last_status: status, last_error: error, next_attempt_at: next }).where('id', '=', id).execute();
      if (giveUp) {
        await this.#deps.alerts.appendWithin(trx, delivery.alert_id, [{ kind: 'notification', actor: 'notify', summary: `gave up on webhook ${delivery.webhook} after ${attempts} attempt(s): ${error}`, details: { delivery: id, webhook: delivery.webhook, attempts, error } }]);
        await this.#deps.audit.recordWithin(trx, [{ actor: 'notify', action: 'notify.delivery.failed', outcome: 'failure', target: `webhook:${delivery.webhook}`, details: { delivery: id, alert: delivery.alert_id, attempts, error } }]);
      }
    });
  }
}

/** Re-seals every webhook secret with the active key (key-encryption key rotation). */
export async function resealWebhookSecrets(trx: Kysely<Tables>, keyRing: KeyRing): Promise<number> {
  const rows = await trx.selectFrom('notify_webhooks').select(['name', 'secret_sealed']).execute();
  for (const row of rows) await trx.updateTable('notify_webhooks').set({ secret_sealed: keyRing.reseal(row.secret_sealed, `notify:${row.name}`) }).where('name', '=', row.name).execute();
  return rows.length;
}

function webhookOf(row: Tables['notify_webhooks']): Webhook {
  return { name: row.name, url: redactWebhookUrl(row.url), minSeverity: row.min_severity as Severity, pinnedCa: row.ca_pem !== null, createdAt: row.created_at, createdBy: row.created_by };
}

function deliveryOf(row: Tables['notify_deliveries']): Delivery {
  return {
    id: row.id,
    webhook: row.webhook,
    alert: row.alert_id,
    state: row.state as DeliveryState,
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at,
    lastStatus: row.last_status === null ? null : Number(row.last_status),
    lastError: row.last_error,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at,
  };
}
