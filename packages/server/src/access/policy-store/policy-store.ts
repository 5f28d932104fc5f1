import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields, type Actor, type AuditEvent } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import { registryName } from '../../identity/registry/names.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { DEFAULT_DEVICE_POLICY_NAME, importAwsIotPolicy, parsePolicyDocument, serializePolicy, type AttachmentTarget, type AwsImportOptions, type PolicyDocument } from '../policy/index.js';
import { analyzeFleet, ANALYZE_LIMITS, type FleetAnalysis } from './analyze-fleet.js';
import { normalizeTarget, resolveTarget } from './attachment-targets.js';
import { EffectivePolicies, type EffectiveSet, type EffectiveStoredPolicy, type GroupAncestry, type PolicyScope } from './effective-policies.js';
import { changeCursor, changesSince, type PolicyChanges } from './policy-changes.js';
import {
  DocumentCache,
  documentHash,
  policyNotFound,
  policyRow,
  POLICY_STORE_LIMITS,
  RESERVED_POLICY_PREFIX,
  targetLabel,
  toAttachment,
  toStoredPolicy,
  versionText,
  type PolicyAttachment,
  type StoredPolicy,
  type StoredPolicyVersion,
} from './policy-records.js';
import { simulatePolicy, type Simulation, type SimulationRequest } from './simulate.js';

export interface PolicyStoreDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** The registry's groups (Groups): a thing's groups with their ancestors. */
  readonly groups: GroupAncestry;
}

const ROUTE_WORDS: ReadonlySet<string> = new Set(['analyze', 'simulate', 'import-aws']);

/** How many detached targets a `policy.detach` event names (the rest are counted). */
const AUDITED_TARGETS = 50;

/**
 * Device policies as stored (rule 2): named, versioned documents — every update adds a version, the
 * history is kept, one default version is in force — attached to things, groups and certificates.
 * Every change is audited in its own transaction, and the database logs it for gateways to poll
 * (`changesSince`). A thing with no attached policy (directly, through its groups, or through the
 * certificate it connects with) gets the default device policy, which therefore cannot be deleted.
 */
export class PolicyStore {
  readonly #deps: PolicyStoreDependencies;
  readonly #documents = new DocumentCache();
  readonly #effective: EffectivePolicies;

  constructor(deps: PolicyStoreDependencies) {
    this.#deps = deps;
    this.#effective = new EffectivePolicies(deps.store, deps.groups, this.#documents);
  }

  /** Creates a policy from a document (refused with FW_ERR_VALIDATION and `details.path` when invalid). */
  async create(name: string, document: unknown, actor: Actor, origin: Readonly<Record<string, string>> = {}): Promise<StoredPolicy> {
    const checkedName = newPolicyName(name);
    const text = serializePolicy(parsePolicyDocument(document));
    const now = this.#now();
    await this.#deps.store.db.transaction().execute(async (trx) => {
      if (await trx.selectFrom('policies').select('name').where('name', '=', checkedName).executeTakeFirst()) {
        throw new FleetwardError('FW_ERR_CONFLICT', `policy ${checkedName} already exists; update it to add a version`, { policy: checkedName });
      }
      await trx.insertInto('policies').values({ name: checkedName, default_version: 1, latest_version: 1, created_at: now, created_by: actor.name, updated_at: now }).execute();
      await trx.insertInto('policy_versions').values({ policy: checkedName, version: 1, document: text, created_at: now, created_by: actor.name }).execute();
      await this.#audit(trx, actor, 'policy.create', checkedName, { version: 1, sha256: documentHash(text), ...origin });
    });
    return this.get(checkedName);
  }

  /** Imports an AWS IoT policy document; what has no exact equivalent is refused with FW_ERR_POLICY_UNTRANSLATABLE. */
  async importAws(name: string, awsDocument: unknown, options: AwsImportOptions, actor: Actor): Promise<StoredPolicy> {
    newPolicyName(name);
    let document: PolicyDocument;
    try {
      document = importAwsIotPolicy(awsDocument, options);
    } catch (error) {
      if (error instanceof FleetwardError && error.code === 'FW_ERR_VALIDATION') throw new FleetwardError('FW_ERR_POLICY_UNTRANSLATABLE', error.message, error.details, { cause: error });
      throw error;
    }
    return this.create(name, document, actor, { importedFrom: 'aws-iot' });
  }

  /** Adds a version; it is in force at once unless `makeDefault` is false. */
  async update(name: string, document: unknown, actor: Actor, options: { readonly makeDefault?: boolean } = {}): Promise<StoredPolicy> {
    const text = serializePolicy(parsePolicyDocument(document));
    const makeDefault = options.makeDefault ?? true;
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const now = this.#now();
      // The increment locks the row: concurrent updates get consecutive versions.
      const row = await trx
        .updateTable('policies')
        .set((eb) => ({ latest_version: eb('latest_version', '+', 1), updated_at: now }))
        .where('name', '=', name)
        .returning(['latest_version', 'default_version'])
        .executeTakeFirst();
      if (!row) throw policyNotFound(name);
      const version = row.latest_version;
      await trx.insertInto('policy_versions').values({ policy: name, version, document: text, created_at: now, created_by: actor.name }).execute();
      if (makeDefault) await trx.updateTable('policies').set({ default_version: version }).where('name', '=', name).execute();
      await this.#audit(trx, actor, 'policy.update', name, { version, sha256: documentHash(text), defaultVersion: makeDefault ? version : row.default_version, previousDefault: row.default_version });
    });
    return this.get(name);
  }

  /** Puts an existing version in force (a rollback is setting an older one). */
  async setDefaultVersion(name: string, version: number, actor: Actor): Promise<StoredPolicy> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const row = await policyRow(trx, name);
      await versionText(trx, name, version);
      if (row.default_version === version) return;
      await trx.updateTable('policies').set({ default_version: version, updated_at: this.#now() }).where('name', '=', name).execute();
      await this.#audit(trx, actor, 'policy.update', name, { defaultVersion: version, previousDefault: row.default_version });
    });
    return this.get(name);
  }

  async get(name: string): Promise<StoredPolicy> {
    const { db } = this.#deps.store;
    const row = await policyRow(db, name);
    const version = await versionText(db, name, row.default_version);
    const count = await db.selectFrom('policy_attachments').select((eb) => eb.fn.countAll<number>().as('n')).where('policy', '=', name).executeTakeFirstOrThrow();
    return toStoredPolicy(row, this.#documents.parse(version.document), Number(count.n));
  }

  async list(): Promise<StoredPolicy[]> {
    const { db } = this.#deps.store;
    const rows = await db
      .selectFrom('policies')
      .innerJoin('policy_versions', (join) => join.onRef('policy_versions.policy', '=', 'policies.name').onRef('policy_versions.version', '=', 'policies.default_version'))
      .selectAll('policies')
      .select('policy_versions.document')
      .orderBy('policies.name')
      .execute();
    const counts = await db.selectFrom('policy_attachments').select(['policy', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('policy').execute();
    const byPolicy = new Map(counts.map((c) => [c.policy, Number(c.n)]));
    return rows.map((row) => toStoredPolicy(row, this.#documents.parse(row.document), byPolicy.get(row.name) ?? 0));
  }

  /** Every version, newest first. */
  async versions(name: string): Promise<StoredPolicyVersion[]> {
    const { db } = this.#deps.store;
    const row = await policyRow(db, name);
    const versions = await db.selectFrom('policy_versions').selectAll().where('policy', '=', name).orderBy('version', 'desc').execute();
    return versions.map((v) => ({ policy: name, version: v.version, isDefault: v.version === row.default_version, document: this.#documents.parse(v.document), createdAt: v.created_at, createdBy: v.created_by }));
  }

  async version(name: string, version: number): Promise<StoredPolicyVersion> {
    const { db } = this.#deps.store;
    const row = await policyRow(db, name);
    const v = await versionText(db, name, version);
    return { policy: name, version, isDefault: version === row.default_version, document: this.#documents.parse(v.document), createdAt: v.created_at, createdBy: v.created_by };
  }

  /**
   * Deletes a policy and its versions. Refused while it is attached unless `force`, which detaches
   * it everywhere in the same transaction. The default device policy cannot be deleted.
   */
  async delete(name: string, actor: Actor, options: { readonly force?: boolean } = {}): Promise<{ readonly detached: readonly PolicyAttachment[] }> {
    if (name === DEFAULT_DEVICE_POLICY_NAME) {
      throw new FleetwardError('FW_ERR_CONFLICT', `${name} is what every thing without an attached policy gets; update it instead of deleting it`, { policy: name });
    }
    let attachedCount = 0;
    try {
      const detached = await this.#deps.store.db.transaction().execute(async (trx) => {
        await policyRow(trx, name);
        const attached = (await trx.selectFrom('policy_attachments').selectAll().where('policy', '=', name).orderBy('created_at').execute()).map(toAttachment);
        attachedCount = attached.length;
        if (attached.length > 0 && options.force !== true) {
          throw new FleetwardError('FW_ERR_CONFLICT', `policy ${name} is attached to ${attached.length} target(s); detach it first or delete with --force`, { policy: name, attachments: attached.length });
        }
        const events: AuditEvent[] = [];
        if (attached.length > 0) {
          await trx.deleteFrom('policy_attachments').where('policy', '=', name).execute();
          events.push(this.#event(actor, 'policy.detach', name, { targets: attached.slice(0, AUDITED_TARGETS).map((a) => targetLabel(a.target)), count: attached.length, reason: 'policy deleted with force' }));
        }
        await trx.deleteFrom('policy_versions').where('policy', '=', name).execute();
        await trx.deleteFrom('policies').where('name', '=', name).execute();
        events.push(this.#event(actor, 'policy.delete', name, { detached: attached.length, forced: options.force === true }));
        await this.#deps.audit.recordWithin(trx, events);
        return attached;
      });
      return { detached };
    } catch (error) {
      // Recorded after the transaction: on SQLite a second transaction cannot start inside the first.
      if (error instanceof FleetwardError && error.code === 'FW_ERR_CONFLICT' && attachedCount > 0) {
        await this.#deps.audit.record({ ...actorFields(actor), action: 'policy.delete', outcome: 'denied', target: `policy:${name}`, details: { attachments: attachedCount } });
      }
      throw error;
    }
  }

  /** Attaches a policy to a thing, a group or a device certificate; attaching it again changes nothing. */
  async attach(name: string, target: AttachmentTarget, actor: Actor): Promise<PolicyAttachment> {
    return this.#deps.store.db.transaction().execute((trx) => this.attachWithin(trx, name, target, actor));
  }

  /** `attach` inside the caller's transaction (a thing provisioned from a template gets its policies with it). */
  async attachWithin(trx: Transaction<Tables>, name: string, target: AttachmentTarget, actor: Actor): Promise<PolicyAttachment> {
    await policyRow(trx, name);
    const resolved = await resolveTarget(trx, target);
    const existing = await trx.selectFrom('policy_attachments').select(['policy']).where('target_kind', '=', target.kind).where('target_name', '=', resolved.target.name).execute();
    const same = existing.some((e) => e.policy === name);
    if (!same && existing.length >= POLICY_STORE_LIMITS.maxPoliciesPerTarget) {
      throw new FleetwardError('FW_ERR_CONFLICT', `${target.kind} ${target.name} already has ${POLICY_STORE_LIMITS.maxPoliciesPerTarget} policies attached`, { target: targetLabel(resolved.target) });
    }
    if (!same) {
      const { target: t, ...columns } = resolved;
      await trx.insertInto('policy_attachments').values({ id: randomUUID(), policy: name, target_kind: t.kind, target_name: t.name, ...columns, created_at: this.#now(), created_by: actor.name }).execute();
      await this.#audit(trx, actor, 'policy.attach', name, { target: targetLabel(t) });
    }
    const row = await trx.selectFrom('policy_attachments').selectAll().where('policy', '=', name).where('target_kind', '=', target.kind).where('target_name', '=', resolved.target.name).executeTakeFirstOrThrow();
    return toAttachment(row);
  }

  /** Detaches a policy; returns the attachment removed. */
  async detach(name: string, given: AttachmentTarget, actor: Actor): Promise<PolicyAttachment> {
    const target = normalizeTarget(given);
    return this.#deps.store.db.transaction().execute(async (trx) => {
      await policyRow(trx, name);
      const row = await trx.selectFrom('policy_attachments').selectAll().where('policy', '=', name).where('target_kind', '=', target.kind).where('target_name', '=', target.name).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `policy ${name} is not attached to ${target.kind} ${target.name}`, { policy: name, target: targetLabel(target) });
      await trx.deleteFrom('policy_attachments').where('id', '=', row.id).execute();
      await this.#audit(trx, actor, 'policy.detach', name, { target: targetLabel(target) });
      return toAttachment(row);
    });
  }

  /** Attachments of one policy, or to one target, or all. */
  async attachments(filter: { readonly policy?: string; readonly target?: AttachmentTarget } = {}): Promise<PolicyAttachment[]> {
    const { db } = this.#deps.store;
    if (filter.policy !== undefined) await policyRow(db, filter.policy);
    let select = db.selectFrom('policy_attachments').select(['policy', 'target_kind', 'target_name', 'created_at', 'created_by']);
    if (filter.policy !== undefined) select = select.where('policy', '=', filter.policy);
    if (filter.target !== undefined) {
      const target = normalizeTarget(filter.target);
      select = select.where('target_kind', '=', target.kind).where('target_name', '=', target.name);
    }
    return (await select.orderBy('policy').orderBy('target_kind').orderBy('target_name').execute()).map(toAttachment);
  }

  /**
   * The policies a connection gets, in evaluation order, ready for compilePolicies (the gateway's
   * PolicySource). Pass the thing's groups with their ancestors and the certificate's serial.
   */
  policiesFor(scope: PolicyScope): Promise<EffectiveStoredPolicy[]> {
    return this.#effective.policiesFor(scope);
  }

  /** A registered thing's facts and effective policies, loading its group ancestry from the registry. */
  effectiveFor(thing: string, options: { readonly certificateSerial?: string } = {}): Promise<EffectiveSet> {
    return this.#effective.effectiveFor(thing, options.certificateSerial ?? null);
  }

  /** Decides one request for a thing as the gateway would, naming the deciding statement. */
  simulate(request: SimulationRequest): Promise<Simulation> {
    return simulatePolicy({ store: this.#deps.store, policies: this }, request);
  }

  /** Least-privilege findings across every policy, attachment and thing (default window: 30 days). */
  analyze(options: { readonly unusedDays?: number } = {}): Promise<FleetAnalysis> {
    const unusedDays = options.unusedDays ?? 30;
    if (!Number.isInteger(unusedDays) || unusedDays < 1 || unusedDays > ANALYZE_LIMITS.maxUnusedDays) {
      throw new FleetwardError('FW_ERR_VALIDATION', `the unused-action window is 1-${ANALYZE_LIMITS.maxUnusedDays} days`, { field: 'days' });
    }
    return analyzeFleet({ store: this.#deps.store, clock: this.#deps.clock, documents: this.#documents }, unusedDays);
  }

  /** The current change cursor: where a poller starts. */
  changeCursor(): Promise<number> {
    return changeCursor(this.#deps.store.db);
  }

  /** Policy-relevant changes after `cursor` (see PolicyChanges). */
  changesSince(cursor: number): Promise<PolicyChanges> {
    return changesSince(this.#deps.store.db, cursor);
  }

  #now(): string {
    return this.#deps.clock.now().toISOString();
  }

  #event(actor: Actor, action: AuditEvent['action'], policy: string, details: AuditEvent['details']): AuditEvent {
    return { ...actorFields(actor), action, outcome: 'success', target: `policy:${policy}`, ...(details !== undefined && { details }) };
  }

  async #audit(trx: Transaction<Tables>, actor: Actor, action: AuditEvent['action'], policy: string, details: AuditEvent['details']): Promise<void> {
    await this.#deps.audit.recordWithin(trx, [this.#event(actor, action, policy, details)]);
  }
}

/** A name for a new policy: a registry name, outside Fleetward's own `fleetward-` names. */
function newPolicyName(name: string): string {
  registryName(name, 'policy');
  if (name.startsWith(RESERVED_POLICY_PREFIX)) throw new FleetwardError('FW_ERR_VALIDATION', `policy names starting with ${RESERVED_POLICY_PREFIX} are reserved for Fleetward's own policies`, { field: 'name' });
  // They name API routes beside /api/v1/policies/:name.
  if (ROUTE_WORDS.has(name)) throw new FleetwardError('FW_ERR_VALIDATION', `${name} cannot be a policy name (reserved: ${[...ROUTE_WORDS].join(', ')})`, { field: 'name' });
  return name;
}
