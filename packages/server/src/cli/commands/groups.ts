import type { Command } from 'commander';
import type { Group } from '../../identity/registry/groups.js';
import { action, withJson } from '../action.js';
import { optionalString } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

export function groupsCommand(program: Command): void {
  const groups = program.command('groups').description('static, nested groups of things: create, list, show, delete, add, remove');

  withJson(withConfigFlags(groups.command('create')))
    .description('create a group, optionally inside another')
    .argument('<name>')
    .option('--parent <group>', 'the group it is nested in')
    .option('--description <text>', 'what it is for')
    .action(
      action(async (out, options, name: string) => {
        const [parent, description] = [options.parent, options.description].map(optionalString);
        const request = { name, ...(parent !== undefined && { parent }), ...(description !== undefined && { description }) };
        const group = await perform(options, (context, actor) => context.identity.groups.create(request, actor), (client) => client.call<Group>('POST', '/api/v1/groups', request));
        out.result(group, describeGroup);
      }),
    );

  withJson(withConfigFlags(groups.command('list')))
    .description('list groups')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.identity.groups.list(), async (client) => (await client.call<{ groups: Group[] }>('GET', '/api/v1/groups')).groups);
        out.result({ groups: list }, (r) => (r.groups.length === 0 ? 'No groups.' : table(['group', 'path', 'things', 'subgroups'], r.groups.map((g) => [g.name, [...g.path, g.name].join(' / '), String(g.memberCount), g.children.join(',') || '-']))));
      }),
    );

  withJson(withConfigFlags(groups.command('show')))
    .description('show a group')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const group = await perform(options, (context) => context.identity.groups.get(name), (client) => client.call<Group>('GET', `/api/v1/groups/${segment(name)}`));
        out.result(group, describeGroup);
      }),
    );

  withJson(withConfigFlags(groups.command('delete')))
    .description('delete a group without subgroups; its things leave it')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        await perform(options, (context, actor) => context.identity.groups.delete(name, actor), (client) => client.call<null>('DELETE', `/api/v1/groups/${segment(name)}`));
        out.result({ deleted: name }, () => `Deleted group ${name}`);
      }),
    );

  for (const [verb, description] of [
    ['add', 'add a thing to a group'],
    ['remove', 'remove a thing from a group'],
  ] as const) {
    withJson(withConfigFlags(groups.command(verb)))
      .description(description)
      .argument('<group>')
      .argument('<thing>')
      .action(
        action(async (out, options, group: string, thing: string) => {
          const result = await perform(
            options,
            async (context, actor) => {
              await (verb === 'add' ? context.identity.groups.addThing(group, thing, actor) : context.identity.groups.removeThing(group, thing, actor));
              return context.identity.groups.get(group);
            },
            (client) => client.call<Group>(verb === 'add' ? 'PUT' : 'DELETE', `/api/v1/groups/${segment(group)}/things/${segment(thing)}`),
          );
          out.result(result, describeGroup);
        }),
      );
  }
}

function describeGroup(group: Group): string {
  return [`${[...group.path, group.name].join(' / ')}  (${group.memberCount} things)`, ...(group.children.length > 0 ? [`  subgroups  ${group.children.join(', ')}`] : []), ...(group.description ? [`  ${group.description}`] : [])].join('\n');
}
