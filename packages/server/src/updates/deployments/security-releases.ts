import type { Database } from '../../store/store.js';

/**
 * Which things automatic security updates reach (rule 4, issue 7 item 5). Each group opts in or
 * out (`thing_groups.auto_security_updates`, on by default). Opting a group out opts out the groups
 * nested below it too, and a thing in any opted-out group is left out even if another of its
 * groups opted in: an operator who opted out (a medical ward, a line under validation) must not be
 * overridden by some other group's default. Things in no group are not covered. Decommissioned
 * things never are.
 */

export interface GroupAutoUpdates {
  readonly group: string;
  /** The group's own setting. */
  readonly autoSecurityUpdates: boolean;
  /** Whether its things get them: it and every group above it opted in. */
  readonly effective: boolean;
  /** Things directly in the group. */
  readonly members: number;
}

export interface SecurityAudience {
  /** Things that get the release: name and type. */
  readonly things: readonly { readonly name: string; readonly type: string | null }[];
  /** Opted-in groups (effective), for the deployment's recorded selection. */
  readonly groups: readonly string[];
  /** Groups that opted out (effective) and hold things, with how many of them are left out. */
  readonly optedOut: readonly { readonly group: string; readonly devices: number }[];
}

interface GroupRow {
  readonly id: string;
  readonly name: string;
  readonly parent_id: string | null;
  readonly auto_security_updates: number;
}

export async function groupAutoUpdates(db: Database): Promise<GroupAutoUpdates[]> {
  const groups = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id', 'auto_security_updates']).execute();
  const members = await db
    .selectFrom('group_members')
    .select((eb) => ['group_id', eb.fn.countAll<string | number>().as('n')])
    .groupBy('group_id')
    .execute();
  const effective = effectiveSettings(groups);
  return groups
    .map((g) => ({ group: g.name, autoSecurityUpdates: g.auto_security_updates === 1, effective: effective.get(g.id) === true, members: Number(members.find((m) => m.group_id === g.id)?.n ?? 0) }))
    .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
}

export async function securityAudience(db: Database): Promise<SecurityAudience> {
  const groups = await db.selectFrom('thing_groups').select(['id', 'name', 'parent_id', 'auto_security_updates']).execute();
  const effective = effectiveSettings(groups);
  const memberships = await db
    .selectFrom('group_members')
    .innerJoin('things', 'things.id', 'group_members.thing_id')
    .select(['group_members.group_id', 'things.name', 'things.type'])
    .where('things.state', '!=', 'decommissioned')
    .execute();
  const optedIn = new Map<string, { name: string; type: string | null }>();
  const optedOutThings = new Set<string>();
  const optedOutCounts = new Map<string, Set<string>>();
  for (const m of memberships) {
    if (effective.get(m.group_id) === true) {
      optedIn.set(m.name, { name: m.name, type: m.type });
    } else {
      optedOutThings.add(m.name);
      const set = optedOutCounts.get(m.group_id) ?? new Set<string>();
      set.add(m.name);
      optedOutCounts.set(m.group_id, set);
    }
  }
  const things = [...optedIn.values()].filter((t) => !optedOutThings.has(t.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
  const nameOf = (id: string) => groups.find((g) => g.id === id)?.name ?? id;
  return {
    things,
    groups: groups.filter((g) => effective.get(g.id) === true).map((g) => g.name).sort(),
    optedOut: [...optedOutCounts.entries()].map(([id, set]) => ({ group: nameOf(id), devices: set.size })).sort((a, b) => (a.group < b.group ? -1 : 1)),
  };
}

/** A group's effective setting: on only when it and all its ancestors are on. */
function effectiveSettings(groups: readonly GroupRow[]): Map<string, boolean> {
  const byId = new Map(groups.map((g) => [g.id, g]));
  const result = new Map<string, boolean>();
  const resolve = (group: GroupRow, depth: number): boolean => {
    const known = result.get(group.id);
    if (known !== undefined) return known;
    const parent = group.parent_id === null ? undefined : byId.get(group.parent_id);
    // Nesting is bounded (GROUP_LIMITS.maxDepth); the depth guard only protects against a corrupt cycle.
    const value = group.auto_security_updates === 1 && (parent === undefined || (depth < 16 && resolve(parent, depth + 1)));
    result.set(group.id, value);
    return value;
  };
  for (const group of groups) resolve(group, 0);
  return result;
}
