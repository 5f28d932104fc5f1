import { FleetwardError } from '@fleetward/protocol';
import { actorFields, type Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import { parseSecurityProfile, type SecurityProfile } from './detection/security-profile.js';
import type { MetricKind } from './metrics/window-metrics.js';

export interface StoredProfile {
  readonly name: string;
  readonly description: string;
  /** The document as validated (what `create` took). */
  readonly document: Readonly<Record<string, unknown>>;
  readonly groups: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly createdBy: string;
}

/**
 * Security profiles (rule 5): named behaviours, stored as validated documents and attached to
 * groups; a profile applies to every thing in an attached group or a group nested below it.
 */
export class SecurityProfiles {
  readonly #deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock; readonly customKinds?: () => Promise<ReadonlyMap<string, MetricKind>> };

  /** Told after every change made here (this node arms the new immediate behaviours at once; other nodes within seconds). */
  #changed: () => void = () => undefined;

  constructor(deps: { readonly store: Store; readonly audit: AuditLog; readonly clock: Clock; readonly customKinds?: () => Promise<ReadonlyMap<string, MetricKind>> }) {
    this.#deps = deps;
  }

  onChange(listener: () => void): void {
    this.#changed = listener;
  }

  /** Creates a profile, or replaces one of the same name (its attachments stay). */
  async put(document: unknown, actor: Actor): Promise<StoredProfile> {
    const profile = parseSecurityProfile(document, (await this.#deps.customKinds?.()) ?? new Map());
    const now = this.#deps.clock.now().toISOString();
    const text = JSON.stringify(document);
    await this.#deps.store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('security_profiles')
        .values({ name: profile.name, document: text, created_at: now, updated_at: now, created_by: actor.name })
        .onConflict((oc) => oc.column('name').doUpdateSet({ document: text, updated_at: now }))
        .execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.profile.create', outcome: 'success', target: `profile:${profile.name}`, details: { behaviors: profile.behaviors.map((b) => b.name) } }]);
    });
    this.#changed();
    return this.get(profile.name);
  }

  async get(name: string): Promise<StoredProfile> {
    const { db } = this.#deps.store;
    const row = await db.selectFrom('security_profiles').selectAll().where('name', '=', name).executeTakeFirst();
    if (row === undefined) throw notFound(name);
    const groups = await db.selectFrom('security_profile_groups').select('group_name').where('profile', '=', name).orderBy('group_name').execute();
    const document = JSON.parse(row.document) as Record<string, unknown>;
    return { name, description: typeof document.description === 'string' ? document.description : '', document, groups: groups.map((g) => g.group_name), createdAt: row.created_at, updatedAt: row.updated_at, createdBy: row.created_by };
  }

  async list(): Promise<StoredProfile[]> {
    const rows = await this.#deps.store.db.selectFrom('security_profiles').select('name').orderBy('name').execute();
    return Promise.all(rows.map((r) => this.get(r.name)));
  }

  async delete(name: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('security_profiles').where('name', '=', name).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw notFound(name);
      await trx.deleteFrom('security_profile_groups').where('profile', '=', name).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.profile.delete', outcome: 'success', target: `profile:${name}` }]);
    });
    this.#changed();
  }

  async attach(name: string, group: string, actor: Actor): Promise<void> {
    const { db } = this.#deps.store;
    await this.get(name);
    if ((await db.selectFrom('thing_groups').select('id').where('name', '=', group).executeTakeFirst()) === undefined) throw new FleetwardError('FW_ERR_NOT_FOUND', `no group named ${group}`);
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('security_profile_groups').values({ profile: name, group_name: group, created_at: this.#deps.clock.now().toISOString(), created_by: actor.name }).onConflict((oc) => oc.columns(['profile', 'group_name']).doNothing()).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.profile.attach', outcome: 'success', target: `profile:${name}`, details: { group } }]);
    });
    this.#changed();
  }

  async detach(name: string, group: string, actor: Actor): Promise<void> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('security_profile_groups').where('profile', '=', name).where('group_name', '=', group).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `profile ${name} is not attached to ${group}`);
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'monitor.profile.detach', outcome: 'success', target: `profile:${name}`, details: { group } }]);
    });
    this.#changed();
  }

  /**
   * What detection needs for a window: every profile, parsed, and for each thing the profiles that
   * apply to it (through a group it is in, or one of that group's ancestors). A stored document
   * that no longer parses (a custom metric undeclared since) is skipped, not fatal.
   */
  async assignments(): Promise<{ readonly profiles: ReadonlyMap<string, SecurityProfile>; readonly byThing: ReadonlyMap<string, readonly string[]>; readonly byGroup: ReadonlyMap<string, readonly string[]> }> {
    const { db } = this.#deps.store;
    const profiles = new Map<string, SecurityProfile>();
    const customKinds = (await this.#deps.customKinds?.()) ?? new Map<string, MetricKind>();
    for (const row of await db.selectFrom('security_profiles').select(['name', 'document']).execute()) {
      try {
        profiles.set(row.name, parseSecurityProfile(JSON.parse(row.document), customKinds));
      } catch {
        // Reported by `monitor profiles list` (the document is shown); detection goes on without it.
      }
    }
    const attachments = await db.selectFrom('security_profile_groups').select(['profile', 'group_name']).execute();
    const byThing = new Map<string, string[]>();
    // The groups profiles are attached to, for things that join them between refreshes (a thing's effective groups include ancestors).
    const byGroup = new Map<string, string[]>();
    for (const { profile, group_name } of attachments) if (profiles.has(profile)) byGroup.set(group_name, [...(byGroup.get(group_name) ?? []), profile]);
    if (attachments.length === 0) return { profiles, byThing, byGroup };
    const groups = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id']).execute();
    for (const { profile, group_name } of attachments) {
      if (!profiles.has(profile)) continue;
      const root = groups.find((g) => g.name === group_name);
      if (root === undefined) continue;
      const ids = [root.id];
      for (let i = 0; i < ids.length; i += 1) ids.push(...groups.filter((g) => g.parent_id === ids[i]).map((g) => g.id));
      const members = await db.selectFrom('group_members').innerJoin('things', 'things.id', 'group_members.thing_id').select('things.name').where('group_members.group_id', 'in', ids).execute();
      for (const { name } of members) {
        const list = byThing.get(name);
        if (list === undefined) byThing.set(name, [profile]);
        else if (!list.includes(profile)) list.push(profile);
      }
    }
    return { profiles, byThing, byGroup };
  }
}

function notFound(name: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `no security profile named ${name}`);
}
