import type { Database } from '../../store/store.js';

/**
 * What changed since a cursor that may change what a live connection is allowed to do. The
 * database writes a change row in the same transaction as each change (migration 0009 triggers),
 * whoever makes it — this node, another node, the CLI on the data folder:
 * - a policy's default version changed, or the policy was deleted → `policies`;
 * - a policy was attached or detached → `policies` and the thing, group or certificate;
 * - a thing joined or left a group → `things` and `groups`;
 * - a thing's type or attributes changed → `things`;
 * - a group moved under another parent → `groups`.
 */
export interface PolicyChanges {
  /** Pass this to the next `changesSince`. */
  readonly cursor: number;
  /**
   * True when changes cannot be listed (the cursor is older than the change log keeps, further
   * behind than one poll reads, or from another database): re-evaluate every live connection.
   */
  readonly reset: boolean;
  readonly policies: readonly string[];
  readonly things: readonly string[];
  readonly groups: readonly string[];
  readonly certificates: readonly string[];
}

/** The most changes one poll lists; further behind, a poll answers `reset`. */
export const POLICY_CHANGES_PER_POLL = 1000;

/** The newest change's number: where a poller starts. */
export async function changeCursor(db: Database): Promise<number> {
  const head = await db.selectFrom('policy_change_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow();
  return Number(head.seq);
}

/**
 * The changes after `cursor`. Writers number changes under the head row's lock, so numbers are
 * contiguous and become visible in order: a gap means the log was pruned past the cursor.
 */
export async function changesSince(db: Database, cursor: number): Promise<PolicyChanges> {
  const head = await changeCursor(db);
  const empty = { cursor: head, policies: [], things: [], groups: [], certificates: [] };
  if (cursor === head) return { ...empty, reset: false };
  if (!Number.isSafeInteger(cursor) || cursor > head || head - cursor > POLICY_CHANGES_PER_POLL) return { ...empty, reset: true };
  const rows = await db.selectFrom('policy_changes').selectAll().where('seq', '>', cursor).where('seq', '<=', head).orderBy('seq').execute();
  if (rows.length !== head - cursor || Number(rows[0]?.seq) !== cursor + 1) return { ...empty, reset: true };
  const collect = (values: readonly (string | null)[]) => [...new Set(values.filter((v): v is string => v !== null))].sort();
  return {
    cursor: head,
    reset: false,
    policies: collect(rows.map((r) => r.policy)),
    things: collect(rows.map((r) => r.thing)),
    groups: collect(rows.map((r) => r.grp)),
    certificates: collect(rows.map((r) => r.certificate)),
  };
}

/** What a live connection's compiled policy was built from (see PolicyStore.policiesFor). */
export interface ConnectionScope {
  readonly thing: string | null;
  /** The thing's groups with their ancestors. */
  readonly groups: readonly string[];
  readonly serial: string | null;
  /** The names of the policies it was compiled from (including the default device policy). */
  readonly policies: readonly string[];
}

/** Whether a connection must be re-evaluated after these changes. Pure; cheap enough per connection. */
export function affectsConnection(changes: PolicyChanges, scope: ConnectionScope): boolean {
  if (changes.reset) return true;
  return (
    (scope.thing !== null && changes.things.includes(scope.thing)) ||
    (scope.serial !== null && changes.certificates.includes(scope.serial)) ||
    scope.groups.some((g) => changes.groups.includes(g)) ||
    scope.policies.some((p) => changes.policies.includes(p))
  );
}
