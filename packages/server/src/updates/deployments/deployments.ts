import { createHash, randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { FleetwardError, isJobId, MAX_PENDING_JOBS, type JobState, type JobUpdate, type JobUpdateAccepted, type PendingJobs, type UpdateJob } from '@fleetward/protocol';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { JsonValue } from '../../json.js';
import { LIST_LIMIT_MAX, type Thing, type ThingPage, type ThingQuery } from '../../identity/registry/things.js';
import { lockForTransaction } from '../../store/locks.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { UPDATES_ACTOR, type FirmwareArtifact, type RaiseAlert, type UpdateAlert } from '../types.js';
import { deploymentOf, emptyCounts, jobOf, parseSpec, planJobOf, type Deployment, type DeploymentJob, type PhaseProgress } from './deployment-view.js';
import type { HealthProvider, HealthSample } from './health-gate.js';
import { assignPhases, planRollout, type RolloutPlan } from './rollout-plan.js';
import { DEFAULT_CANNOT_UPDATE_AFTER_FAILURES, devicesToReplace, type CannotUpdate } from './cannot-update.js';
import { groupAutoUpdates, securityAudience, type GroupAutoUpdates } from './security-releases.js';
import { checkSelection, DEPLOYMENT_LIMITS, rolloutSpec, type DeploymentRequest, type RolloutSpec, type Selection, type StoredSpec } from './spec.js';
import { ACTIVE_DEPLOYMENT_STATES, canTransitionDeployment, checkJobReport, isDeploymentState, type DeploymentState } from './states.js';

/** The registry, as deployments read it (identity/registry `Things`). */
export interface DeploymentThings {
  list(query: ThingQuery): Promise<ThingPage>;
  get(name: string): Promise<Thing>;
}

export interface ArtifactSource {
  get(target: string): Promise<FirmwareArtifact | null>;
}

export interface DeploymentsDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly things: DeploymentThings;
  readonly artifacts: ArtifactSource;
  /** Pushes a device its pending jobs (`$fw/things/{thing}/jobs/notify`). */
  readonly notify: (thing: string, jobs: PendingJobs) => void;
  readonly jobUrls: { readonly metadataUrl: string; readonly targetsUrl: string };
  readonly raiseAlert: RaiseAlert;
  readonly health?: HealthProvider;
  /** The rollout of automatic security deployments (defaults: DEFAULT_ROLLOUT). */
  readonly securityRollout?: Omit<DeploymentRequest, 'target' | 'selection'>;
  /** Failed jobs since its last success after which a device is listed for replacement. */
  readonly cannotUpdateAfterFailures?: number;
  /** The oldest agent version that takes update jobs; devices reporting an older one are listed. */
  readonly minAgentVersion?: string;
}

export interface JobFilter {
  readonly state?: JobState;
  readonly phase?: number;
  /** Things sort by name; a page starts after this one. */
  readonly after?: string;
  readonly limit?: number;
}

export interface TickResult {
  readonly deployment: string;
  readonly state: DeploymentState;
  readonly released: number;
  readonly timedOut: number;
  readonly cancelled: number;
}

export interface SecurityReleaseResult {
  readonly deployment: Deployment | null;
  /** Devices in opted-in groups that cannot take it (hardware), each alerted. */
  readonly blocked: readonly { readonly thing: string; readonly reason: 'incompatible' }[];
  /** Groups that opted out and hold devices, each alerted. */
  readonly optedOut: readonly { readonly group: string; readonly devices: number }[];
}

/** At most this many things per health-provider call and cohort. */
export const HEALTH_SAMPLE_LIMIT = 1000;
/** At most this many alerts a security release raises for single devices; the rest are summed up in one. */
const MAX_DEVICE_ALERTS = 100;
const CHUNK = 500;
const OPEN_STATES: readonly JobState[] = ['queued', 'in-progress'];

interface ResolvedThing {
  readonly name: string;
  readonly type: string | null;
}

/**
 * Update deployments (rule 4): which devices get which signed artifact, in phases with rate
 * limits, maintenance windows, abort thresholds, stall timeouts and health gating; the jobs
 * devices see and report on. Decisions come from the pure planner (rollout-plan.ts); this class
 * reads and writes the rows, one transaction per deployment, so several nodes can tick at once.
 */
export class Deployments {
  readonly #deps: DeploymentsDependencies;

  constructor(deps: DeploymentsDependencies) {
    this.#deps = deps;
  }

  /**
   * Creates a deployment of a signed artifact to the selected things; audited. At creation a
   * device whose type the artifact is not built for gets a `rejected` job (incompatible), one that
   * reported a higher security version a `rejected` job (rollback), and one that reported running
   * this version a `succeeded` job: none of them is ever released. The rest are spread over the
   * phases in a stable pseudo-random order (so the canaries are not always the same names).
   */
  async create(request: DeploymentRequest, actor: Actor): Promise<Deployment> {
    const target = checkTarget(request.target);
    const selection = checkSelection(request.selection ?? {});
    const rollout = rolloutSpec(request);
    const artifact = await this.#deployable(target);
    const things = await this.#resolve(selection);
    if (things.length === 0) throw new FleetwardError('FW_ERR_VALIDATION', 'the selection matches no things', { field: 'selection' });
    return this.#create(artifact, things, selection, rollout, false, actor);
  }

  async get(id: string): Promise<Deployment> {
    const { db } = this.#deps.store;
    const row = await db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    const groups = await db
      .selectFrom('deployment_jobs')
      .select((eb) => ['phase', 'state', eb.fn.countAll<string | number>().as('n'), eb.fn.count<string | number>('released_at').as('released')])
      .where('deployment_id', '=', id)
      .groupBy(['phase', 'state'])
      .execute();
    const counts = emptyCounts();
    const byPhase = new Map<number, ReturnType<typeof emptyCounts>>();
    let currentPhase: number | null = null;
    for (const g of groups) {
      const n = Number(g.n);
      const notReleased = g.state === 'queued' ? n - Number(g.released) : 0;
      const state = g.state as JobState;
      counts[state] += n;
      counts.total += n;
      counts.notReleased += notReleased;
      if (g.phase >= 0) {
        const phase = byPhase.get(g.phase) ?? emptyCounts();
        phase[state] += n;
        phase.total += n;
        phase.notReleased += notReleased;
        byPhase.set(g.phase, phase);
      }
      if (OPEN_STATES.includes(state) && (currentPhase === null || g.phase < currentPhase)) currentPhase = g.phase;
    }
    const phases: PhaseProgress[] = [...byPhase.entries()].sort(([a], [b]) => a - b).map(([phase, c]) => ({ phase, size: c.total, counts: c }));
    return deploymentOf(row, counts, phases, currentPhase);
  }

  /** Deployments, newest first. */
  async list(filter: { readonly state?: DeploymentState; readonly limit?: number } = {}): Promise<Deployment[]> {
    let select = this.#deps.store.db.selectFrom('deployments').select('id');
    if (filter.state !== undefined) select = select.where('state', '=', filter.state);
    const rows = await select
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(Math.min(Math.max(filter.limit ?? 100, 1), 500))
      .execute();
    return Promise.all(rows.map((r) => this.get(r.id)));
  }

  async jobs(id: string, filter: JobFilter = {}): Promise<{ readonly jobs: readonly DeploymentJob[]; readonly next: string | null }> {
    const { db } = this.#deps.store;
    if (!(await db.selectFrom('deployments').select('id').where('id', '=', id).executeTakeFirst())) throw notFound(id);
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), LIST_LIMIT_MAX);
    let select = db.selectFrom('deployment_jobs').selectAll().where('deployment_id', '=', id);
    if (filter.state !== undefined) select = select.where('state', '=', filter.state);
    if (filter.phase !== undefined) select = select.where('phase', '=', filter.phase);
    if (filter.after !== undefined) select = select.where('thing', '>', filter.after);
    const rows = await select.orderBy('thing').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { jobs: page.map(jobOf), next: rows.length > limit ? (page.at(-1)?.thing ?? null) : null };
  }

  /** Stops a deployment: jobs not started are cancelled (their devices are told), installs in progress finish. */
  async cancel(id: string, actor: Actor): Promise<Deployment> {
    return this.#stop(id, 'cancelled', actor);
  }

  /** Stops releasing jobs until resumed; released jobs go on. */
  async pause(id: string, actor: Actor): Promise<Deployment> {
    await this.#transition(id, 'paused', actor, () => ({ reason: 'operator' }));
    return this.get(id);
  }

  /** Resumes a paused deployment; the health metrics that paused it are accepted and no longer gate it. */
  async resume(id: string, actor: Actor): Promise<Deployment> {
    await this.#transition(id, 'running', actor, (spec, reason) => {
      const regressed = reason === 'health-regression' ? (spec.regressed ?? []) : [];
      return { reason: null, spec: { ...spec, acknowledged: [...new Set([...spec.acknowledged, ...regressed])], regressed: [] }, details: { acknowledged: [...regressed] } };
    });
    return this.get(id);
  }

  /** Runs the rollout one step for every deployment that has something to do. */
  async tick(): Promise<TickResult[]> {
    const { db } = this.#deps.store;
    const rows = await db
      .selectFrom('deployments')
      .select('id')
      .where((eb) =>
        eb.or([
          eb('state', 'in', [...ACTIVE_DEPLOYMENT_STATES]),
          // A stopped deployment still times out the installs it let finish.
          eb.exists(eb.selectFrom('deployment_jobs').select('thing').whereRef('deployment_jobs.deployment_id', '=', 'deployments.id').where('deployment_jobs.state', '=', 'in-progress')),
        ]),
      )
      .orderBy('created_at')
      .execute();
    const results: TickResult[] = [];
    const errors: unknown[] = [];
    for (const { id } of rows) {
      try {
        results.push(await this.#tickOne(id));
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
    return results;
  }

  /** The released, open jobs of a thing, as it is sent them. */
  async pendingJobs(thing: string, clientToken?: string): Promise<PendingJobs> {
    const rows = await this.#deps.store.db
      .selectFrom('deployment_jobs')
      .innerJoin('deployments', 'deployments.id', 'deployment_jobs.deployment_id')
      .select(['deployment_jobs.deployment_id', 'deployment_jobs.state', 'deployment_jobs.released_at', 'deployments.target', 'deployments.spec'])
      .where('deployment_jobs.thing', '=', thing)
      .where('deployment_jobs.state', 'in', [...OPEN_STATES])
      .where('deployment_jobs.released_at', 'is not', null)
      .orderBy('deployment_jobs.released_at')
      .orderBy('deployment_jobs.deployment_id')
      .limit(MAX_PENDING_JOBS)
      .execute();
    const jobs = rows.map((r): UpdateJob => {
      const spec = parseSpec(r.spec);
      return {
        jobId: r.deployment_id,
        deploymentId: r.deployment_id,
        state: r.state as 'queued' | 'in-progress',
        target: r.target,
        version: spec.version,
        securityVersion: spec.securityVersion,
        metadataUrl: this.#deps.jobUrls.metadataUrl,
        targetsUrl: this.#deps.jobUrls.targetsUrl,
        createdAt: r.released_at as string,
      };
    });
    return { v: 1, jobs, ...(clientToken !== undefined && { clientToken }) };
  }

  /**
   * Records a device's report on its own job. FW_ERR_NOT_FOUND for a job that is not this thing's
   * or not released to it (the answer is the same, so a device learns nothing about other devices'
   * jobs); FW_ERR_CONFLICT for a job already final or a transition the job table refuses.
   */
  async report(thing: string, jobId: string, update: JobUpdate): Promise<JobUpdateAccepted> {
    const { db } = this.#deps.store;
    if (!isJobId(jobId)) throw jobNotFound(jobId);
    // Optimistic: the update applies only to the row as read; a concurrent change is read again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await db.selectFrom('deployment_jobs').selectAll().where('deployment_id', '=', jobId).where('thing', '=', thing).executeTakeFirst();
      if (!row || row.released_at === null) throw jobNotFound(jobId);
      const current = row.state as JobState;
      checkJobReport(current, update);
      const now = this.#deps.clock.now().toISOString();
      const final = update.state !== 'queued' && update.state !== 'in-progress';
      const updated = await db
        .updateTable('deployment_jobs')
        .set({
          state: update.state,
          step: update.state === 'in-progress' ? (update.step ?? row.step) : null,
          reason: update.reason ?? null,
          message: update.message ?? null,
          ...(update.bytes !== undefined && { bytes: update.bytes }),
          ...(update.totalBytes !== undefined && { total_bytes: update.totalBytes }),
          ...(update.state === 'in-progress' && row.started_at === null && { started_at: now }),
          ...(final && { finished_at: now }),
          updated_at: now,
        })
        .where('deployment_id', '=', jobId)
        .where('thing', '=', thing)
        .where('state', '=', row.state)
        .where('updated_at', '=', row.updated_at)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) continue;
      if (final) {
        // A refusal by the device (signature, rollback, incompatible) may be an attack on the update path: on the record.
        const outcome = update.state === 'succeeded' ? 'success' : update.state === 'rejected' ? 'denied' : 'failure';
        await this.#deps.audit.record({ actor: `thing:${thing}`, action: 'deployment.job.finish', outcome, target: `deployment:${jobId}`, details: { state: update.state, ...(update.reason !== undefined && { reason: update.reason }), ...(update.message !== undefined && { message: update.message }) } });
      }
      if (update.state === 'failed') await this.#checkCannotUpdate(thing, jobId);
      return { jobId, state: update.state, ...(update.clientToken !== undefined && { clientToken: update.clientToken }) };
    }
    throw new FleetwardError('FW_ERR_CONFLICT', 'the job changed while the report was recorded; report again', { jobId });
  }

  /** Devices to list for replacement (cannot-update.ts); `only`: just this thing. */
  async cannotUpdate(only?: string): Promise<CannotUpdate[]> {
    return devicesToReplace(this.#deps.store.db, { failuresThreshold: this.#deps.cannotUpdateAfterFailures ?? DEFAULT_CANNOT_UPDATE_AFTER_FAILURES, minAgentVersion: this.#deps.minAgentVersion, only });
  }

  /**
   * Deploys a signed security release to every thing whose groups opted in (security-releases.ts),
   * with the configured security rollout; alerts at once for each device of those groups whose
   * hardware cannot take it and for each opted-out group that holds devices.
   */
  async deploySecurityRelease(artifact: FirmwareArtifact, actor: Actor = UPDATES_ACTOR): Promise<SecurityReleaseResult> {
    if (!artifact.securityRelease) throw new FleetwardError('FW_ERR_VALIDATION', `${artifact.target} is not marked as a security release`, { target: artifact.target });
    if (!artifact.signed) throw unsigned(artifact.target);
    const audience = await securityAudience(this.#deps.store.db);
    const blocked = audience.things.filter((t) => t.type === null || !artifact.hardware.includes(t.type)).map((t) => ({ thing: t.name, reason: 'incompatible' as const }));
    const deployment =
      audience.things.length === 0
        ? null
        : await this.#create(artifact, audience.things, { groups: audience.groups }, rolloutSpec(this.#deps.securityRollout ?? {}), true, actor);
    const alerts: UpdateAlert[] = blocked.slice(0, MAX_DEVICE_ALERTS).map((b) => ({
      kind: 'security-update-blocked',
      message: `${b.thing} cannot receive security release ${artifact.target}: its hardware is not supported`,
      thing: b.thing,
      ...(deployment && { deployment: deployment.id }),
      details: { target: artifact.target, reason: 'incompatible' },
    }));
    if (blocked.length > MAX_DEVICE_ALERTS) {
      alerts.push({ kind: 'security-update-blocked', message: `${blocked.length - MAX_DEVICE_ALERTS} more devices cannot receive security release ${artifact.target}`, details: { target: artifact.target, more: blocked.length - MAX_DEVICE_ALERTS } });
    }
    for (const group of audience.optedOut) {
      alerts.push({ kind: 'security-update-blocked', message: `group ${group.group} opted out of automatic security updates: ${group.devices} devices will not receive ${artifact.target}`, details: { target: artifact.target, group: group.group, devices: group.devices } });
    }
    for (const alert of alerts) await this.#deps.raiseAlert(alert);
    return { deployment, blocked, optedOut: audience.optedOut };
  }

  /** Opts a group in to or out of automatic security updates; audited. */
  async setGroupAutoUpdates(group: string, on: boolean, actor: Actor): Promise<GroupAutoUpdates> {
    await this.#deps.store.db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('thing_groups').set({ auto_security_updates: on ? 1 : 0 }).where('name', '=', group).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) throw new FleetwardError('FW_ERR_NOT_FOUND', `group ${group} does not exist`, { group });
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'group.auto-security-updates', outcome: 'success', target: `group:${group}`, details: { enabled: on } }]);
    });
    const all = await groupAutoUpdates(this.#deps.store.db);
    return all.find((g) => g.group === group) as GroupAutoUpdates;
  }

  /** Every group's setting, and whether it is in effect (groups above can opt out their subtree). */
  async groupAutoUpdates(): Promise<GroupAutoUpdates[]> {
    return groupAutoUpdates(this.#deps.store.db);
  }

  async #deployable(target: string): Promise<FirmwareArtifact> {
    const artifact = await this.#deps.artifacts.get(target);
    if (!artifact) throw new FleetwardError('FW_ERR_NOT_FOUND', `artifact ${target} does not exist`, { target });
    // Only what the targets metadata in force lists can be deployed: devices would refuse anything else.
    if (!artifact.signed) throw unsigned(target);
    return artifact;
  }

  async #resolve(selection: Selection): Promise<ResolvedThing[]> {
    const found = new Map<string, ResolvedThing>();
    const add = (thing: Thing) => {
      if (thing.state === 'decommissioned') return;
      found.set(thing.name, { name: thing.name, type: thing.type });
      if (found.size > DEPLOYMENT_LIMITS.maxDevices) throw new FleetwardError('FW_ERR_VALIDATION', `a deployment addresses at most ${DEPLOYMENT_LIMITS.maxDevices} devices`, { field: 'selection' });
    };
    for (const name of selection.things ?? []) add(await this.#deps.things.get(name));
    for (const group of selection.groups ?? []) for await (const thing of this.#listAll({ group })) add(thing);
    if (selection.query !== undefined) {
      const { thingType, attributes } = selection.query;
      for await (const thing of this.#listAll({ ...(thingType !== undefined && { type: thingType }), ...(attributes !== undefined && { attributes }) })) add(thing);
    }
    return [...found.values()];
  }

  async *#listAll(query: Omit<ThingQuery, 'limit' | 'after'>): AsyncGenerator<Thing> {
    let after: string | undefined;
    do {
      const page = await this.#deps.things.list({ ...query, limit: LIST_LIMIT_MAX, ...(after !== undefined && { after }) });
      yield* page.things;
      after = page.next ?? undefined;
    } while (after !== undefined);
  }

  async #create(artifact: FirmwareArtifact, things: readonly ResolvedThing[], selection: Selection, rollout: RolloutSpec, automatic: boolean, actor: Actor): Promise<Deployment> {
    const { db } = this.#deps.store;
    const id = `dep-${randomBytes(6).toString('hex')}`;
    const now = this.#deps.clock.now().toISOString();
    const software = new Map<string, { version: string; securityVersion: number | null }>();
    for (const chunk of chunks(things.map((t) => t.name))) {
      const rows = await db.selectFrom('device_software').select(['thing', 'firmware_version', 'security_version']).where('thing', 'in', chunk).execute();
      for (const r of rows) software.set(r.thing, { version: r.firmware_version, securityVersion: r.security_version });
    }
    const decided: Tables['deployment_jobs'][] = [];
    const eligible: string[] = [];
    for (const thing of things) {
      const reported = software.get(thing.name);
      const job = (state: JobState, reason: 'incompatible' | 'rollback' | null, message: string) =>
        decided.push({ deployment_id: id, thing: thing.name, phase: -1, state, step: null, reason, message, bytes: null, total_bytes: null, released_at: null, started_at: null, finished_at: now, updated_at: now });
      if (thing.type === null || !artifact.hardware.includes(thing.type)) job('rejected', 'incompatible', `built for ${artifact.hardware.join(', ')}, not ${thing.type ?? 'an untyped thing'}`);
      else if (reported !== undefined && reported.securityVersion !== null && reported.securityVersion > artifact.securityVersion) job('rejected', 'rollback', `runs security version ${reported.securityVersion}, above ${artifact.securityVersion}`);
      else if (reported?.version === artifact.version) job('succeeded', null, `already runs ${artifact.version}`);
      else eligible.push(thing.name);
    }
    // A stable pseudo-random order: phases do not always start with the same (alphabetical) devices.
    const order = (name: string) => createHash('sha256').update(`${id}\n${name}`).digest('hex');
    const ordered = eligible.map((name) => ({ name, key: order(name) })).sort((a, b) => (a.key < b.key ? -1 : 1));
    const phases = assignPhases(ordered.length, rollout);
    const rollouts: Tables['deployment_jobs'][] = ordered.map((t, i) => ({
      deployment_id: id,
      thing: t.name,
      phase: phases[i] ?? 0,
      state: 'queued',
      step: null,
      reason: null,
      message: null,
      bytes: null,
      total_bytes: null,
      released_at: null,
      started_at: null,
      finished_at: null,
      updated_at: now,
    }));
    const spec: StoredSpec = { v: 1, ...rollout, selection, version: artifact.version, securityVersion: artifact.securityVersion, acknowledged: [] };
    const state: DeploymentState = eligible.length === 0 ? 'completed' : 'running';
    const tally = (state: JobState, reason: string | null) => decided.filter((d) => d.state === state && d.reason === reason).length;
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('deployments')
        .values({ id, target: artifact.target, state, spec: JSON.stringify(spec), reason: null, automatic: automatic ? 1 : 0, created_at: now, created_by: actor.name, updated_at: now, phase_started_at: null })
        .execute();
      for (const chunk of chunks([...decided, ...rollouts], 200)) await trx.insertInto('deployment_jobs').values(chunk).execute();
      await this.#deps.audit.recordWithin(trx, [
        {
          ...actorFields(actor),
          action: 'deployment.create',
          outcome: 'success',
          target: `deployment:${id}`,
          details: {
            artifact: artifact.target,
            automatic,
            devices: things.length,
            phases: phaseCounts(phases),
            incompatible: tally('rejected', 'incompatible'),
            rollback: tally('rejected', 'rollback'),
            upToDate: tally('succeeded', null),
          },
        },
      ]);
    });
    return this.get(id);
  }

  async #tickOne(id: string): Promise<TickResult> {
    const { db, dialect } = this.#deps.store;
    const health = await this.#healthSamples(id);
    const now = this.#deps.clock.now();
    const nowIso = now.toISOString();
    const outcome = await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, `fleetward:deployment:${id}`);
      const row = await trx.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      if (!isDeploymentState(row.state)) return null;
      const previous = row.state;
      const spec = parseSpec(row.spec);
      const jobs = (await trx.selectFrom('deployment_jobs').select(['thing', 'phase', 'state', 'reason', 'released_at', 'started_at', 'updated_at']).where('deployment_id', '=', id).execute()).map(planJobOf);
      const plan = planRollout({ spec, state: row.state, jobs, now: now.getTime(), acknowledged: spec.acknowledged, ...(health && { health }) });
      const cancelled = new Set(plan.cancel);
      const releasedBefore = jobs.filter((j) => cancelled.has(j.thing) && j.releasedAt !== null).map((j) => j.thing);
      for (const chunk of chunks(plan.timeOut)) {
        await trx.updateTable('deployment_jobs').set({ state: 'timed-out', reason: 'timed-out', finished_at: nowIso, updated_at: nowIso }).where('deployment_id', '=', id).where('thing', 'in', chunk).where('state', 'in', [...OPEN_STATES]).execute();
      }
      for (const chunk of chunks(plan.cancel)) {
        await trx.updateTable('deployment_jobs').set({ state: 'cancelled', reason: 'cancelled', finished_at: nowIso, updated_at: nowIso }).where('deployment_id', '=', id).where('thing', 'in', chunk).where('state', '=', 'queued').execute();
      }
      for (const chunk of chunks(plan.release)) {
        await trx.updateTable('deployment_jobs').set({ released_at: nowIso, updated_at: nowIso }).where('deployment_id', '=', id).where('thing', 'in', chunk).where('state', '=', 'queued').where('released_at', 'is', null).execute();
      }
      const changed = plan.state !== row.state;
      if (changed || plan.phaseStarted) {
        const nextSpec = plan.regressions.length > 0 ? { ...spec, regressed: plan.regressions.map((r) => r.metric) } : spec;
        await trx
          .updateTable('deployments')
          .set({
            ...(changed && { state: plan.state, reason: plan.reason, updated_at: nowIso }),
            ...(plan.phaseStarted && { phase_started_at: nowIso }),
            ...(nextSpec !== spec && { spec: JSON.stringify(nextSpec) }),
          })
          .where('id', '=', id)
          .execute();
      }
      const events: { action: 'deployment.job.timeout' | 'deployment.abort' | 'deployment.pause' | 'deployment.complete'; target?: string; details: Readonly<Record<string, JsonValue>> }[] = plan.timeOut.map((thing) => ({
        action: 'deployment.job.timeout',
        target: `thing:${thing}`,
        details: { deployment: id },
      }));
      if (changed && plan.state === 'aborted') events.push({ action: 'deployment.abort' as const, details: { reason: plan.reason, ...plan.stats, regressions: plan.regressions.map((r) => r.metric), cancelled: plan.cancel.length } });
      if (changed && plan.state === 'paused') events.push({ action: 'deployment.pause' as const, details: { reason: plan.reason, regressions: plan.regressions.map((r) => r.metric) } });
      if (changed && plan.state === 'completed') events.push({ action: 'deployment.complete' as const, details: { ...plan.stats } });
      if (events.length > 0) {
        await this.#deps.audit.recordWithin(
          trx,
          events.map((e) => ({ actor: UPDATES_ACTOR.name, action: e.action, outcome: 'success' as const, target: e.target ?? `deployment:${id}`, details: e.details })),
        );
      }
      return { plan, previous, releasedBefore };
    });
    if (outcome === null) return { deployment: id, state: 'running', released: 0, timedOut: 0, cancelled: 0 };
    const { plan, previous, releasedBefore } = outcome;
    await this.#notifyAll([...plan.release, ...releasedBefore]);
    await this.#alertTick(id, previous, plan);
    return { deployment: id, state: plan.state, released: plan.release.length, timedOut: plan.timeOut.length, cancelled: plan.cancel.length };
  }

  async #alertTick(id: string, previous: DeploymentState, plan: RolloutPlan): Promise<void> {
    for (const thing of plan.timeOut) {
      await this.#deps.raiseAlert({ kind: 'job-timed-out', message: `${thing} stalled on deployment ${id}: its job timed out`, deployment: id, thing });
    }
    if (plan.state === previous) return;
    const details = { reason: plan.reason, finished: plan.stats.finished, failures: plan.stats.failures, failureRate: plan.stats.failureRate, regressions: plan.regressions.map((r) => ({ ...r })) };
    if (plan.state === 'aborted') {
      const why = plan.reason === 'failure-rate' ? `failure rate ${(plan.stats.failureRate * 100).toFixed(1)}% of ${plan.stats.finished} devices` : `updated devices regressed (${plan.regressions.map((r) => r.metric).join(', ')})`;
      await this.#deps.raiseAlert({ kind: 'deployment-aborted', message: `deployment ${id} aborted: ${why}`, deployment: id, details });
    }
    if (plan.state === 'paused') {
      await this.#deps.raiseAlert({ kind: 'deployment-paused', message: `deployment ${id} paused: updated devices regressed (${plan.regressions.map((r) => r.metric).join(', ')})`, deployment: id, details });
    }
  }

  /** Samples for the updated and not-yet-released cohorts of a running, health-gated deployment. */
  async #healthSamples(id: string): Promise<ReadonlyMap<string, HealthSample> | undefined> {
    const provider = this.#deps.health;
    if (!provider) return undefined;
    const { db } = this.#deps.store;
    const row = await db.selectFrom('deployments').select(['state', 'spec', 'created_at']).where('id', '=', id).executeTakeFirst();
    if (row?.state !== 'running' || parseSpec(row.spec).health.action === 'off') return undefined;
    const cohort = (state: JobState, released: boolean) => {
      let select = db.selectFrom('deployment_jobs').select('thing').where('deployment_id', '=', id).where('state', '=', state).where('phase', '>=', 0);
      select = released ? select.where('released_at', 'is not', null) : select.where('released_at', 'is', null);
      return select.orderBy('thing').limit(HEALTH_SAMPLE_LIMIT).execute();
    };
    const things = [...(await cohort('succeeded', true)), ...(await cohort('queued', false))].map((r) => r.thing);
    if (things.length === 0) return undefined;
    return provider.samples(things, new Date(row.created_at));
  }

  async #notifyAll(things: readonly string[]): Promise<void> {
    for (const thing of new Set(things)) this.#deps.notify(thing, await this.pendingJobs(thing));
  }

  async #stop(id: string, to: 'cancelled', actor: Actor): Promise<Deployment> {
    const { db, dialect } = this.#deps.store;
    let released: string[] = [];
    await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, `fleetward:deployment:${id}`);
      const row = await this.#row(trx, id);
      const from = row.state as DeploymentState;
      if (!canTransitionDeployment(from, to)) throw new FleetwardError('FW_ERR_CONFLICT', `deployment ${id} is ${from} and cannot be ${to}`, { deployment: id, from, to });
      const now = this.#deps.clock.now().toISOString();
      released = (await trx.selectFrom('deployment_jobs').select('thing').where('deployment_id', '=', id).where('state', '=', 'queued').where('released_at', 'is not', null).execute()).map((r) => r.thing);
      const stopped = await trx.updateTable('deployment_jobs').set({ state: 'cancelled', reason: 'cancelled', finished_at: now, updated_at: now }).where('deployment_id', '=', id).where('state', '=', 'queued').executeTakeFirst();
      await trx.updateTable('deployments').set({ state: to, reason: 'operator', updated_at: now }).where('id', '=', id).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'deployment.cancel', outcome: 'success', target: `deployment:${id}`, details: { from, cancelledJobs: Number(stopped.numUpdatedRows) } }]);
    });
    await this.#notifyAll(released);
    return this.get(id);
  }

  async #transition(id: string, to: 'paused' | 'running', actor: Actor, change: (spec: StoredSpec, reason: string | null) => { reason: string | null; spec?: StoredSpec; details?: Record<string, string[]> }): Promise<void> {
    const { db, dialect } = this.#deps.store;
    await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, `fleetward:deployment:${id}`);
      const row = await this.#row(trx, id);
      const from = row.state as DeploymentState;
      if (!canTransitionDeployment(from, to)) throw new FleetwardError('FW_ERR_CONFLICT', `deployment ${id} is ${from} and cannot be ${to === 'running' ? 'resumed' : to}`, { deployment: id, from, to });
      const next = change(parseSpec(row.spec), row.reason);
      await trx
        .updateTable('deployments')
        .set({ state: to, reason: next.reason, updated_at: this.#deps.clock.now().toISOString(), ...(next.spec && { spec: JSON.stringify(next.spec) }) })
        .where('id', '=', id)
        .execute();
      const action = to === 'running' ? 'deployment.resume' : 'deployment.pause';
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: action, outcome: 'success', target: `deployment:${id}`, details: { from, ...next.details } }]);
    });
  }

  async #row(trx: Transaction<Tables>, id: string): Promise<Tables['deployments']> {
    const row = await trx.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    return row;
  }

  async #checkCannotUpdate(thing: string, deployment: string): Promise<void> {
    const threshold = this.#deps.cannotUpdateAfterFailures ?? DEFAULT_CANNOT_UPDATE_AFTER_FAILURES;
    const [listed] = await this.cannotUpdate(thing);
    // Alert once, when the device reaches the threshold (not at every failure after).
    if (listed?.reasons.includes('failing') === true && listed.failedJobs === threshold) {
      await this.#deps.raiseAlert({ kind: 'cannot-update', message: `${thing} failed ${threshold} updates in a row: list it for replacement`, thing, deployment, details: { failedJobs: threshold } });
    }
  }
}

const TARGET_PATH = /^[A-Za-z0-9._-]{1,255}$/;

function checkTarget(target: unknown): string {
  if (typeof target !== 'string' || !TARGET_PATH.test(target)) throw new FleetwardError('FW_ERR_VALIDATION', 'a target is an artifact target path: 1 to 255 letters, digits, ".", "_", "-"', { field: 'target' });
  return target;
}

function phaseCounts(phases: readonly number[]): number[] {
  const counts: number[] = [];
  for (const p of phases) counts[p] = (counts[p] ?? 0) + 1;
  return counts;
}

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function notFound(id: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `deployment ${id} does not exist`, { deployment: id });
}

function jobNotFound(jobId: string): FleetwardError {
  return new FleetwardError('FW_ERR_NOT_FOUND', `no job ${jobId} for this thing`, { jobId });
}

function unsigned(target: string): FleetwardError {
  return new FleetwardError('FW_ERR_CONFLICT', `artifact ${target} is not signed: only targets the metadata in force lists can be deployed (fleetward firmware sign)`, { target, reason: 'unsigned' });
}
