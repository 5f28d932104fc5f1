import type { Command } from 'commander';
import type { DeviceBan } from '../../access/device-bans.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

const TEN_YEARS_SECONDS = 315_360_000;

/** `fleetward bans ...`: operator bans of devices from the gateway (every node enforces them). */
export function bansCommand(program: Command): void {
  const bans = program.command('bans').description('ban a thing, client id or source address from the device gateway; list and lift bans');

  withJson(withConfigFlags(bans.command('list')))
    .description('bans in force')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.bans.list(), async (client) => (await client.call<{ bans: DeviceBan[] }>('GET', '/api/v1/bans')).bans);
        out.result({ bans: list }, (r) => table(['kind', 'value', 'until', 'by', 'note'], r.bans.map((b) => [b.kind, b.value, b.expiresAt ?? 'lifted', b.createdBy, b.note ?? ''])));
      }),
    );

  withJson(withConfigFlags(bans.command('add')))
    .description('ban: live connections it covers are closed within a second, new ones refused (MQTT 5: CONNACK 0x8A; an address before TLS)')
    .argument('<kind>', 'thing, client-id or address')
    .argument('<value>', 'a thing name, a client id, or an IPv4/IPv6 address or CIDR block')
    .option('--for <seconds>', 'how long; without it, until lifted')
    .option('--note <text>', 'why, for the audit trail and the list')
    .action(
      action(async (out, options, kind: string, value: string) => {
        const durationSeconds = positiveInteger(options.for, '--for', TEN_YEARS_SECONDS);
        const note = optionalString(options.note);
        const request = { kind, value, ...(durationSeconds !== undefined && { durationSeconds }), ...(note !== undefined && { note }) };
        const ban = await perform(options, (context, actor) => context.bans.add(request, actor), (client) => client.call<DeviceBan>('POST', '/api/v1/bans', request));
        out.result(ban, (b) => `Banned ${b.kind} ${b.value} ${b.expiresAt === null ? 'until lifted' : `until ${b.expiresAt}`}`);
      }),
    );

  withJson(withConfigFlags(bans.command('lift')))
    .description('lift a ban')
    .argument('<kind>')
    .argument('<value>')
    .action(
      action(async (out, options, kind: string, value: string) => {
        await perform(options, (context, actor) => context.bans.lift(kind, value, actor), (client) => client.call('DELETE', `/api/v1/bans/${segment(kind)}/${segment(value)}`));
        out.result({ lifted: { kind, value } }, () => `Lifted the ban on ${kind} ${value}`);
      }),
    );
}
