import type { Command } from 'commander';
import type { Role } from '../../access/roles.js';
import type { DataWebhook, DataWebhookRequest, DataWebhooks, DataWebhookSecret } from '../../data/data-webhooks.js';
import type { NodeContext } from '../../node.js';
import { action, withJson } from '../action.js';
import { optionalString } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile } from '../files.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

const BASE = '/api/v1/data/webhooks';

/** `fleetward data webhooks ...`: consumers of the minimized telemetry stream over signed HTTPS webhooks (rule 9). */
export function dataWebhooksCommand(data: Command, localRole: Role): void {
  const webhooks = data.command('webhooks').description('consumers of the minimized data stream over HMAC-SHA256-signed HTTPS webhooks, purpose-bound like queries');

  withJson(withConfigFlags(webhooks.command('create')))
    .description("register a consumer; prints its signing secret once. It is sent only fields declared for --purpose, within --role's clearance (at most yours)")
    .argument('<name>')
    .argument('<url>', 'https:// only')
    .option('--purpose <purpose>', 'why the consumer reads (required): one the contracts declare')
    .option('--role <role>', "the role whose clearance bounds what is sent (required): admin, operator, auditor, viewer")
    .option('--contract <name>', "only this contract's data")
    .option('--topic <filter>', 'only data published on topics this MQTT filter matches')
    .option('--ca-file <pem>', "trust this CA for the receiver's TLS certificate instead of the system's")
    .option('--from <start>', 'now (default): data stored from now on; earliest: everything still stored')
    .action(
      action(async (out, options, name: string, url: string) => {
        const request = await createRequest(name, url, options);
        const created = await perform(
          options,
          (context, actor) => webhooksOf(context).create(request, { actor, role: localRole }),
          (client) => client.call<DataWebhookSecret>('POST', BASE, request),
        );
        out.result(created, (r) => `Created data webhook ${r.webhook.name} → ${r.webhook.url} (${describeSelector(r.webhook)}, purpose ${r.webhook.purpose}, role ${r.webhook.role})\nSigning secret (shown once): ${r.secret}`);
      }),
    );

  withJson(withConfigFlags(webhooks.command('list')))
    .description('list the consumers with their delivery state (secrets are never shown again)')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => webhooksOf(context).list(), async (client) => (await client.call<{ webhooks: DataWebhook[] }>('GET', BASE)).webhooks);
        out.result({ webhooks: list }, (r) =>
          r.webhooks.length === 0 ? 'No data webhooks.' : table(['name', 'url', 'selects', 'purpose', 'role', 'state', 'delivered', 'failing'], r.webhooks.map((w) => [w.name, w.url, describeSelector(w), w.purpose, w.role, w.state, String(w.delivered.records), w.pending === null ? '-' : `${w.pending.attempts} attempt(s)`])),
        );
      }),
    );

  withJson(withConfigFlags(webhooks.command('show')))
    .description('one consumer: cursor, batch in flight, last delivery, failures')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const shown = await perform(options, (context) => webhooksOf(context).get(name), (client) => client.call<DataWebhook>('GET', `${BASE}/${segment(name)}`));
        out.result(shown, describe);
      }),
    );

  for (const [verb, state, done] of [['pause', 'paused', 'Paused'], ['resume', 'active', 'Resumed']] as const) {
    withJson(withConfigFlags(webhooks.command(verb)))
      .description(verb === 'pause' ? 'stop deliveries (the cursor is kept)' : 'resume deliveries from the cursor (a batch in flight is retried at once)')
      .argument('<name>')
      .action(
        action(async (out, options, name: string) => {
          const changed = await perform(options, (context, actor) => webhooksOf(context).setState(name, state, actor), (client) => client.call<DataWebhook>('POST', `${BASE}/${segment(name)}/${verb}`));
          out.result(changed, (w) => `${done} data webhook ${w.name} (cursor ${w.cursor}).`);
        }),
      );
  }

  withJson(withConfigFlags(webhooks.command('delete')))
    .description('remove a consumer and its cursor')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        await perform(options, (context, actor) => webhooksOf(context).delete(name, actor), (client) => client.call('DELETE', `${BASE}/${segment(name)}`));
        out.result({ deleted: name }, () => `Deleted data webhook ${name}.`);
      }),
    );

  withJson(withConfigFlags(webhooks.command('rotate-secret')))
    .description('give a consumer a new signing secret, printed once; later deliveries (retries too) are signed with it')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const rotated = await perform(options, (context, actor) => webhooksOf(context).rotateSecret(name, actor), (client) => client.call<DataWebhookSecret>('POST', `${BASE}/${segment(name)}/rotate-secret`));
        out.result(rotated, (r) => `New signing secret for ${r.webhook.name} (shown once): ${r.secret}`);
      }),
    );
}

function webhooksOf(context: NodeContext): DataWebhooks {
  return context.data.webhooks;
}

/** The request from the flags; the domain validates it (so the CLI and the API refuse with the same codes). */
async function createRequest(name: string, url: string, options: Record<string, unknown>): Promise<DataWebhookRequest> {
  const caFile = optionalString(options.caFile);
  const fields = { purpose: optionalString(options.purpose), role: optionalString(options.role), contract: optionalString(options.contract), topic: optionalString(options.topic), start: optionalString(options.from) };
  const defined = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  return { name, url, ...defined, ...(caFile !== undefined && { caPem: await readInputFile(caFile, '--ca-file') }) };
}

function describeSelector(w: DataWebhook): string {
  const parts = [w.contract === null ? null : `contract ${w.contract}`, w.topic === null ? null : `topic ${w.topic}`].filter((p): p is string => p !== null);
  return parts.length === 0 ? 'all contracts' : parts.join(', ');
}

function describe(w: DataWebhook): string {
  const lines = [
    `${w.name} → ${w.url}${w.pinnedCa ? ' (pinned CA)' : ''}: ${w.state}`,
    `selects ${describeSelector(w)}; purpose ${w.purpose}; role ${w.role}`,
    `cursor ${w.cursor}; ${w.sequence} batch(es) made, ${w.delivered.batches} delivered with ${w.delivered.records} record(s); ${w.failedAttempts} failed attempt(s)`,
    w.pending === null ? 'nothing in flight' : `in flight: batch ${w.pending.sequence} (${w.pending.delivery}), ${w.pending.attempts} attempt(s), next ${w.pending.nextAttemptAt ?? 'now'}`,
    w.lastDelivery === null ? 'no delivery yet' : `last delivery ${w.lastDelivery.delivery} at ${w.lastDelivery.at} (${w.lastDelivery.records} record(s))`,
  ];
  if (w.lastAttempt !== null && w.lastAttempt.error !== null) lines.push(`last attempt ${w.lastAttempt.at} failed: ${w.lastAttempt.error}`);
  lines.push(`created ${w.createdAt} by ${w.createdBy}${w.secretRotatedAt === null ? '' : `; secret rotated ${w.secretRotatedAt}`}`);
  return lines.join('\n');
}
