import type { Clock } from '../../clock.js';
import type { Store } from '../../store/store.js';
import { analyzePolicies, compilePolicies, DEFAULT_DEVICE_POLICY_NAME, effectivePolicies, type AnalyzedThing, type Attachment, type Finding, type PolicyAction, type PolicyUsage } from '../policy/index.js';
import type { DocumentCache } from './policy-records.js';

export interface FleetAnalysis {
  readonly findings: readonly Finding[];
  readonly unusedDays: number;
  /**
   * Actions `unused-action` is judged for. The audit trail records every connect (`mqtt.connect`),
   * not each publish, subscribe or delivery (that would let a busy fleet flood it), so only
   * `mqtt:connect` can be shown unused; the other actions are not judged.
   */
  readonly usageJudged: readonly PolicyAction[];
  readonly things: number;
}

export const ANALYZE_LIMITS = {
  /** Longest `unused-action` window, in days. */
  maxUnusedDays: 365,
  /** Connect events read from the audit trail for usage; beyond this the oldest in the window are ignored. */
  maxConnectEvents: 100_000,
} as const;

interface LoadedPolicy {
  readonly name: string;
  readonly document: ReturnType<DocumentCache['parse']>;
  readonly createdAt: string;
}

/**
 * `fleetward policies analyze`: loads every policy (its version in force), attachment and thing —
 * things with nothing attached count as attached to the default device policy, as they are at the
 * gateway — and the connects of the last `unusedDays` days, then runs the pure analyzer.
 */
export async function analyzeFleet(deps: { readonly store: Store; readonly clock: Clock; readonly documents: DocumentCache }, unusedDays: number): Promise<FleetAnalysis> {
  const { db } = deps.store;
  const now = deps.clock.now();
  const policies: LoadedPolicy[] = (
    await db
      .selectFrom('policies')
      .innerJoin('policy_versions', (join) => join.onRef('policy_versions.policy', '=', 'policies.name').onRef('policy_versions.version', '=', 'policies.default_version'))
      .select(['policies.name', 'policy_versions.document', 'policy_versions.created_at'])
      .orderBy('policies.name')
      .execute()
  ).map((r) => ({ name: r.name, document: deps.documents.parse(r.document), createdAt: r.created_at }));
  const attachments: Attachment[] = (await db.selectFrom('policy_attachments').select(['policy', 'target_kind', 'target_name']).execute()).map((r) => ({
    policy: r.policy,
    target: { kind: r.target_kind as Attachment['target']['kind'], name: r.target_name },
  }));
  const things = await loadThings(deps.store);
  // A thing that gets nothing through attachments gets the default device policy at the gateway.
  const fallback = things
    .filter((t) => effectivesOf(t, attachments).length === 0)
    .map((t): Attachment => ({ policy: DEFAULT_DEVICE_POLICY_NAME, target: { kind: 'thing', name: t.facts.thing?.name ?? '' } }));
  const inForce = [...attachments, ...fallback];
  const usage = await connectUsage(deps.store, policies, inForce, things, new Date(now.getTime() - unusedDays * 86_400_000));
  const findings = analyzePolicies({ policies, attachments: inForce, things, usage, now, unusedDays }).filter(
    // The default policy is in force for every thing that gets nothing else, now or later.
    (f) => !(f.code === 'unattached-policy' && f.policy === DEFAULT_DEVICE_POLICY_NAME) && (f.code !== 'unused-action' || f.action === 'mqtt:connect'),
  );
  return { findings, unusedDays, usageJudged: ['mqtt:connect'], things: things.length };
}

function effectivesOf(thing: AnalyzedThing, attachments: readonly Attachment[]): string[] {
  const name = thing.facts.thing?.name ?? null;
  const groups = thing.facts.thing?.groups ?? [];
  const serials = thing.certificates ?? [];
  const lists = serials.length === 0 ? [effectivePolicies(attachments, name, groups, null)] : serials.map((s) => effectivePolicies(attachments, name, groups, s));
  return [...new Set(lists.flat().map((p) => p.policy))];
}

/** Every thing that is not decommissioned, with its facts, group ancestry and active device certificates. */
async function loadThings(store: Store): Promise<AnalyzedThing[]> {
  const { db } = store;
  const rows = await db.selectFrom('things').select(['id', 'name', 'type']).where('state', '<>', 'decommissioned').orderBy('name').execute();
  const attributes = await db.selectFrom('thing_attributes').innerJoin('things', 'things.id', 'thing_attributes.thing_id').select(['thing_attributes.thing_id', 'key', 'value']).where('things.state', '<>', 'decommissioned').execute();
  const groups = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id']).execute();
  const members = await db.selectFrom('group_members').select(['thing_id', 'group_id']).execute();
  const certificates = await db.selectFrom('certificates').select(['thing_id', 'serial']).where('kind', '=', 'device').where('status', '=', 'active').execute();
  const byId = new Map(groups.map((g) => [g.id, g]));
  const ancestry = (groupId: string): string[] => {
    const chain: string[] = [];
    for (let g = byId.get(groupId); g !== undefined && chain.length <= groups.length; g = g.parent_id === null ? undefined : byId.get(g.parent_id)) chain.push(g.name);
    return chain;
  };
  const group = <T extends { thing_id: string | null }>(list: readonly T[]) => {
    const map = new Map<string, T[]>();
    for (const item of list) if (item.thing_id !== null) map.set(item.thing_id, [...(map.get(item.thing_id) ?? []), item]);
    return map;
  };
  const attributesOf = group(attributes);
  const membersOf = group(members);
  const certificatesOf = group(certificates);
  return rows.map((row) => ({
    facts: {
      thing: {
        name: row.name,
        type: row.type,
        attributes: Object.fromEntries((attributesOf.get(row.id) ?? []).map((a) => [a.key, a.value])),
        groups: [...new Set((membersOf.get(row.id) ?? []).flatMap((m) => ancestry(m.group_id)))].sort(),
      },
    },
    certificates: (certificatesOf.get(row.id) ?? []).map((c) => c.serial),
  }));
}

/**
 * Which connect statement let each recent connect in: successful `mqtt.connect`/`mqtt.takeover`
 * events name the thing, the client id and the certificate; the thing's policies in force now
 * decide which statement allows that client id (an approximation when policies changed since).
 */
async function connectUsage(store: Store, policies: readonly LoadedPolicy[], attachments: readonly Attachment[], things: readonly AnalyzedThing[], since: Date): Promise<PolicyUsage[]> {
  const events = await store.db
    .selectFrom('audit_events')
    .select(['ts', 'target', 'details'])
    .where('action', 'in', ['mqtt.connect', 'mqtt.takeover'])
    .where('outcome', '=', 'success')
    .where('ts', '>=', since.toISOString())
    .orderBy('ts', 'desc')
    .limit(ANALYZE_LIMITS.maxConnectEvents)
    .execute();
  const latest = new Map<string, { thing: string; clientId: string; serial: string | null; ts: string }>();
  for (const event of events) {
    if (event.target?.startsWith('thing:') !== true) continue;
    const details = parseDetails(event.details);
    if (typeof details.clientId !== 'string') continue;
    const thing = event.target.slice('thing:'.length);
    const serial = typeof details.serial === 'string' ? details.serial : null;
    const key = JSON.stringify([thing, details.clientId, serial]);
    if (!latest.has(key)) latest.set(key, { thing, clientId: details.clientId, serial, ts: event.ts });
  }
  const byName = new Map(policies.map((p) => [p.name, p]));
  const byThing = new Map(things.map((t) => [t.facts.thing?.name, t]));
  const usage: PolicyUsage[] = [];
  for (const use of latest.values()) {
    const thing = byThing.get(use.thing);
    if (thing === undefined) continue;
    const names = effectivePolicies(attachments, use.thing, thing.facts.thing?.groups ?? [], use.serial).map((e) => e.policy);
    const compiled = compilePolicies(names.flatMap((n) => byName.get(n) ?? []), { ...thing.facts, ...(use.serial !== null && { cert: { serial: use.serial } }), clientId: use.clientId }, { cacheEntriesPerAction: 0 });
    const decision = compiled.decide('mqtt:connect', use.clientId);
    if (decision.reason === 'allowed') {
      for (const ref of [decision.statement, ...(decision.together ?? [])]) usage.push({ policy: ref.policy, statement: ref.index, action: 'mqtt:connect', lastUsedAt: use.ts });
    }
  }
  return usage;
}

function parseDetails(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
