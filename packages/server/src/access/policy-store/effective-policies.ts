import { FleetwardError } from '@fleetward/protocol';
import { PreparedQuery } from '../../store/prepared-query.js';
import type { Store } from '../../store/store.js';
import { DEFAULT_DEVICE_POLICY, DEFAULT_DEVICE_POLICY_NAME, effectivePolicies, type AttachmentTarget, type ConnectionFacts, type NamedPolicy } from '../policy/index.js';
import { changeCursor } from './policy-changes.js';
import type { DocumentCache } from './policy-records.js';

/** What the policy store needs of the registry's groups (Groups implements it). */
export interface GroupAncestry {
  groupsOf(thing: string): Promise<{ readonly effective: readonly string[] }>;
}

/** Who a connection is, for finding its policies. */
export interface PolicyScope {
  /** The thing's name; null for a connection without a thing (it then gets no default policy). */
  readonly thing: string | null;
  /** The thing's groups with their ancestors. */
  readonly groups: readonly string[];
  /** The serial of the certificate it connects with. */
  readonly serial: string | null;
}

/** A policy as compiled for a connection: its name, the document of its default version, and how it applies. */
export interface EffectiveStoredPolicy extends NamedPolicy {
  readonly version: number;
  /** The first attachment that brought it in; null for the default device policy given to a thing with none. */
  readonly via: AttachmentTarget | null;
}

export interface EffectiveSet {
  /** The change cursor read before loading: poll `changesSince` from here and no change is missed. */
  readonly cursor: number;
  readonly thing: NonNullable<ConnectionFacts['thing']> & { readonly state: string };
  readonly certificate: string | null;
  readonly policies: readonly EffectiveStoredPolicy[];
  /** True when nothing is attached and the default device policy applies. */
  readonly usedDefault: boolean;
}

/** Loads effective policies: attachments through effectivePolicies, the default device policy as fallback. */
export class EffectivePolicies {
  readonly #store: Store;
  readonly #groups: GroupAncestry;
  readonly #documents: DocumentCache;

  constructor(store: Store, groups: GroupAncestry, documents: DocumentCache) {
    this.#store = store;
    this.#groups = groups;
    this.#documents = documents;
  }

  async policiesFor(scope: PolicyScope): Promise<EffectiveStoredPolicy[]> {
    const rows = await attachedPolicies.run(this.#store.db, scope.thing, scope.groups, scope.serial);
    const byPolicy = new Map(rows.map((r) => [r.policy, r]));
    const attachments = rows.map((r) => ({ policy: r.policy, target: { kind: r.target_kind as AttachmentTarget['kind'], name: r.target_name } }));
    const effective = effectivePolicies(attachments, scope.thing, scope.groups, scope.serial).map((e) => {
      const row = byPolicy.get(e.policy);
      if (row === undefined) throw new FleetwardError('FW_ERR_INTERNAL', `attachment of ${e.policy} vanished`);
      return { name: e.policy, version: row.default_version, document: this.#documents.parse(row.document), via: e.via };
    });
    if (effective.length > 0 || scope.thing === null) return effective;
    return [await this.#defaultPolicy()];
  }

  async effectiveFor(thing: string, certificateSerial: string | null): Promise<EffectiveSet> {
    const { db } = this.#store;
    const cursor = await changeCursor(db);
    const row = await db.selectFrom('things').select(['id', 'name', 'type', 'state']).where('name', '=', thing).executeTakeFirst();
    if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `thing ${thing} does not exist`, { thing });
    const attributes = await db.selectFrom('thing_attributes').select(['key', 'value']).where('thing_id', '=', row.id).execute();
    const { effective: groups } = await this.#groups.groupsOf(thing);
    const policies = await this.policiesFor({ thing, groups, serial: certificateSerial });
    return {
      cursor,
      thing: { name: row.name, type: row.type, state: row.state, attributes: Object.fromEntries(attributes.map((a) => [a.key, a.value])), groups },
      certificate: certificateSerial,
      policies,
      usedDefault: policies.length === 1 && policies[0]?.via === null,
    };
  }

  /** The stored default device policy; the built-in one if the row is missing (it cannot be deleted). */
  async #defaultPolicy(): Promise<EffectiveStoredPolicy> {
    const [row] = await defaultPolicy.run(this.#store.db);
    if (!row) return { name: DEFAULT_DEVICE_POLICY_NAME, version: 0, document: DEFAULT_DEVICE_POLICY, via: null };
    return { name: DEFAULT_DEVICE_POLICY_NAME, version: row.default_version, document: this.#documents.parse(row.document), via: null };
  }
}

// Prepared: admission asks these for every connect (a shape per group count, compiled once).
const attachedPolicies = new PreparedQuery((db, thing: string | null, groups: readonly string[], serial: string | null) =>
  db
    .selectFrom('policy_attachments')
    .innerJoin('policies', 'policies.name', 'policy_attachments.policy')
    .innerJoin('policy_versions', (join) => join.onRef('policy_versions.policy', '=', 'policies.name').onRef('policy_versions.version', '=', 'policies.default_version'))
    .select(['policy_attachments.policy', 'policy_attachments.target_kind', 'policy_attachments.target_name', 'policies.default_version', 'policy_versions.document'])
    .where((eb) =>
      eb.or([
        ...(thing === null ? [] : [eb.and([eb('policy_attachments.target_kind', '=', 'thing'), eb('policy_attachments.target_name', '=', thing)])]),
        ...(groups.length === 0 ? [] : [eb.and([eb('policy_attachments.target_kind', '=', 'group'), eb('policy_attachments.target_name', 'in', [...groups])])]),
        ...(serial === null ? [] : [eb.and([eb('policy_attachments.target_kind', '=', 'certificate'), eb('policy_attachments.target_name', '=', serial)])]),
      ]),
    )
    .orderBy('policy_attachments.created_at')
    .orderBy('policy_attachments.policy'),
);
const defaultPolicy = new PreparedQuery((db) =>
  db
    .selectFrom('policies')
    .innerJoin('policy_versions', (join) => join.onRef('policy_versions.policy', '=', 'policies.name').onRef('policy_versions.version', '=', 'policies.default_version'))
    .select(['policies.default_version', 'policy_versions.document'])
    .where('policies.name', '=', DEFAULT_DEVICE_POLICY_NAME),
);
