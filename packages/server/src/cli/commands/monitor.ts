import type { Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import type { NodeContext } from '../../node.js';
import { MetricsStore, type GroupWindowAggregate } from '../../monitor/metrics/metrics-store.js';
import type { CustomMetricDeclaration } from '../../monitor/metrics/custom-metrics.js';
import type { WindowMetrics } from '../../monitor/metrics/window-metrics.js';
import { SecurityProfiles, type StoredProfile } from '../../monitor/security-profiles.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile } from '../files.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';

const DAY_MS = 86_400_000;

// In the local form the services are built over the data folder's store, as node.ts builds them.
const profilesOf = (c: NodeContext) => new SecurityProfiles({ store: c.store, audit: c.audit, clock: c.clock });
const metricsOf = (c: NodeContext) => new MetricsStore({ store: c.store, audit: c.audit, clock: c.clock });

async function jsonFile(file: string): Promise<unknown> {
  const text = await readInputFile(file);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FleetwardError('FW_ERR_VALIDATION', `${file} is not JSON: ${(error as Error).message}`, { path: '' });
  }
}

/** `--since` as an ISO time, or a duration back from now (`90m`, `6h`, `2d`); default one day. */
function sinceOf(value: unknown): string {
  const text = optionalString(value);
  if (text === undefined) return new Date(Date.now() - DAY_MS).toISOString();
  const match = /^(\d+)([mhd])$/.exec(text);
  if (match !== null) return new Date(Date.now() - Number(match[1]) * { m: 60_000, h: 3_600_000, d: DAY_MS }[match[2] as 'm' | 'h' | 'd']).toISOString();
  if (Number.isNaN(Date.parse(text))) throw new FleetwardError('FW_ERR_USAGE', '--since must be an ISO time or a duration like 90m, 6h, 2d');
  return new Date(text).toISOString();
}

/** `fleetward monitor ...`: rule 5's security profiles, stored metrics and custom metric declarations. */
export function monitorCommand(program: Command): void {
  const monitor = program.command('monitor').description('device security monitoring: security profiles (detection), per-device and per-group metrics, custom metrics');
  const profiles = monitor.command('profiles').description('security profiles: behaviours detection holds the devices of attached groups to');

  withJson(withConfigFlags(profiles.command('create')))
    .description('create or replace a security profile from a JSON document (docs/rule-05-monitoring.md)')
    .argument('<file>', 'the profile document')
    .action(
      action(async (out, options, file: string) => {
        const document = await jsonFile(file);
        const profile = await perform(options, (c, actor) => profilesOf(c).put(document, actor), (client) => client.call<StoredProfile>('POST', '/api/v1/monitor/profiles', document));
        out.result(profile, (p) => `Security profile ${p.name}: ${(p.document.behaviors as unknown[]).length} behaviours${p.groups.length > 0 ? `, attached to ${p.groups.join(', ')}` : ' (attach it to a group to apply it)'}`);
      }),
    );

  withJson(withConfigFlags(profiles.command('list')))
    .description('security profiles and the groups they are attached to')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (c) => profilesOf(c).list(), async (client) => (await client.call<{ profiles: StoredProfile[] }>('GET', '/api/v1/monitor/profiles')).profiles);
        out.result({ profiles: list }, (r) => table(['profile', 'behaviours', 'groups', 'updated'], r.profiles.map((p) => [p.name, (p.document.behaviors as { name: string }[]).map((b) => b.name).join(', '), p.groups.join(', '), p.updatedAt])));
      }),
    );

  for (const [verb, method, description] of [['attach', 'PUT', 'apply a profile to a group (and its subgroups)'], ['detach', 'DELETE', 'stop applying a profile to a group']] as const) {
    withJson(withConfigFlags(profiles.command(verb)))
      .description(description)
      .argument('<profile>')
      .argument('<group>')
      .action(
        action(async (out, options, name: string, group: string) => {
          const profile = await perform(
            options,
            async (c, actor) => {
              await (verb === 'attach' ? profilesOf(c).attach(name, group, actor) : profilesOf(c).detach(name, group, actor));
              return profilesOf(c).get(name);
            },
            (client) => client.call<StoredProfile>(method, `/api/v1/monitor/profiles/${segment(name)}/groups/${segment(group)}`),
          );
          out.result(profile, (p) => `${p.name} is attached to ${p.groups.length === 0 ? 'no group' : p.groups.join(', ')}`);
        }),
      );
  }

  withJson(withConfigFlags(profiles.command('delete')))
    .description('delete a security profile (and its attachments)')
    .argument('<profile>')
    .action(
      action(async (out, options, name: string) => {
        await perform(options, (c, actor) => profilesOf(c).delete(name, actor), (client) => client.call('DELETE', `/api/v1/monitor/profiles/${segment(name)}`));
        out.result({ deleted: name }, () => `Deleted security profile ${name}`);
      }),
    );

  withJson(withConfigFlags(monitor.command('metrics')))
    .description('a thing\'s security metrics per window (or a group\'s, summed, with --group)')
    .argument('<name>', 'a thing name (or a group name with --group)')
    .option('--group', 'the name is a group: per-window sums over its things and its subgroups\'')
    .option('--since <time>', 'ISO time or duration back from now (90m, 6h, 2d); default 1d')
    .option('--until <time>', 'ISO time')
    .option('--limit <windows>', 'most windows shown (thing only)')
    .action(
      action(async (out, options, name: string) => {
        const since = sinceOf(options.since);
        const until = optionalString(options.until);
        if (options.group === true) {
          const windows = await perform(options, (c) => metricsOf(c).group(name, { since, ...(until !== undefined && { until }) }), async (client) => (await client.call<{ windows: GroupWindowAggregate[] }>('GET', `/api/v1/monitor/metrics/groups/${segment(name)}${query({ since, until })}`)).windows);
          out.result({ group: name, windows }, (r) => table(['window', 'devices', 'reporting', 'connects', 'authn fail', 'authz fail', 'msgs in', 'bytes in', 'msgs out', 'max size'], r.windows.map((w) => [w.windowStart, ...[w.devices, w.reporting, w.connectAttempts, w.authnFailures, w.authzFailures, w.messagesIn, w.bytesIn, w.messagesOut, w.messageSizeMax].map(String)])));
          return;
        }
        const limit = positiveInteger(options.limit, '--limit', 10_080);
        const windows = await perform(options, (c) => metricsOf(c).device(name, { since, ...(until !== undefined && { until }), ...(limit !== undefined && { limit }) }), async (client) => (await client.call<{ windows: WindowMetrics[] }>('GET', `/api/v1/monitor/metrics/things/${segment(name)}${query({ since, until, limit })}`)).windows);
        out.result({ thing: name, windows }, (r) =>
          table(
            ['window', 'connects', 'authn fail', 'authz fail', 'msgs in', 'bytes in', 'msgs out', 'sources', 'listening', 'cpu %'],
            r.windows.map((w) => [w.windowStart, ...[w.cloud.connectAttempts, w.cloud.authnFailures, w.cloud.authzFailures, w.cloud.messagesIn, w.cloud.bytesIn, w.cloud.messagesOut, w.cloud.sourceAddressCount].map(String), w.device?.listening.join(' ') ?? '-', w.device === null ? '-' : String(w.device.cpuPercent)]),
          ),
        );
      }),
    );

  const custom = monitor.command('custom-metrics').description('custom device metrics, declared per thing type (undeclared ones are dropped on ingest)');
  withJson(withConfigFlags(custom.command('declare')))
    .description('declare a custom metric a thing type\'s devices report')
    .argument('<thing-type>')
    .argument('<name>', 'metric name (a-z 0-9 _ . -), used as custom.<name> in behaviours')
    .argument('<kind>', 'number, number-list, string-list or address-list')
    .option('--description <text>')
    .action(
      action(async (out, options, thingType: string, name: string, kind: string) => {
        const description = optionalString(options.description);
        const request = { thingType, name, kind, ...(description !== undefined && { description }) };
        const declared = await perform(options, (c, actor) => metricsOf(c).declareCustom(request, actor), (client) => client.call<CustomMetricDeclaration>('POST', '/api/v1/monitor/custom-metrics', request));
        out.result(declared, (d) => `${d.thingType} devices may report custom.${d.name} (${d.kind})`);
      }),
    );
  withJson(withConfigFlags(custom.command('list')))
    .description('declared custom metrics')
    .option('--type <thing-type>')
    .action(
      action(async (out, options) => {
        const thingType = optionalString(options.type);
        const declarations = await perform(options, (c) => metricsOf(c).listCustom(thingType), async (client) => (await client.call<{ declarations: CustomMetricDeclaration[] }>('GET', `/api/v1/monitor/custom-metrics${query({ thingType })}`)).declarations);
        out.result({ declarations }, (r) => table(['thing type', 'metric', 'kind', 'description'], r.declarations.map((d) => [d.thingType, d.name, d.kind, d.description])));
      }),
    );
  withJson(withConfigFlags(custom.command('remove')))
    .description('remove a custom metric declaration')
    .argument('<thing-type>')
    .argument('<name>')
    .action(
      action(async (out, options, thingType: string, name: string) => {
        await perform(options, (c, actor) => metricsOf(c).removeCustom(thingType, name, actor), (client) => client.call('DELETE', `/api/v1/monitor/custom-metrics/${segment(thingType)}/${segment(name)}`));
        out.result({ removed: `${thingType}/${name}` }, () => `Removed custom.${name} from ${thingType}`);
      }),
    );
}
