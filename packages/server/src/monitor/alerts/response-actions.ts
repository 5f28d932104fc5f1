import { randomBytes } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { RevocationReason } from '../../identity/certificate-repository.js';
import type { ThingState } from '../../identity/registry/lifecycle.js';
import type { JsonValue } from '../../json.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { RESPONSE_ACTIONS, type ResponseActionName } from '../types.js';
import { canTransitionAction, type ActionState } from './alert-states.js';
import type { Alert, Alerts } from './alerts.js';
import type { Notifier } from './notifier.js';

/** The registry, as response reads and moves it (identity/registry `Things`). */
export interface ResponseThings {
  get(name: string): Promise<{ readonly state: ThingState; readonly groups: readonly string[] }>;
  setState(name: string, to: ThingState, actor: Actor, reason?: string): Promise<unknown>;
}

/** Certificates, as response revokes and rotates them (identity `Certificates`). */
export interface ResponseCertificates {
  list(query: { readonly thing?: string; readonly status?: 'active' | 'revoked'; readonly limit: number }): Promise<{ readonly certificates: readonly { readonly serial: string; readonly mustRotate: boolean }[] }>;
  revokeThing(name: string, reason: RevocationReason, actor: Actor): Promise<readonly string[]>;
  requestRotation(serial: string, actor: Actor): Promise<unknown>;
}

/** Deployments, as response starts an update (updates `Deployments`). */
export interface ResponseDeployments {
  create(request: { readonly target: string; readonly selection: { readonly things: readonly string[] } }, actor: Actor): Promise<{ readonly id: string }>;
}

export const RESPONSE_LIMITS = { maxQuarantineSeconds: 30 * 24 * 3600, expiryBatch: 100, listMax: 500 } as const;

export interface ActionParams {
  /** quarantine: released automatically after this long. */
  readonly durationSeconds?: number;
  /** start-update: the signed artifact's TUF target. */
  readonly target?: string;
  /** revoke-certificate: one serial; default every active certificate of the thing. */
  readonly serial?: string;
  readonly reason?: string;
}

export interface ActionRequest {
  readonly action: ResponseActionName;
  readonly thing: string;
  /** The alert the action answers; default the thing's newest open or acknowledged alert. */
  readonly alert?: string;
  readonly params?: ActionParams;
}

export interface ResponseAction {
  readonly id: string;
  readonly alert: string | null;
  readonly thing: string;
  readonly action: ResponseActionName;
  readonly params: ActionParams;
  readonly mode: 'automatic' | 'manual';
  readonly state: ActionState;
  readonly result: Readonly<Record<string, JsonValue>>;
  readonly errorCode: string | null;
  readonly requestedBy: string;
  readonly decidedBy: string | null;
  readonly expiresAt: string | null;
  readonly releasedAt: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export interface ResponseDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly alerts: Alerts;
  readonly notifier: Notifier;
  readonly things: ResponseThings;
  readonly certificates: ResponseCertificates;
  readonly deployments: ResponseDeployments;
  /** Automatic actions of these kinds wait for an operator's approval (default: none). */
  readonly approvalRequired?: readonly ResponseActionName[];
  /** Automatic quarantines are released after this long (default: until released). */
  readonly automaticQuarantineSeconds?: number;
}

export const RELEASE_ACTOR: Actor = { name: 'response' };

/**
 * Response actions against a thing: run automatically from a detection's behaviour or by an
 * operator, each audited and on its alert's timeline, idempotent, and recorded when it fails.
 */
export class ResponseActions {
  readonly #deps: ResponseDependencies;

  constructor(deps: ResponseDependencies) {
    this.#deps = deps;
  }

  /** An operator's action: runs now. */
  async run(request: ActionRequest, actor: Actor): Promise<ResponseAction> {
    const checked = checkRequest(request);
    const alert = checked.alert ?? (await this.#deps.alerts.activeFor(checked.thing))[0]?.id ?? null;
    if (alert !== null) await this.#deps.alerts.get(alert);
    return this.#execute({ ...checked, alert }, actor, 'manual', null);
  }

  /** The actions a detection's behaviour asks for, for a newly opened alert. */
  async automatic(alert: Alert, actions: readonly ResponseActionName[]): Promise<ResponseAction[]> {
    const done: ResponseAction[] = [];
    const actor: Actor = { name: 'monitor' };
    for (const action of new Set(actions)) {
      if (alert.thing === null) continue;
      // Idempotent per alert: what already ran for this alert does not run again.
      const previous = await this.#deps.store.db.selectFrom('response_actions').selectAll().where('alert_id', '=', alert.id).where('action', '=', action).where('state', 'in', ['succeeded', 'pending-approval']).executeTakeFirst();
      if (previous) {
        done.push(actionOf(previous));
        continue;
      }
      const params: ActionParams = action === 'quarantine' && this.#deps.automaticQuarantineSeconds !== undefined ? { durationSeconds: this.#deps.automaticQuarantineSeconds } : {};
      const request = { action, thing: alert.thing, alert: alert.id, params };
      done.push(this.#deps.approvalRequired?.includes(action) === true ? await this.#awaitApproval(request, actor) : await this.#execute(request, actor, 'automatic', null));
    }
    return done;
  }

  async approve(id: string, actor: Actor): Promise<ResponseAction> {
    const row = await this.#pending(id, actor);
    return this.#execute({ action: row.action as ResponseActionName, thing: row.thing, alert: row.alert_id, params: JSON.parse(row.params) as ActionParams }, actor, 'automatic', row.id);
  }

  async reject(id: string, actor: Actor, reason?: string): Promise<ResponseAction> {
    const row = await this.#pending(id, actor);
    const now = this.#deps.clock.now().toISOString();
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.updateTable('response_actions').set({ state: 'rejected', decided_by: actor.name, finished_at: now, result: JSON.stringify({ rejected: reason ?? null }) }).where('id', '=', id).execute();
      if (row.alert_id !== null) await this.#deps.alerts.appendWithin(trx, row.alert_id, [{ kind: 'action', actor: actor.name, summary: `${row.action} rejected${reason !== undefined ? `: ${reason}` : ''}`, details: { action: row.action, id, state: 'rejected' } }]);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'response.approve', outcome: 'denied', target: `thing:${row.thing}`, details: { id, action: row.action, ...(reason !== undefined && { reason }) } }]);
    });
    return this.get(id);
  }

  /**
   * Undoes containment in one step: a quarantined (or suspended) thing becomes active again; its
   * quarantines are marked released and its open alerts' timelines say so. Idempotent.
   */
  async release(thing: string, actor: Actor, note?: string): Promise<{ readonly thing: string; readonly from: ThingState; readonly to: ThingState; readonly changed: boolean }> {
    const current = await this.#deps.things.get(thing);
    const changed = current.state === 'quarantined' || current.state === 'suspended';
    if (!changed && current.state !== 'active') throw new FleetwardError('FW_ERR_THING_STATE', `thing ${thing} is ${current.state}: only a quarantined or suspended thing can be released`, { thing, state: current.state });
    if (changed) await this.#deps.things.setState(thing, 'active', actor, note ?? 'released by response');
    const now = this.#deps.clock.now().toISOString();
    const alerts = await this.#deps.alerts.activeFor(thing);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.updateTable('response_actions').set({ released_at: now }).where('thing', '=', thing).where('action', 'in', ['quarantine', 'suspend']).where('state', '=', 'succeeded').where('released_at', 'is', null).execute();
      for (const alert of alerts) {
        await this.#deps.alerts.appendWithin(trx, alert.id, [{ kind: 'action', actor: actor.name, summary: changed ? `released: ${current.state} → active` : 'release: already active', details: { action: 'release', from: current.state, to: 'active', changed, ...(note !== undefined && { note }) } }]);
      }
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'response.release', outcome: 'success', target: `thing:${thing}`, details: { from: current.state, changed, alerts: alerts.map((a) => a.id), ...(note !== undefined && { note }) } }]);
    });
    return { thing, from: current.state, to: changed ? 'active' : current.state, changed };
  }

  /** Releases quarantines whose expiry passed (the job runner calls it every few seconds). */
  async tick(now: Date): Promise<{ readonly released: readonly string[] }> {
    const due = await this.#deps.store.db
      .selectFrom('response_actions')
      .select(['id', 'thing'])
      .where('action', '=', 'quarantine')
      .where('state', '=', 'succeeded')
      .where('released_at', 'is', null)
      .where('expires_at', '<=', now.toISOString())
      .limit(RESPONSE_LIMITS.expiryBatch)
      .execute();
    const released: string[] = [];
    for (const thing of new Set(due.map((d) => d.thing))) {
      const state = (await this.#deps.things.get(thing).catch(() => null))?.state;
      if (state === 'quarantined') {
        await this.release(thing, RELEASE_ACTOR, 'quarantine expired');
        released.push(thing);
      } else {
        // Something else moved the thing on (an operator suspended it): the quarantine is over, nothing to undo.
        await this.#deps.store.db.updateTable('response_actions').set({ released_at: now.toISOString() }).where('thing', '=', thing).where('action', '=', 'quarantine').where('released_at', 'is', null).execute();
      }
    }
    return { released };
  }

  async get(id: string): Promise<ResponseAction> {
    const row = await this.#deps.store.db.selectFrom('response_actions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `response action ${id} does not exist`, { action: id });
    return actionOf(row);
  }

  async list(filter: { readonly alert?: string; readonly thing?: string; readonly state?: ActionState; readonly limit?: number } = {}): Promise<ResponseAction[]> {
    let select = this.#deps.store.db.selectFrom('response_actions').selectAll();
    if (filter.alert !== undefined) select = select.where('alert_id', '=', filter.alert);
    if (filter.thing !== undefined) select = select.where('thing', '=', filter.thing);
    if (filter.state !== undefined) select = select.where('state', '=', filter.state);
    const limit = Math.min(Math.max(1, filter.limit ?? 100), RESPONSE_LIMITS.listMax);
    return (await select.orderBy('created_at').orderBy('id').limit(limit).execute()).map(actionOf);
  }

  async #pending(id: string, actor: Actor): Promise<Tables['response_actions']> {
    const row = await this.#deps.store.db.selectFrom('response_actions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `response action ${id} does not exist`, { action: id });
    if (!canTransitionAction(row.state as ActionState, 'succeeded')) {
      await this.#deps.audit.record({ ...actorFields(actor), action: 'response.approve', outcome: 'denied', target: `thing:${row.thing}`, details: { id, state: row.state } });
      throw new FleetwardError('FW_ERR_INVALID_TRANSITION', `response action ${id} is ${row.state}, not waiting for approval`, { action: id, from: row.state });
    }
    return row;
  }

  async #awaitApproval(request: Required<Omit<ActionRequest, 'alert'>> & { readonly alert: string | null }, actor: Actor): Promise<ResponseAction> {
    const now = this.#deps.clock.now().toISOString();
    const row = newRow(request, actor, 'automatic', 'pending-approval', now);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('response_actions').values(row).execute();
      if (request.alert !== null) await this.#deps.alerts.appendWithin(trx, request.alert, [{ kind: 'action', actor: actor.name, summary: `${request.action} waits for an operator's approval (fleetward respond approve ${row.id})`, details: { action: request.action, id: row.id, state: 'pending-approval' } }]);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'response.action', outcome: 'success', target: `thing:${request.thing}`, details: { id: row.id, action: request.action, state: 'pending-approval', alert: request.alert } }]);
    });
    return actionOf(row);
  }

  /** Runs one action; its outcome (success or failure, never thrown away) is stored, audited and on the timeline. */
  async #execute(request: Required<Omit<ActionRequest, 'alert'>> & { readonly alert: string | null }, actor: Actor, mode: 'automatic' | 'manual', pendingId: string | null): Promise<ResponseAction> {
    let result: Record<string, JsonValue>;
    let errorCode: string | null = null;
    let state: ActionState = 'succeeded';
    try {
      result = await this.#perform(request, actor);
    } catch (error) {
      state = 'failed';
      errorCode = error instanceof FleetwardError ? error.code : 'FW_ERR_INTERNAL';
      result = { error: error instanceof Error ? error.message.slice(0, 500) : String(error) };
    }
    const now = this.#deps.clock.now();
    const expiresAt = state === 'succeeded' && request.action === 'quarantine' && request.params.durationSeconds !== undefined && result.changed === true ? new Date(now.getTime() + request.params.durationSeconds * 1000).toISOString() : null;
    const row: Tables['response_actions'] = { ...newRow(request, actor, mode, state, now.toISOString()), result: JSON.stringify(result), error_code: errorCode, expires_at: expiresAt, finished_at: now.toISOString() };
    const id = pendingId ?? row.id;
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (pendingId === null) await trx.insertInto('response_actions').values(row).execute();
      else await trx.updateTable('response_actions').set({ state, result: row.result, error_code: errorCode, expires_at: expiresAt, decided_by: actor.name, finished_at: row.finished_at }).where('id', '=', pendingId).execute();
      if (request.alert !== null) {
        const summary = state === 'succeeded' ? `${request.action} succeeded${describe(result)}` : `${request.action} failed: ${typeof result.error === 'string' ? result.error : 'error'}`;
        await this.#deps.alerts.appendWithin(trx, request.alert, [{ kind: 'action', actor: actor.name, summary, details: { id, action: request.action, mode, state, result, ...(errorCode !== null && { errorCode }), ...(expiresAt !== null && { expiresAt }) } }]);
      }
      const audited = { ...actorFields(actor), action: 'response.action' as const, outcome: state === 'succeeded' ? ('success' as const) : ('failure' as const), target: `thing:${request.thing}`, details: { id, action: request.action, mode, alert: request.alert, result, ...(errorCode !== null && { errorCode }), ...(expiresAt !== null && { expiresAt }) } };
      await this.#deps.audit.recordWithin(trx, pendingId === null ? [audited] : [{ ...actorFields(actor), action: 'response.approve', outcome: 'success', target: `thing:${request.thing}`, details: { id, action: request.action } }, audited]);
    });
    return this.get(id);
  }

  async #perform(request: Required<Omit<ActionRequest, 'alert'>> & { readonly alert: string | null }, actor: Actor): Promise<Record<string, JsonValue>> {
    const { thing, params } = request;
    const reason = params.reason ?? (request.alert !== null ? `response to alert ${request.alert}` : 'operator response');
    switch (request.action) {
      case 'quarantine':
      case 'suspend': {
        const to: ThingState = request.action === 'quarantine' ? 'quarantined' : 'suspended';
        const { state } = await this.#deps.things.get(thing);
        if (state === to) return { changed: false, state };
        await this.#deps.things.setState(thing, to, actor, reason);
        return { changed: true, from: state, to };
      }
      case 'revoke-certificate': {
        if (params.serial !== undefined) {
          const active = await this.#activeCertificates(thing);
          if (!active.some((c) => c.serial === params.serial)) return { revoked: [], changed: false };
        }
        // Revocation closes the device's live connections at once (certificatesRevoked).
        const revoked = await this.#deps.certificates.revokeThing(thing, 'keyCompromise', actor);
        return { revoked: [...revoked], changed: revoked.length > 0 };
      }
      case 'force-rotation': {
        const active = await this.#activeCertificates(thing);
        const rotate = active.filter((c) => !c.mustRotate);
        for (const c of rotate) await this.#deps.certificates.requestRotation(c.serial, actor);
        return { mustRotate: active.map((c) => c.serial), changed: rotate.length > 0 };
      }
      case 'start-update': {
        if (params.target === undefined) throw new FleetwardError('FW_ERR_VALIDATION', 'start-update needs the target of a signed artifact', { field: 'target' });
        const deployment = await this.#deps.deployments.create({ target: params.target, selection: { things: [thing] } }, actor);
        return { deployment: deployment.id, target: params.target, changed: true };
      }
      case 'notify': {
        if (request.alert === null) throw new FleetwardError('FW_ERR_VALIDATION', `notify needs an alert, and ${thing} has no open alert`, { field: 'alert' });
        const deliveries = await this.#deps.notifier.notify(await this.#deps.alerts.get(request.alert), actor);
        return { deliveries: [...deliveries], changed: true };
      }
    }
  }

  async #activeCertificates(thing: string): Promise<readonly { readonly serial: string; readonly mustRotate: boolean }[]> {
    return (await this.#deps.certificates.list({ thing, status: 'active', limit: 100 })).certificates;
  }
}

function checkRequest(request: ActionRequest): Required<Omit<ActionRequest, 'alert'>> & { readonly alert: string | undefined } {
  if (!(RESPONSE_ACTIONS as readonly string[]).includes(request.action)) throw new FleetwardError('FW_ERR_VALIDATION', `unknown response action ${String(request.action)}`, { field: 'action' });
  const params = request.params ?? {};
  const d = params.durationSeconds;
  if (d !== undefined && (!Number.isInteger(d) || d < 1 || d > RESPONSE_LIMITS.maxQuarantineSeconds)) throw new FleetwardError('FW_ERR_VALIDATION', `a quarantine lasts 1 to ${RESPONSE_LIMITS.maxQuarantineSeconds} seconds`, { field: 'durationSeconds' });
  if (d !== undefined && request.action !== 'quarantine') throw new FleetwardError('FW_ERR_VALIDATION', 'only a quarantine has a duration', { field: 'durationSeconds' });
  return { action: request.action, thing: request.thing, alert: request.alert, params };
}

function newRow(request: { readonly action: ResponseActionName; readonly thing: string; readonly alert: string | null; readonly params: ActionParams }, actor: Actor, mode: 'automatic' | 'manual', state: ActionState, now: string): Tables['response_actions'] {
  return {
    id: `ra-${randomBytes(8).toString('hex')}`,
    alert_id: request.alert,
    thing: request.thing,
    action: request.action,
    params: JSON.stringify(request.params),
    mode,
    state,
    result: '{}',
    error_code: null,
    requested_by: actor.name,
    decided_by: null,
    expires_at: null,
    released_at: null,
    created_at: now,
    finished_at: null,
  };
}

function describe(result: Readonly<Record<string, JsonValue>>): string {
  if (result.changed === false) return ' (nothing to do: already done)';
  if (typeof result.to === 'string' && typeof result.from === 'string') return ` (${result.from} → ${result.to})`;
  if (Array.isArray(result.revoked)) return ` (revoked ${result.revoked.join(', ')})`;
  if (typeof result.deployment === 'string') return ` (deployment ${result.deployment})`;
  return '';
}

function actionOf(row: Tables['response_actions']): ResponseAction {
  return {
    id: row.id,
    alert: row.alert_id,
    thing: row.thing,
    action: row.action as ResponseActionName,
    params: JSON.parse(row.params) as ActionParams,
    mode: row.mode as 'automatic' | 'manual',
    state: row.state as ActionState,
    result: JSON.parse(row.result) as Record<string, JsonValue>,
    errorCode: row.error_code,
    requestedBy: row.requested_by,
    decidedBy: row.decided_by,
    expiresAt: row.expires_at,
    releasedAt: row.released_at,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}
