import type { Kysely } from 'kysely';
import semver from 'semver';
import type { Tables } from '../../store/tables.js';

export const CANNOT_UPDATE_REASONS = ['incompatible-hardware', 'failing', 'agent-too-old'] as const;
export type CannotUpdateReason = (typeof CANNOT_UPDATE_REASONS)[number];

/** Failed jobs since its last success after which a device is listed for replacement, by default. */
export const DEFAULT_CANNOT_UPDATE_AFTER_FAILURES = 3;

export interface CannotUpdate {
  readonly thing: string;
  /**
   * `incompatible-hardware`: a deployment found its type unsupported; `failing`: too many failed
   * jobs since its last success; `agent-too-old`: its agent is older than the oldest that takes updates.
   */
  readonly reasons: readonly CannotUpdateReason[];
  readonly failedJobs: number;
  /** The deployment of the latest failure or refusal (null: none failed, the agent is too old). */
  readonly lastDeployment: string | null;
  readonly since: string;
}

/**
 * Devices to list for replacement (rule 4): a deployment found their hardware unsupported (and none
 * has updated them since), they failed `failuresThreshold` jobs (failed, or timed out after
 * starting) since their last successful update, or their agent is older than `minAgentVersion`.
 */
export async function devicesToReplace(db: Kysely<Tables>, options: { readonly failuresThreshold: number; readonly minAgentVersion: string | undefined; readonly only: string | undefined }): Promise<CannotUpdate[]> {
  const { failuresThreshold: threshold, only } = options;
  let successQuery = db
    .selectFrom('deployment_jobs')
    .select((eb) => ['thing', eb.fn.max('updated_at').as('last')])
    .where('state', '=', 'succeeded');
  let badQuery = db
    .selectFrom('deployment_jobs')
    .select(['thing', 'deployment_id', 'state', 'reason', 'started_at', 'updated_at'])
    .where((eb) => eb.or([eb('state', '=', 'failed'), eb.and([eb('state', '=', 'timed-out'), eb('started_at', 'is not', null)]), eb.and([eb('state', '=', 'rejected'), eb('reason', '=', 'incompatible')])]));
  if (only !== undefined) {
    successQuery = successQuery.where('thing', '=', only);
    badQuery = badQuery.where('thing', '=', only);
  }
  const successes = await successQuery.groupBy('thing').execute();
  const lastSuccess = new Map(successes.map((s) => [s.thing, s.last]));
  const bad = await badQuery.orderBy('updated_at').execute();
  const byThing = new Map<string, { incompatible: boolean; failed: number; last: string; deployment: string }>();
  for (const row of bad) {
    const success = lastSuccess.get(row.thing);
    if (success !== undefined && success !== null && success >= row.updated_at) continue;
    const entry = byThing.get(row.thing) ?? { incompatible: false, failed: 0, last: row.updated_at, deployment: row.deployment_id };
    if (row.state === 'rejected') entry.incompatible = true;
    else entry.failed++;
    entry.last = row.updated_at;
    entry.deployment = row.deployment_id;
    byThing.set(row.thing, entry);
  }
  const listed = new Map<string, CannotUpdate>();
  for (const [thing, e] of byThing) {
    if (!e.incompatible && e.failed < threshold) continue;
    const reasons: CannotUpdateReason[] = [...(e.incompatible ? (['incompatible-hardware'] as const) : []), ...(e.failed >= threshold ? (['failing'] as const) : [])];
    listed.set(thing, { thing, reasons, failedJobs: e.failed, lastDeployment: e.deployment, since: e.last });
  }
  for (const old of await agentsTooOld(db, options.minAgentVersion, only)) {
    const entry = listed.get(old.thing);
    listed.set(old.thing, entry === undefined ? { thing: old.thing, reasons: ['agent-too-old'], failedJobs: 0, lastDeployment: null, since: old.reportedAt } : { ...entry, reasons: [...entry.reasons, 'agent-too-old'] });
  }
  return [...listed.values()].sort((a, b) => (a.thing < b.thing ? -1 : 1));
}

/** Devices whose reported agent is older than the oldest that takes update jobs. */
async function agentsTooOld(db: Kysely<Tables>, minimum: string | undefined, only: string | undefined): Promise<{ thing: string; reportedAt: string }[]> {
  if (minimum === undefined) return [];
  let query = db.selectFrom('device_software').select(['thing', 'agent_version', 'reported_at']);
  if (only !== undefined) query = query.where('thing', '=', only);
  const rows = await query.execute();
  return rows.filter((r) => semver.valid(r.agent_version) !== null && semver.lt(r.agent_version, minimum)).map((r) => ({ thing: r.thing, reportedAt: r.reported_at }));
}
