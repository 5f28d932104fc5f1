import type { Command } from 'commander';
import { FleetwardError, JOB_STATES, type JobState } from '@fleetward/protocol';
import type { NodeContext } from '../../node.js';
import type { CannotUpdate, Deployment, DeploymentJob, DeploymentRequest, Deployments, GroupAutoUpdates } from '../../updates/deployments/index.js';
import { DEPLOYMENT_STATES, isFinalDeployment } from '../../updates/deployments/states.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table, type Output } from '../output.js';
import { ProgressBar } from '../progress.js';
import { perform, query, segment, via, withConnection } from '../target.js';

const deploymentsOf = (context: NodeContext): Deployments => context.updates.deployments;

const DAY_SECONDS = 86_400;
const MAX_TIMEOUT_SECONDS = 30 * DAY_SECONDS;
const FAILED_STATES: readonly JobState[] = ['failed', 'rejected', 'timed-out'];

/** `fleetward deploy ...`: update deployments (rule 4). */
export function deployCommand(program: Command): void {
  const deploy = program.command('deploy').description('roll a signed firmware artifact out to things in phases, follow it, pause, resume or cancel it');

  withJson(withConfigFlags(deploy.command('create')))
    .description('create a deployment of a signed artifact; devices of other hardware, on a higher security version or already on the version are decided at once')
    .argument('<target>', 'the artifact target path (fleetward firmware list)')
    .option('--things <names>', 'things, comma-separated')
    .option('--groups <names>', 'groups (and the groups below them), comma-separated')
    .option('--query <filters>', 'type=TYPE and attr.KEY=VALUE, comma-separated; all must match')
    .option('--phases <sizes>', 'cumulative phase sizes, counts or percentages: 10,25%,100% (default 5%,25%,100%)')
    .option('--rate <n>', 'release at most n devices per minute')
    .option('--exponential', 'each phase doubles the one before (--phases gives the first)')
    .option('--abort-failure-rate <rate>', 'abort when failed / finished devices passes this (0 to 1; default 0.1)')
    .option('--abort-min <n>', '... once at least n devices finished (default 5)')
    .option('--timeout <seconds>', 'time out a device in progress for longer (default 3600)')
    .option('--start-timeout <seconds>', 'time out a device that does not start its job (default 7 days)')
    .option('--window <HH:MM-HH:MM>', 'release jobs only in this daily UTC window')
    .option('--health <action>', 'when updated devices regress against the others: pause (default), abort or off')
    .action(
      action(async (out, options, target: string) => {
        const request = deploymentRequest(target, options);
        const created = await perform(options, (context, actor) => deploymentsOf(context).create(request, actor), (client) => client.call<Deployment>('POST', '/api/v1/deployments', request));
        out.result(created, (d) => `Created deployment ${d.id} of ${d.target} to ${d.counts.total} things in ${d.phases.length} phases\n${countsLine(d)}`);
      }),
    );

  withJson(withConfigFlags(deploy.command('status')))
    .description('a deployment\'s state and jobs per state and phase; --watch follows it until it ends (exit 1 if it aborts or is cancelled)')
    .argument('<id>')
    .option('--watch', 'redraw until the deployment ends; with --json, one JSON line per change')
    .option('--interval <seconds>', 'how often --watch asks (default 2)')
    .action(
      action(async (out, options, id: string) => {
        const intervalMs = (positiveInteger(options.interval, '--interval', 3600) ?? 2) * 1000;
        const get = (connection: Parameters<typeof via>[0]) => via(connection, (context) => deploymentsOf(context).get(id), (client) => client.call<Deployment>('GET', `/api/v1/deployments/${segment(id)}`));
        if (options.watch !== true) {
          const d = await withConnection(options, get);
          out.result(d, statusText);
          return;
        }
        const last = await withConnection(options, (connection) => watch(out, () => get(connection), intervalMs));
        if (last.state === 'aborted' || last.state === 'cancelled') process.exitCode = 1;
      }),
    );

  withJson(withConfigFlags(deploy.command('list')))
    .description('deployments, newest first')
    .option('--state <state>', `only deployments in this state (${DEPLOYMENT_STATES.join(', ')})`)
    .action(
      action(async (out, options) => {
        const state = choice(options.state, DEPLOYMENT_STATES, '--state');
        const list = await perform(
          options,
          (context) => deploymentsOf(context).list({ ...(state !== undefined && { state }) }),
          async (client) => (await client.call<{ deployments: Deployment[] }>('GET', `/api/v1/deployments${query({ state })}`)).deployments,
        );
        out.result({ deployments: list }, (r) =>
          table(
            ['id', 'target', 'state', 'phase', 'done', 'failed', 'created', 'by'],
            r.deployments.map((d) => [d.id, d.target, d.state + (d.reason ? ` (${d.reason})` : ''), d.currentPhase === null ? '-' : `${d.currentPhase + 1}/${d.phases.length}`, `${finished(d)}/${d.counts.total}`, String(failedOf(d)), d.createdAt, d.createdBy]),
          ),
        );
      }),
    );

  for (const [verb, description] of [
    ['cancel', 'cancel: jobs not started are cancelled and their devices told; installs in progress finish'],
    ['pause', 'stop releasing jobs (released ones go on) until resumed'],
    ['resume', 'resume a paused deployment, accepting the health regressions that paused it'],
  ] as const) {
    withJson(withConfigFlags(deploy.command(verb)))
      .description(description)
      .argument('<id>')
      .action(
        action(async (out, options, id: string) => {
          const d = await perform(options, (context, actor) => deploymentsOf(context)[verb](id, actor), (client) => client.call<Deployment>('POST', `/api/v1/deployments/${segment(id)}/${verb}`));
          out.result(d, (x) => `Deployment ${x.id} is ${x.state}\n${countsLine(x)}`);
        }),
      );
  }

  withJson(withConfigFlags(deploy.command('jobs')))
    .description('a deployment\'s jobs, one per thing')
    .argument('<id>')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`)
    .option('--phase <n>', 'only jobs of this phase (1 is the first)')
    .option('--after <thing>', 'start after this thing name (paging)')
    .option('--limit <n>', 'at most this many (default 100, at most 500)')
    .action(
      action(async (out, options, id: string) => {
        const state = choice(options.state, JOB_STATES, '--state');
        const phaseNumber = positiveInteger(options.phase, '--phase', 1000);
        const limit = positiveInteger(options.limit, '--limit', 500);
        const after = optionalString(options.after);
        const filter = { ...(state !== undefined && { state }), ...(phaseNumber !== undefined && { phase: phaseNumber - 1 }), ...(after !== undefined && { after }), ...(limit !== undefined && { limit }) };
        const page = await perform(
          options,
          (context) => deploymentsOf(context).jobs(id, filter),
          (client) => client.call<{ jobs: DeploymentJob[]; next: string | null }>('GET', `/api/v1/deployments/${segment(id)}/jobs${query(filter)}`),
        );
        out.result(page, (p) =>
          [
            table(
              ['thing', 'phase', 'state', 'step', 'reason', 'progress', 'updated'],
              p.jobs.map((j) => [j.thing, j.phase < 0 ? '-' : String(j.phase + 1), j.state, j.step ?? '', j.reason ?? '', j.totalBytes ? `${Math.floor(((j.bytes ?? 0) / j.totalBytes) * 100)}%` : '', j.updatedAt]),
            ),
            ...(p.next === null ? [] : [`(more: --after ${p.next})`]),
          ].join('\n'),
        );
      }),
    );

  withJson(withConfigFlags(deploy.command('cannot-update')))
    .description('devices to replace: unsupported hardware, or failing update after update')
    .action(
      action(async (out, options) => {
        const devices = await perform(options, (context) => deploymentsOf(context).cannotUpdate(), async (client) => (await client.call<{ devices: CannotUpdate[] }>('GET', '/api/v1/updates/cannot-update')).devices);
        out.result({ devices }, (r) => table(['thing', 'why', 'failed jobs', 'last deployment', 'since'], r.devices.map((d) => [d.thing, d.reasons.join(', '), String(d.failedJobs), d.lastDeployment ?? '-', d.since])));
      }),
    );

  withJson(withConfigFlags(deploy.command('auto-security')))
    .description('automatic security updates per group: list, or opt a group in (on) or out (off); opting out covers the groups below')
    .argument('[group]')
    .argument('[setting]', 'on or off')
    .action(
      action(async (out, options, group: string | undefined, setting: string | undefined) => {
        if (group === undefined) {
          const groups = await perform(options, (context) => deploymentsOf(context).groupAutoUpdates(), async (client) => (await client.call<{ groups: GroupAutoUpdates[] }>('GET', '/api/v1/updates/auto-security-updates')).groups);
          out.result({ groups }, (r) => table(['group', 'setting', 'in effect', 'things'], r.groups.map((g) => [g.group, g.autoSecurityUpdates ? 'on' : 'off', g.effective ? 'yes' : 'no', String(g.members)])));
          return;
        }
        if (setting !== 'on' && setting !== 'off') throw new FleetwardError('FW_ERR_USAGE', 'give on or off after the group');
        const enabled = setting === 'on';
        const result = await perform(
          options,
          (context, actor) => deploymentsOf(context).setGroupAutoUpdates(group, enabled, actor),
          (client) => client.call<GroupAutoUpdates>('PUT', `/api/v1/groups/${segment(group)}/auto-security-updates`, { enabled }),
        );
        out.result(result, (g) => `Automatic security updates for ${g.group}: ${g.autoSecurityUpdates ? 'on' : 'off'}${g.autoSecurityUpdates && !g.effective ? ' (but a group above opted out)' : ''}`);
      }),
    );
}

/** The API request from `deploy create`'s flags; anything malformed is a usage error (exit 2). */
export function deploymentRequest(target: string, options: Record<string, unknown>): DeploymentRequest {
  const things = list(options.things);
  const groups = list(options.groups);
  const filters = list(options.query);
  let thingType: string | undefined;
  const attributes: Record<string, string> = {};
  for (const filter of filters) {
    const at = filter.indexOf('=');
    const key = filter.slice(0, at);
    const value = filter.slice(at + 1);
    if (at < 1 || value === '') throw usage(`--query takes type=TYPE or attr.KEY=VALUE, not ${JSON.stringify(filter)}`);
    if (key === 'type') thingType = value;
    else if (key.startsWith('attr.') && key.length > 5) attributes[key.slice(5)] = value;
    else throw usage(`--query takes type=TYPE or attr.KEY=VALUE, not ${JSON.stringify(filter)}`);
  }
  const hasAttributes = Object.keys(attributes).length > 0;
  const selection = {
    ...(things.length > 0 && { things }),
    ...(groups.length > 0 && { groups }),
    ...((thingType !== undefined || hasAttributes) && { query: { ...(thingType !== undefined && { thingType }), ...(hasAttributes && { attributes }) } }),
  };
  if (Object.keys(selection).length === 0) throw usage('select things with --things, --groups or --query');
  const phases = options.phases === undefined ? undefined : list(options.phases);
  const ratePerMinute = positiveInteger(options.rate, '--rate', 100_000);
  const failureRate = fraction(options.abortFailureRate, '--abort-failure-rate');
  const minDevices = positiveInteger(options.abortMin, '--abort-min', 1_000_000);
  const timeoutSeconds = positiveInteger(options.timeout, '--timeout', MAX_TIMEOUT_SECONDS);
  const startTimeoutSeconds = positiveInteger(options.startTimeout, '--start-timeout', MAX_TIMEOUT_SECONDS);
  const window = optionalString(options.window);
  const match = window === undefined ? null : /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(window);
  if (window !== undefined && match === null) throw usage('--window takes HH:MM-HH:MM (UTC), e.g. 02:00-04:00');
  const health = choice(options.health, ['off', 'pause', 'abort'] as const, '--health');
  return {
    target,
    selection,
    ...(phases !== undefined && { phases }),
    ...(ratePerMinute !== undefined && { ratePerMinute }),
    ...(options.exponential === true && { exponential: true }),
    ...((failureRate !== undefined || minDevices !== undefined) && { abort: { ...(failureRate !== undefined && { failureRate }), ...(minDevices !== undefined && { minDevices }) } }),
    ...(timeoutSeconds !== undefined && { timeoutSeconds }),
    ...(startTimeoutSeconds !== undefined && { startTimeoutSeconds }),
    ...(match !== null && { maintenanceWindow: { start: match[1] as string, end: match[2] as string } }),
    ...(health !== undefined && { health: { action: health } }),
  };
}

/** Polls until the deployment ends: a live bar (human) or one JSON line per change (--json). */
async function watch(out: Output, get: () => Promise<Deployment>, intervalMs: number): Promise<Deployment> {
  let previous = '';
  let bar: ProgressBar | null = null;
  for (;;) {
    const d = await get();
    const fingerprint = JSON.stringify([d.state, d.reason, d.currentPhase, d.counts]);
    if (fingerprint !== previous) {
      previous = fingerprint;
      if (out.json) {
        process.stdout.write(`${JSON.stringify(d)}\n`);
      } else {
        bar ??= new ProgressBar(`${d.id} ${d.target}`, d.counts.total);
        bar.update(finished(d), failedOf(d));
        if (process.stderr.isTTY !== true) process.stdout.write(`${countsLine(d)}\n`);
      }
    }
    if (isFinalDeployment(d.state) && d.counts['in-progress'] === 0) {
      bar?.finish();
      if (!out.json) process.stdout.write(`${statusText(d)}\n`);
      return d;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function statusText(d: Deployment): string {
  const lines = [
    `Deployment ${d.id}: ${d.target} (version ${d.version}, security version ${d.securityVersion})${d.automatic ? ', automatic security update' : ''}`,
    `State: ${d.state}${d.reason ? ` (${d.reason})` : ''}${d.currentPhase === null ? '' : `, phase ${d.currentPhase + 1} of ${d.phases.length}`}`,
    countsLine(d),
    table(
      ['phase', 'devices', 'not released', ...JOB_STATES],
      d.phases.map((p) => [String(p.phase + 1), String(p.size), String(p.counts.notReleased), ...JOB_STATES.map((s) => String(p.counts[s]))]),
    ),
  ];
  return lines.join('\n');
}

function countsLine(d: Deployment): string {
  const parts = JOB_STATES.filter((s) => d.counts[s] > 0).map((s) => `${s} ${d.counts[s]}${s === 'queued' && d.counts.notReleased > 0 ? ` (${d.counts.notReleased} not released)` : ''}`);
  return `${d.counts.total} things: ${parts.join(', ') || 'none'}`;
}

function finished(d: Deployment): number {
  return d.counts.total - d.counts.queued - d.counts['in-progress'];
}

function failedOf(d: Deployment): number {
  return FAILED_STATES.reduce((n, s) => n + d.counts[s], 0);
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  if (typeof value !== 'string') throw usage('a list option takes comma-separated values');
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function fraction(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw usage(`${option} is a number from 0 to 1`);
  return n;
}

function choice<T extends string>(value: unknown, allowed: readonly T[], option: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw usage(`${option} is one of ${allowed.join(', ')}`);
  return value as T;
}

function usage(message: string): FleetwardError {
  return new FleetwardError('FW_ERR_USAGE', message);
}
