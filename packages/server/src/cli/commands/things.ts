import { Argument, Option, type Command } from 'commander';
import type { Thing, ThingPage, ThingQuery } from '../../identity/registry/things.js';
import { isThingState, THING_STATES, type ThingState } from '../../identity/registry/lifecycle.js';
import { action, withJson } from '../action.js';
import { keyValues, optionalString, positiveInteger, strings } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, query, segment } from '../target.js';
import { provisionCommand } from './provision.js';

export function thingsCommand(program: Command): void {
  const things = program.command('things').description('the registry of things (devices): create, list, show, update, set-state');

  withJson(withConfigFlags(things.command('create')))
    .description('register a thing; it starts pending until it receives its first certificate')
    .argument('<name>', 'unique name: 1-128 of A-Z a-z 0-9 : _ -')
    .option('--type <type>', 'thing type')
    .option('--attr <key=value...>', 'attributes')
    .option('--group <group...>', 'groups to join')
    .action(
      action(async (out, options, name: string) => {
        const type = optionalString(options.type);
        const request = { name, attributes: keyValues(options.attr, '--attr'), groups: strings(options.group), ...(type !== undefined && { type }) };
        const thing = await perform(options, (context, actor) => context.identity.things.create(request, actor), (client) => client.call<Thing>('POST', '/api/v1/things', request));
        out.result(thing, describeThing);
      }),
    );

  withJson(withConfigFlags(things.command('list')))
    .description('list things, filtered and paged')
    .addOption(new Option('--state <state>', 'only in this state').choices(THING_STATES))
    .option('--type <type>', 'only of this type')
    .option('--group <group>', 'only in this group or a group nested below it')
    .option('--attr <key=value...>', 'only with these attribute values (all must match)')
    .option('--prefix <prefix>', 'only names starting with this')
    .option('--after <name>', 'start after this name (paging)')
    .option('--limit <n>', 'at most this many (1-500)', '100')
    .action(
      action(async (out, options) => {
        const state = isThingState(options.state) ? options.state : undefined;
        const [type, group, prefix, after] = [options.type, options.group, options.prefix, options.after].map(optionalString);
        const attributes = keyValues(options.attr, '--attr');
        const filters: ThingQuery = {
          limit: positiveInteger(options.limit, '--limit', 500) ?? 100,
          attributes,
          ...(state !== undefined && { state }),
          ...(type !== undefined && { type }),
          ...(group !== undefined && { group }),
          ...(prefix !== undefined && { namePrefix: prefix }),
          ...(after !== undefined && { after }),
        };
        const page = await perform(
          options,
          (context) => context.identity.things.list(filters),
          (client) => client.call<ThingPage>('GET', `/api/v1/things${query({ limit: filters.limit, state, type, group, prefix, after, attribute: strings(options.attr) })}`),
        );
        out.result(page, (p) =>
          [
            p.things.length === 0 ? 'No things.' : table(['name', 'state', 'type', 'groups', 'attributes'], p.things.map((t) => [t.name, t.state, t.type ?? '-', t.groups.join(',') || '-', Object.entries(t.attributes).map(([k, v]) => `${k}=${v}`).join(' ') || '-'])),
            ...(p.next ? [`(more: --after ${p.next})`] : []),
          ].join('\n'),
        );
      }),
    );

  withJson(withConfigFlags(things.command('show')))
    .description('show one thing')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const thing = await perform(options, (context) => context.identity.things.get(name), (client) => client.call<Thing>('GET', `/api/v1/things/${segment(name)}`));
        out.result(thing, describeThing);
      }),
    );

  withJson(withConfigFlags(things.command('update')))
    .description("change a thing's type or attributes")
    .argument('<name>')
    .option('--type <type>', 'set the thing type')
    .option('--clear-type', 'remove the thing type')
    .option('--attr <key=value...>', 'set attributes')
    .option('--remove-attr <key...>', 'remove attributes')
    .action(
      action(async (out, options, name: string) => {
        const attributes: Record<string, string | null> = { ...keyValues(options.attr, '--attr'), ...Object.fromEntries(strings(options.removeAttr).map((k) => [k, null])) };
        const type = options.clearType === true ? null : optionalString(options.type);
        const changes = { attributes, ...(type !== undefined && { type }) };
        const thing = await perform(options, (context, actor) => context.identity.things.update(name, changes, actor), (client) => client.call<Thing>('PATCH', `/api/v1/things/${segment(name)}`, changes));
        out.result(thing, describeThing);
      }),
    );

  provisionCommand(things);

  withJson(withConfigFlags(things.command('set-state')))
    .description('move a thing through its lifecycle (pending → active → suspended | quarantined → decommissioned); decommissioning revokes its certificates')
    .argument('<name>')
    .addArgument(new Argument('<state>', 'new state').choices(THING_STATES))
    .option('--reason <text>', 'why (kept in the audit trail)')
    .action(
      action(async (out, options, name: string, state: ThingState) => {
        const reason = optionalString(options.reason);
        const thing = await perform(
          options,
          (context, actor) => context.identity.things.setState(name, state, actor, reason),
          (client) => client.call<Thing>('POST', `/api/v1/things/${segment(name)}/state`, { state, ...(reason !== undefined && { reason }) }),
        );
        out.result(thing, describeThing);
      }),
    );
}

export function describeThing(thing: Thing): string {
  return [
    `${thing.name}  ${thing.state}${thing.type ? `  type ${thing.type}` : ''}`,
    `  groups      ${thing.groups.join(', ') || '-'}`,
    `  attributes  ${Object.entries(thing.attributes).map(([k, v]) => `${k}=${v}`).join(' ') || '-'}`,
    `  created     ${thing.createdAt}; state since ${thing.stateChangedAt}`,
  ].join('\n');
}
