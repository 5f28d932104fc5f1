import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { JsonValue } from '../../json.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import type { Detection, Severity } from '../types.js';
import { ACTIVE_ALERT_STATES, allowedAlertTransitions, canTransitionAlert, maxSeverity, type AlertState, type TimelineKind, type Verdict } from './alert-states.js';

/** Named limits: a flood of detections bumps a counter, it does not grow the timeline without bound. */
export const ALERT_LIMITS = { detectionsOnTimeline: 20, maxValueBytes: 4096, maxNoteLength: 2000, listMax: 500 } as const;

export interface Alert {
  readonly id: string;
  readonly dedupeKey: string;
  readonly thing: string | null;
  readonly behavior: string;
  readonly profile: string | null;
  readonly severity: Severity;
  readonly metric: string;
  readonly value: JsonValue;
  readonly message: string;
  readonly state: AlertState;
  readonly verdict: Verdict | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly count: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface TimelineEntry {
  readonly position: number;
  readonly at: string;
  readonly kind: TimelineKind;
  readonly actor: string;
  readonly summary: string;
  readonly details: Readonly<Record<string, JsonValue>>;
}

export type TimelineInput = Omit<TimelineEntry, 'position' | 'at'> & { readonly at?: string };

export interface AlertQuery {
  readonly state?: AlertState | 'active';
  readonly thing?: string;
  readonly severity?: Severity;
  readonly limit?: number;
}

/** What an alert is raised from: a detection, or another module's alert (rule 4's) that may concern no thing. */
export type AlertInput = Omit<Detection, 'thing'> & { readonly thing: string | null };

export const DETECTION_ACTOR: Actor = { name: 'monitor' };

/** Alerts: deduped detections with severity, a lifecycle, a verdict and an incident timeline. */
export class Alerts {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock };

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock }) {
    this.#deps = deps;
  }

  /** Opens an alert, or bumps the open or acknowledged one with the same dedupe key. */
  async record(detection: AlertInput): Promise<{ readonly kind: 'opened' | 'bumped'; readonly alert: Alert }> {
    try {
      return await this.#record(detection);
    } catch (error) {
      // Two nodes opened the same key at once: the unique open_key let one win; bump it.
      if (isUniqueViolation(error)) return this.#record(detection);
      throw error;
    }
  }

  async #record(detection: AlertInput): Promise<{ readonly kind: 'opened' | 'bumped'; readonly alert: Alert }> {
    const now = this.#deps.clock.now().toISOString();
    const value = boundedValue(detection.value);
    const id = await this.#deps.store.db.transaction().execute(async (trx) => {
      const open = await trx.selectFrom('alerts').selectAll().where('open_key', '=', detection.dedupeKey).executeTakeFirst();
      if (open) {
        const count = Number(open.count) + 1;
        await trx
          .updateTable('alerts')
          .set({ count, last_seen: detection.at > open.last_seen ? detection.at : open.last_seen, severity: maxSeverity(open.severity as Severity, detection.severity), value: JSON.stringify(value), message: detection.message, updated_at: now })
          .where('id', '=', open.id)
          .execute();
        if (count <= ALERT_LIMITS.detectionsOnTimeline) await this.appendWithin(trx, open.id, [detectionEntry(detection, value, now)]);
        return { id: open.id, opened: false };
      }
      const row: Tables['alerts'] = {
        id: `al-${randomBytes(8).toString('hex')}`,
        dedupe_key: detection.dedupeKey,
        open_key: detection.dedupeKey,
        thing: detection.thing,
        behavior: detection.behavior,
        profile: detection.profile,
        severity: detection.severity,
        metric: detection.metric,
        value: JSON.stringify(value),
        message: detection.message,
        state: 'open',
        verdict: null,
        first_seen: detection.at,
        last_seen: detection.at,
        count: 1,
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('alerts').values(row).execute();
      await this.appendWithin(trx, row.id, [detectionEntry(detection, value, now)]);
      await this.#deps.audit.recordWithin(trx, [
        { actor: DETECTION_ACTOR.name, action: 'alert.open', outcome: 'success', target: detection.thing !== null ? `thing:${detection.thing}` : `alert:${row.id}`, details: { alert: row.id, behavior: detection.behavior, profile: detection.profile, severity: detection.severity, dedupeKey: detection.dedupeKey } },
      ]);
      return { id: row.id, opened: true };
    });
    return { kind: id.opened ? 'opened' : 'bumped', alert: await this.get(id.id) };
  }

  async get(id: string): Promise<Alert> {
    const row = await this.#deps.store.db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return alertOf(row);
  }

  async list(query: AlertQuery = {}): Promise<Alert[]> {
    let select = this.#deps.store.db.selectFrom('alerts').selectAll();
    if (query.state === 'active') select = select.where('state', 'in', [...ACTIVE_ALERT_STATES]);
    else if (query.state !== undefined) select = select.where('state', '=', query.state);
    if (query.thing !== undefined) select = select.where('thing', '=', query.thing);
    if (query.severity !== undefined) select = select.where('severity', '=', query.severity);
    const limit = Math.min(Math.max(1, query.limit ?? 100), ALERT_LIMITS.listMax);
    return (await select.orderBy('last_seen', 'desc').orderBy('id').limit(limit).execute()).map(alertOf);
  }

  /** The open or acknowledged alerts of a thing, newest first. */
  async activeFor(thing: string): Promise<Alert[]> {
    return this.list({ state: 'active', thing });
  }

  async timeline(id: string): Promise<TimelineEntry[]> {
    const rows = await this.#deps.store.db.selectFrom('alert_timeline').selectAll().where('alert_id', '=', id).orderBy('position').execute();
    return rows.map((r) => ({ position: Number(r.position), at: r.at, kind: r.kind as TimelineKind, actor: r.actor, summary: r.summary, details: JSON.parse(r.details) as Record<string, JsonValue> }));
  }

  async acknowledge(id: string, actor: Actor, note?: string): Promise<Alert> {
    return this.#transition(id, 'acknowledged', actor, 'alert.acknowledge', note);
  }

  /** Resolves an alert (with a verdict, optionally): a later detection with its key opens a new one. */
  async resolve(id: string, actor: Actor, options: { readonly verdict?: Verdict; readonly note?: string } = {}): Promise<Alert> {
    if (options.verdict !== undefined) await this.setVerdict(id, options.verdict, actor);
    return this.#transition(id, 'resolved', actor, 'alert.resolve', options.note);
  }

  async note(id: string, text: string, actor: Actor): Promise<TimelineEntry> {
    checkNote(text);
    const entry = await this.#deps.store.db.transaction().execute(async (trx) => {
      await this.#lock(trx, id);
      const [added] = await this.appendWithin(trx, id, [{ kind: 'note', actor: actor.name, summary: text, details: {} }]);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'alert.note', outcome: 'success', target: `alert:${id}`, details: { note: text } }]);
      return added as TimelineEntry;
    });
    return entry;
  }

  /** Sets (or changes) the verdict, in any state. */
  async setVerdict(id: string, verdict: Verdict, actor: Actor, note?: string): Promise<Alert> {
    if (note !== undefined) checkNote(note);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await this.#lock(trx, id);
      await trx.updateTable('alerts').set({ verdict, updated_at: this.#deps.clock.now().toISOString() }).where('id', '=', id).execute();
      await this.appendWithin(trx, id, [{ kind: 'verdict', actor: actor.name, summary: `verdict: ${verdict}${note !== undefined ? ` — ${note}` : ''}`, details: { from: row.verdict, to: verdict } }]);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'alert.verdict', outcome: 'success', target: `alert:${id}`, details: { verdict, previous: row.verdict, ...(note !== undefined && { note }) } }]);
    });
    return this.get(id);
  }

  /** Adds entries to an alert's timeline (actions, notifications), in their own transaction. */
  async append(id: string, entries: readonly TimelineInput[]): Promise<void> {
    await this.#deps.store.db.transaction().execute((trx) => this.appendWithin(trx, id, entries));
  }

  async appendWithin(trx: Transaction<Tables>, id: string, entries: readonly TimelineInput[]): Promise<TimelineEntry[]> {
    const last = await trx.selectFrom('alert_timeline').select((eb) => eb.fn.max('position').as('position')).where('alert_id', '=', id).executeTakeFirst();
    let position = Number(last?.position ?? 0);
    const now = this.#deps.clock.now().toISOString();
    const rows = entries.map((e) => ({ alert_id: id, position: ++position, at: e.at ?? now, kind: e.kind, actor: e.actor, summary: e.summary, details: JSON.stringify(e.details) }));
    if (rows.length > 0) await trx.insertInto('alert_timeline').values(rows).execute();
    return rows.map((r, i) => ({ position: r.position, at: r.at, kind: r.kind, actor: r.actor, summary: r.summary, details: (entries[i] as TimelineInput).details }));
  }

  async #transition(id: string, to: AlertState, actor: Actor, action: 'alert.acknowledge' | 'alert.resolve', note?: string): Promise<Alert> {
    if (note !== undefined) checkNote(note);
    let refused: { from: AlertState } | null = null;
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await this.#lock(trx, id);
      const from = row.state as AlertState;
      if (from === to) return;
      if (!canTransitionAlert(from, to)) {
        refused = { from };
        return;
      }
      const now = this.#deps.clock.now().toISOString();
      await trx.updateTable('alerts').set({ state: to, updated_at: now, ...(to === 'resolved' && { open_key: null }) }).where('id', '=', id).execute();
      await this.appendWithin(trx, id, [{ kind: 'state', actor: actor.name, summary: `${from} → ${to}${note !== undefined ? `: ${note}` : ''}`, details: { from, to, ...(note !== undefined && { note }) } }]);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action, outcome: 'success', target: `alert:${id}`, details: { from, to, ...(note !== undefined && { note }) } }]);
    });
    if (refused !== null) {
      const { from } = refused as { from: AlertState };
      await this.#deps.audit.record({ ...actorFields(actor), action, outcome: 'denied', target: `alert:${id}`, details: { from, to } });
      const allowed = allowedAlertTransitions(from);
      throw new FleetwardError('FW_ERR_INVALID_TRANSITION', `alert ${id} cannot go from ${from} to ${to}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ': resolved is final'}`, { alert: id, from, to });
    }
    return this.get(id);
  }

  async #lock(trx: Transaction<Tables>, id: string): Promise<Tables['alerts']> {
    const row = await trx.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return row;
  }
}

function detectionEntry(detection: AlertInput, value: JsonValue, now: string): TimelineInput {
  return {
    at: now,
    kind: 'detection',
    actor: DETECTION_ACTOR.name,
    summary: detection.message,
    details: { behavior: detection.behavior, profile: detection.profile, severity: detection.severity, metric: detection.metric, value, windowEnd: detection.at, actions: [...detection.actions] },
  };
}

/** The observed value as JSON, cut down when it is large (a device controls it). */
function boundedValue(value: unknown): JsonValue {
  let text: string;
  try {
    text = JSON.stringify(value ?? null) ?? 'null';
  } catch {
    return String(value);
  }
  if (Buffer.byteLength(text) <= ALERT_LIMITS.maxValueBytes) return JSON.parse(text) as JsonValue;
  return { truncated: true, preview: text.slice(0, 256) };
}

function checkNote(text: string): void {
  if (text.trim() === '' || text.length > ALERT_LIMITS.maxNoteLength) throw new FleetwardError('FW_ERR_VALIDATION', `a note is 1 to ${ALERT_LIMITS.maxNoteLength} characters`, { field: 'note' });
}

function alertOf(row: Tables['alerts']): Alert {
  return {
    id: row.id,
    dedupeKey: row.dedupe_key,
    thing: row.thing,
    behavior: row.behavior,
    profile: row.profile,
    severity: row.severity as Severity,
    metric: row.metric,
    value: JSON.parse(row.value) as JsonValue,
    message: row.message,
    state: row.state as AlertState,
    verdict: row.verdict as Verdict | null,
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    count: Number(row.count),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function notFound(id: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `alert ${id} does not exist`, { alert: id });
}

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e.message ?? '');
}
