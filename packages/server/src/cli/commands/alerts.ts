import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import { AlertServices, type Incident } from '../../monitor/alerts/alert-services.js';
import { ALERT_STATES, isSeverity, isVerdict, VERDICTS, type Verdict } from '../../monitor/alerts/alert-states.js';
import type { Alert, TimelineEntry } from '../../monitor/alerts/alerts.js';
import type { Webhook } from '../../monitor/alerts/notifier.js';
import { RESPONSE_LIMITS, type ActionParams, type ResponseAction } from '../../monitor/alerts/response-actions.js';
import { SUPPRESSION_LIMITS, type Suppression } from '../../monitor/alerts/suppressions.js';
import { SEVERITIES, type ResponseActionName } from '../../monitor/types.js';
import type { NodeContext } from '../../node.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile } from '../files.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';

/** How a command reaches the alert services on the local data folder (no FLEETWARD_URL). */
export type AlertServicesOf = (context: NodeContext) => AlertServices;

const local = new WeakMap<NodeContext, AlertServices>();

/**
 * The alert services over a local data folder: no broker runs in the CLI, so nothing is published
 * on MQTT; queued webhook deliveries are retried by the node's job.
 */
export const localAlertServices: AlertServicesOf = (context) => {
  let services = local.get(context);
  if (!services) {
    const { store, audit, clock, keyRing } = context;
    services = new AlertServices({ store, audit, clock, keyRing, things: context.identity.things, certificates: context.identity.certificates, deployments: context.updates.deployments, publish: () => undefined });
    local.set(context, services);
  }
  return services;
};

/** `fleetward alerts ...`: alerts, their incident timelines, verdicts and suppressions (rule 5). */
export function alertsCommand(program: Command, servicesOf: AlertServicesOf = localAlertServices): void {
  const alerts = program.command('alerts').description('security alerts: list, show an incident, acknowledge, resolve, add notes, set a verdict, suppress');

  withJson(withConfigFlags(alerts.command('list')))
    .description('alerts, newest first (default: open and acknowledged)')
    .option('--state <state>', `${ALERT_STATES.join(', ')} or active (default active)`)
    .option('--thing <name>')
    .option('--severity <severity>', SEVERITIES.join(', '))
    .option('--limit <n>', 'at most n (default 100)')
    .action(
      action(async (out, options) => {
        const state = optionalString(options.state) ?? 'active';
        if (state !== 'active' && !(ALERT_STATES as readonly string[]).includes(state)) throw new FleetwardError('FW_ERR_USAGE', `--state is one of ${ALERT_STATES.join(', ')}, active`);
        const severity = optionalString(options.severity);
        if (severity !== undefined && !isSeverity(severity)) throw new FleetwardError('FW_ERR_USAGE', `--severity is one of ${SEVERITIES.join(', ')}`);
        const filter = { state: state as (typeof ALERT_STATES)[number] | 'active', ...(optionalString(options.thing) !== undefined && { thing: optionalString(options.thing) as string }), ...(severity !== undefined && { severity }), limit: positiveInteger(options.limit, '--limit', 500) ?? 100 };
        const list = await perform(options, (context) => servicesOf(context).alerts.list(filter), async (client) => (await client.call<{ alerts: Alert[] }>('GET', `/api/v1/alerts${query(filter)}`)).alerts);
        out.result({ alerts: list }, (r) => table(['id', 'severity', 'state', 'thing', 'behaviour', 'count', 'last seen', 'verdict'], r.alerts.map((a) => [a.id, a.severity, a.state, a.thing ?? '-', a.behavior, String(a.count), a.lastSeen, a.verdict ?? ''])));
      }),
    );

  withJson(withConfigFlags(alerts.command('show')))
    .description('an alert with its incident timeline (detections, actions and their outcome, notifications, notes, state changes)')
    .argument('<id>')
    .action(
      action(async (out, options, id: string) => {
        const incident = await perform(options, (context) => servicesOf(context).incident(id), (client) => client.call<Incident>('GET', `/api/v1/alerts/${segment(id)}`));
        out.result(incident, incidentText);
      }),
    );

  withJson(withConfigFlags(alerts.command('ack')))
    .description('acknowledge an alert: someone is on it')
    .argument('<id>')
    .option('--note <text>')
    .action(
      action(async (out, options, id: string) => {
        const note = optionalString(options.note);
        const alert = await perform(options, (context, actor) => servicesOf(context).alerts.acknowledge(id, actor, note), (client) => client.call<Alert>('POST', `/api/v1/alerts/${segment(id)}/acknowledge`, note !== undefined ? { note } : {}));
        out.result(alert, (a) => `Alert ${a.id} is ${a.state}`);
      }),
    );

  withJson(withConfigFlags(alerts.command('resolve')))
    .description('resolve an alert; a later detection with its key opens a new one')
    .argument('<id>')
    .option('--verdict <verdict>', VERDICTS.join(', '))
    .option('--note <text>')
    .action(
      action(async (out, options, id: string) => {
        const body = { ...(optionalString(options.verdict) !== undefined && { verdict: verdictOf(options.verdict) }), ...(optionalString(options.note) !== undefined && { note: optionalString(options.note) as string }) };
        const alert = await perform(options, (context, actor) => servicesOf(context).alerts.resolve(id, actor, body), (client) => client.call<Alert>('POST', `/api/v1/alerts/${segment(id)}/resolve`, body));
        out.result(alert, (a) => `Alert ${a.id} is resolved${a.verdict !== null ? ` (${a.verdict})` : ''}`);
      }),
    );

  withJson(withConfigFlags(alerts.command('note')))
    .description("add an operator note to an alert's timeline")
    .argument('<id>')
    .argument('<text>')
    .action(
      action(async (out, options, id: string, text: string) => {
        const entry = await perform(options, (context, actor) => servicesOf(context).alerts.note(id, text, actor), (client) => client.call<TimelineEntry>('POST', `/api/v1/alerts/${segment(id)}/notes`, { text }));
        out.result(entry, () => `Noted on alert ${id}`);
      }),
    );

  withJson(withConfigFlags(alerts.command('verdict')))
    .description(`set an alert's verdict: ${VERDICTS.join(', ')}`)
    .argument('<id>')
    .argument('<verdict>')
    .option('--note <text>')
    .action(
      action(async (out, options, id: string, verdict: string) => {
        const v = verdictOf(verdict);
        const note = optionalString(options.note);
        const alert = await perform(options, (context, actor) => servicesOf(context).alerts.setVerdict(id, v, actor, note), (client) => client.call<Alert>('PUT', `/api/v1/alerts/${segment(id)}/verdict`, { verdict: v, ...(note !== undefined && { note }) }));
        out.result(alert, (a) => `Alert ${a.id}: ${a.verdict ?? ''}`);
      }),
    );

  withJson(withConfigFlags(alerts.command('suppress')))
    .description('count, instead of alerting, detections of a behaviour and/or thing and/or group, until the suppression expires')
    .option('--behavior <name>', 'the behaviour (or built-in rule) name')
    .option('--thing <name>')
    .option('--group <name>', 'things directly in this group')
    .requiredOption('--for <seconds>', `how long (at most ${SUPPRESSION_LIMITS.maxDurationSeconds})`)
    .option('--note <text>', 'why, for the audit trail')
    .action(
      action(async (out, options) => {
        const durationSeconds = positiveInteger(options.for, '--for', SUPPRESSION_LIMITS.maxDurationSeconds) as number;
        const request = { durationSeconds, ...pick(options, ['behavior', 'thing', 'group', 'note']) };
        const s = await perform(options, (context, actor) => servicesOf(context).suppressions.add(request, actor), (client) => client.call<Suppression>('POST', '/api/v1/alert-suppressions', request));
        out.result(s, (x) => `Suppression ${x.id} until ${x.expiresAt}`);
      }),
    );

  withJson(withConfigFlags(alerts.command('unsuppress')))
    .description('lift a suppression now')
    .argument('<id>')
    .action(
      action(async (out, options, id: string) => {
        const s = await perform(options, (context, actor) => servicesOf(context).suppressions.lift(id, actor), (client) => client.call<Suppression>('DELETE', `/api/v1/alert-suppressions/${segment(id)}`));
        out.result(s, (x) => `Lifted suppression ${x.id} (it suppressed ${x.suppressed} detections)`);
      }),
    );

  withJson(withConfigFlags(alerts.command('suppressions')))
    .description('suppressions in force (--all: also expired and lifted), with how many detections each swallowed')
    .option('--all')
    .action(
      action(async (out, options) => {
        const all = options.all === true;
        const list = await perform(options, (context) => servicesOf(context).suppressions.list({ all }), async (client) => (await client.call<{ suppressions: Suppression[] }>('GET', `/api/v1/alert-suppressions${query({ all: all || undefined })}`)).suppressions);
        out.result({ suppressions: list }, (r) => table(['id', 'behaviour', 'thing', 'group', 'until', 'suppressed', 'note'], r.suppressions.map((s) => [s.id, s.behavior ?? '*', s.thing ?? '*', s.group ?? '*', s.expiresAt, String(s.suppressed), s.note ?? ''])));
      }),
    );
}

const RESPOND: readonly { readonly verb: string; readonly action: ResponseActionName; readonly description: string }[] = [
  { verb: 'quarantine', action: 'quarantine', description: 'quarantine a thing: its live connections close and it comes back with only its reserved namespace (report, receive a fix)' },
  { verb: 'revoke', action: 'revoke-certificate', description: "revoke the thing's active certificates (or --serial): final; its connections close at once" },
  { verb: 'suspend', action: 'suspend', description: 'suspend a thing: it cannot connect until released' },
  { verb: 'rotate', action: 'force-rotation', description: "mark the thing's certificates must-rotate: the device is told to renew with a new key" },
  { verb: 'update', action: 'start-update', description: 'start an update: a deployment of a signed artifact (--target) to this thing' },
  { verb: 'notify', action: 'notify', description: "notify the webhooks and the operators' MQTT topic of the thing's open alert" },
];

/** `fleetward respond ...`: response actions against a thing, and approvals (rule 5). */
export function respondCommand(program: Command, servicesOf: AlertServicesOf = localAlertServices): void {
  const respond = program.command('respond').description('contain and recover a thing: quarantine, release, revoke, suspend, rotate, update, notify; approve waiting actions');

  for (const { verb, action: name, description } of RESPOND) {
    const command = withJson(withConfigFlags(respond.command(verb)))
      .description(description)
      .argument('<thing>')
      .option('--alert <id>', "the alert this answers (default: the thing's newest open alert)")
      .option('--reason <text>');
    if (name === 'quarantine') command.option('--for <seconds>', `release automatically after this long (at most ${RESPONSE_LIMITS.maxQuarantineSeconds})`);
    if (name === 'start-update') command.requiredOption('--target <target>', 'the signed artifact (fleetward firmware list)');
    if (name === 'revoke-certificate') command.option('--serial <serial>', 'only this certificate');
    command.action(
      action(async (out, options, thing: string) => {
        const durationSeconds = positiveInteger(options.for, '--for', RESPONSE_LIMITS.maxQuarantineSeconds);
        const params: ActionParams = { ...(durationSeconds !== undefined && { durationSeconds }), ...pick(options, ['target', 'serial', 'reason']) };
        const alert = optionalString(options.alert);
        const done = await perform(
          options,
          (context, actor) => servicesOf(context).response.run({ action: name, thing, ...(alert !== undefined && { alert }), params }, actor),
          (client) => client.call<ResponseAction>('POST', `/api/v1/things/${segment(thing)}/response`, { action: name, ...(alert !== undefined && { alert }), ...params }),
        );
        out.result(done, actionText);
        if (done.state === 'failed') process.exitCode = 1;
      }),
    );
  }

  withJson(withConfigFlags(respond.command('release')))
    .description('undo containment in one step: a quarantined or suspended thing becomes active again')
    .argument('<thing>')
    .option('--note <text>')
    .action(
      action(async (out, options, thing: string) => {
        const note = optionalString(options.note);
        const released = await perform(options, (context, actor) => servicesOf(context).response.release(thing, actor, note), (client) => client.call<{ thing: string; from: string; to: string; changed: boolean }>('POST', `/api/v1/things/${segment(thing)}/release`, note !== undefined ? { note } : {}));
        out.result(released, (r) => (r.changed ? `Released ${r.thing}: ${r.from} → ${r.to}` : `${r.thing} is already ${r.to}`));
      }),
    );

  withJson(withConfigFlags(respond.command('list')))
    .description('response actions (waiting for approval: --state pending-approval)')
    .option('--thing <name>')
    .option('--alert <id>')
    .option('--state <state>')
    .action(
      action(async (out, options) => {
        const filter = pick(options, ['thing', 'alert', 'state']) as { thing?: string; alert?: string; state?: ResponseAction['state'] };
        const list = await perform(options, (context) => servicesOf(context).response.list(filter), async (client) => (await client.call<{ actions: ResponseAction[] }>('GET', `/api/v1/response-actions${query(filter)}`)).actions);
        out.result({ actions: list }, (r) => table(['id', 'thing', 'action', 'state', 'mode', 'alert', 'by', 'at'], r.actions.map((a) => [a.id, a.thing, a.action, a.state, a.mode, a.alert ?? '-', a.requestedBy, a.createdAt])));
      }),
    );

  withJson(withConfigFlags(respond.command('approve')))
    .description('approve an automatic action that waits for approval: it runs now')
    .argument('<action-id>')
    .action(
      action(async (out, options, id: string) => {
        const done = await perform(options, (context, actor) => servicesOf(context).response.approve(id, actor), (client) => client.call<ResponseAction>('POST', `/api/v1/response-actions/${segment(id)}/approve`));
        out.result(done, actionText);
        if (done.state === 'failed') process.exitCode = 1;
      }),
    );

  withJson(withConfigFlags(respond.command('reject')))
    .description('reject an automatic action that waits for approval')
    .argument('<action-id>')
    .option('--reason <text>')
    .action(
      action(async (out, options, id: string) => {
        const reason = optionalString(options.reason);
        const done = await perform(options, (context, actor) => servicesOf(context).response.reject(id, actor, reason), (client) => client.call<ResponseAction>('POST', `/api/v1/response-actions/${segment(id)}/reject`, reason !== undefined ? { reason } : {}));
        out.result(done, actionText);
      }),
    );
}

/** `fleetward notify webhooks add|list|remove`: HMAC-signed notification webhooks (rule 5). */
export function notifyCommand(program: Command, servicesOf: AlertServicesOf = localAlertServices): void {
  const webhooks = program.command('notify').description('alert notifications').command('webhooks').description('HMAC-SHA256-signed HTTPS webhooks, retried with backoff');

  withJson(withConfigFlags(webhooks.command('add')))
    .description('add a webhook; prints its signing secret once (unless you give one)')
    .argument('<name>')
    .argument('<url>', 'https:// only')
    .option('--secret <secret>', 'the HMAC secret (16-256 characters; default: generated)')
    .option('--ca-file <pem>', "trust this CA for the webhook's TLS server instead of the system's")
    .option('--min-severity <severity>', `notify alerts from this severity up (${SEVERITIES.join(', ')}; default low)`)
    .action(
      action(async (out, options, name: string, url: string) => {
        const minSeverity = optionalString(options.minSeverity);
        if (minSeverity !== undefined && !isSeverity(minSeverity)) throw new FleetwardError('FW_ERR_USAGE', `--min-severity is one of ${SEVERITIES.join(', ')}`);
        const caFile = optionalString(options.caFile);
        const request = { name, url, ...(optionalString(options.secret) !== undefined && { secret: optionalString(options.secret) as string }), ...(caFile !== undefined && { caPem: await readInputFile(caFile, '--ca-file') }), ...(minSeverity !== undefined && { minSeverity }) };
        const added = await perform(options, (context, actor) => servicesOf(context).notifier.addWebhook(request, actor), (client) => client.call<{ webhook: Webhook; secret: string }>('POST', '/api/v1/notify/webhooks', request));
        out.result(added, (r) => `Added webhook ${r.webhook.name} → ${r.webhook.url} (from ${r.webhook.minSeverity})\nSigning secret (shown once): ${r.secret}`);
      }),
    );

  withJson(withConfigFlags(webhooks.command('list')))
    .description('webhooks (secrets are never shown again)')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => servicesOf(context).notifier.listWebhooks(), async (client) => (await client.call<{ webhooks: Webhook[] }>('GET', '/api/v1/notify/webhooks')).webhooks);
        out.result({ webhooks: list }, (r) => table(['name', 'url', 'from', 'pinned CA', 'by'], r.webhooks.map((w) => [w.name, w.url, w.minSeverity, w.pinnedCa ? 'yes' : 'no', w.createdBy])));
      }),
    );

  withJson(withConfigFlags(webhooks.command('remove')))
    .description('remove a webhook (its pending deliveries are dropped)')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        await perform(options, (context, actor) => servicesOf(context).notifier.removeWebhook(name, actor), (client) => client.call('DELETE', `/api/v1/notify/webhooks/${segment(name)}`));
        out.result({ removed: name }, () => `Removed webhook ${name}`);
      }),
    );
}

function verdictOf(value: unknown): Verdict {
  if (!isVerdict(value)) throw new FleetwardError('FW_ERR_USAGE', `the verdict is one of ${VERDICTS.join(', ')}`);
  return value;
}

function pick(options: Record<string, unknown>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (typeof options[k] === 'string' ? [[k, options[k]]] : [])));
}

function actionText(a: ResponseAction): string {
  const what = a.state === 'failed' ? `failed (${a.errorCode ?? 'error'}): ${typeof a.result.error === 'string' ? a.result.error : ''}` : a.state === 'pending-approval' ? `waits for approval (fleetward respond approve ${a.id})` : a.state;
  return `${a.action} ${a.thing}: ${what}${a.alert !== null ? ` [alert ${a.alert}]` : ''}${a.expiresAt !== null ? `, released automatically at ${a.expiresAt}` : ''}`;
}

function incidentText(i: Incident): string {
  const a = i.alert;
  return [
    `${a.id}  ${a.severity.toUpperCase()}  ${a.state}${a.verdict !== null ? ` (${a.verdict})` : ''}`,
    `thing ${a.thing ?? '-'}  behaviour ${a.behavior}${a.profile !== null ? ` (profile ${a.profile})` : ''}  seen ${a.count}× ${a.firstSeen} … ${a.lastSeen}`,
    a.message,
    '',
    table(['at', 'kind', 'by', 'what'], i.timeline.map((e) => [e.at, e.kind, e.actor, e.summary])),
  ].join('\n');
}

