import type { Command } from 'commander';
import type { ThingType } from '../../identity/registry/thing-types.js';
import { action, withJson } from '../action.js';
import { optionalString } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

export function thingTypesCommand(program: Command): void {
  const types = program.command('thing-types').description('kinds of things (device models): create, list, show, update, delete');

  withJson(withConfigFlags(types.command('create')))
    .description('create a thing type')
    .argument('<name>')
    .option('--description <text>', 'what it is')
    .option('--require-hardware-key', 'things of this type must keep their private key in hardware (PKCS#11 token or TPM)')
    .action(
      action(async (out, options, name: string) => {
        const description = optionalString(options.description);
        const request = { name, requireHardwareKey: options.requireHardwareKey === true, ...(description !== undefined && { description }) };
        const type = await perform(options, (context, actor) => context.identity.thingTypes.create(request, actor), (client) => client.call<ThingType>('POST', '/api/v1/thing-types', request));
        out.result(type, describeType);
      }),
    );

  withJson(withConfigFlags(types.command('list')))
    .description('list thing types')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.identity.thingTypes.list(), async (client) => (await client.call<{ thingTypes: ThingType[] }>('GET', '/api/v1/thing-types')).thingTypes);
        out.result({ thingTypes: list }, (r) => (r.thingTypes.length === 0 ? 'No thing types.' : table(['name', 'hardware key', 'description'], r.thingTypes.map((t) => [t.name, t.requireHardwareKey ? 'required' : '-', t.description || '-']))));
      }),
    );

  withJson(withConfigFlags(types.command('show')))
    .description('show a thing type')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        const type = await perform(options, (context) => context.identity.thingTypes.get(name), (client) => client.call<ThingType>('GET', `/api/v1/thing-types/${segment(name)}`));
        out.result(type, describeType);
      }),
    );

  withJson(withConfigFlags(types.command('update')))
    .description('change a thing type')
    .argument('<name>')
    .option('--description <text>', 'what it is')
    .option('--require-hardware-key', 'require hardware-held keys')
    .option('--no-require-hardware-key', 'stop requiring hardware-held keys')
    .action(
      action(async (out, options, name: string) => {
        const description = optionalString(options.description);
        const changes = { ...(description !== undefined && { description }), ...(typeof options.requireHardwareKey === 'boolean' && { requireHardwareKey: options.requireHardwareKey }) };
        const type = await perform(options, (context, actor) => context.identity.thingTypes.update(name, changes, actor), (client) => client.call<ThingType>('PATCH', `/api/v1/thing-types/${segment(name)}`, changes));
        out.result(type, describeType);
      }),
    );

  withJson(withConfigFlags(types.command('delete')))
    .description('delete a thing type no thing uses')
    .argument('<name>')
    .action(
      action(async (out, options, name: string) => {
        await perform(options, (context, actor) => context.identity.thingTypes.delete(name, actor), (client) => client.call<null>('DELETE', `/api/v1/thing-types/${segment(name)}`));
        out.result({ deleted: name }, () => `Deleted thing type ${name}`);
      }),
    );
}

function describeType(type: ThingType): string {
  return `${type.name}${type.requireHardwareKey ? '  (hardware-held keys required)' : ''}${type.description ? `\n  ${type.description}` : ''}`;
}
