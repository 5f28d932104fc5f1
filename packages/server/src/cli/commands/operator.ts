import { Option, type Command } from 'commander';
import { FleetwardError } from '@fleetward/protocol';
import type { IssuedToken, Operator, TokenRequest, TokenSummary } from '../../access/operators.js';
import { isRole, ROLES, TOKEN_SCOPES, type TokenScope } from '../../access/roles.js';
import { action, withJson } from '../action.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform, segment } from '../target.js';

export function operatorCommand(program: Command): void {
  const operator = program
    .command('operator')
    .description('operator accounts and API tokens (on the node at FLEETWARD_URL, or on the local data folder)');

  withTokenOptions(withJson(withConfigFlags(operator.command('create'))))
    .description('create an operator and print its first API token (shown once)')
    .argument('<name>', 'operator name: lower-case letters, digits, ".", "_", "-"')
    .addOption(new Option('--role <role>', 'what the operator may do').choices(ROLES).makeOptionMandatory())
    .action(
      action(async (out, options, name: string) => {
        const role = options.role;
        if (!isRole(role)) throw new FleetwardError('FW_ERR_USAGE', `--role must be one of ${ROLES.join(', ')}`);
        const request = { name, role, ...tokenRequest(options) };
        const created = await perform(
          options,
          (context, actor) => context.operators.create(request, actor),
          (client) => client.call<{ operator: Operator; token: IssuedToken }>('POST', '/api/v1/operators', request),
        );
        out.result(created, (r) => `Created operator ${r.operator.name} (${r.operator.role})\n${tokenText(r.token)}`);
      }),
    );

  withJson(withConfigFlags(operator.command('list')))
    .description('list operators and their tokens')
    .option('--all', 'include revoked operators')
    .action(
      action(async (out, options) => {
        const includeRevoked = options.all === true;
        const operators = await perform(
          options,
          (context) => context.operators.list({ includeRevoked }),
          async (client) => (await client.call<{ operators: Operator[] }>('GET', `/api/v1/operators?includeRevoked=${includeRevoked}`)).operators,
        );
        out.result({ operators }, (r) => operatorTable(r.operators));
      }),
    );

  withJson(withConfigFlags(operator.command('revoke')))
    .description('revoke an operator and all its tokens (the last active admin cannot be revoked)')
    .argument('<name>', 'operator name')
    .action(
      action(async (out, options, name: string) => {
        const revoked = await perform(options, (context, actor) => context.operators.revoke(name, actor), (client) => client.call<Operator>('DELETE', `/api/v1/operators/${segment(name)}`));
        out.result(revoked, (r) => `Revoked operator ${r.name} and ${r.tokens.length} token(s)`);
      }),
    );

  withTokenOptions(withJson(withConfigFlags(operator.command('token'))))
    .description('issue another API token to an operator (for rotation); printed once')
    .argument('<name>', 'operator name')
    .action(
      action(async (out, options, name: string) => {
        const request = tokenRequest(options);
        const token = await perform(options, (context, actor) => context.operators.issueToken(name, request, actor), (client) => client.call<IssuedToken>('POST', `/api/v1/operators/${segment(name)}/tokens`, request));
        out.result(token, tokenText);
      }),
    );

  withJson(withConfigFlags(operator.command('revoke-token')))
    .description('revoke one API token by its id (tok_...)')
    .argument('<id>', 'token id, as shown by `operator list`')
    .action(
      action(async (out, options, id: string) => {
        const token = await perform(options, (context, actor) => context.operators.revokeToken(id, actor), (client) => client.call<TokenSummary>('DELETE', `/api/v1/tokens/${segment(id)}`));
        out.result(token, (r) => `Revoked token ${r.id}`);
      }),
    );
}

function withTokenOptions(command: Command): Command {
  return command
    .addOption(new Option('--scope <scope...>', 'what the token may be used for').choices(TOKEN_SCOPES))
    .option('--ttl-days <days>', 'token lifetime in days (default: auth.tokenTtlDays)');
}

function tokenRequest(options: Record<string, unknown>): TokenRequest {
  const request: { scopes?: TokenScope[]; ttlDays?: number } = {};
  if (Array.isArray(options.scope)) request.scopes = options.scope as TokenScope[];
  if (options.ttlDays !== undefined) {
    const days = Number(options.ttlDays);
    if (!Number.isInteger(days)) throw new FleetwardError('FW_ERR_USAGE', `--ttl-days must be a whole number, not ${JSON.stringify(options.ttlDays)}`);
    request.ttlDays = days;
  }
  return request;
}

function tokenText(token: IssuedToken): string {
  return [`Token ${token.id} (scopes ${token.scopes.join(', ')}; expires ${token.expiresAt}); it is shown only now:`, `  ${token.token}`].join('\n');
}

function operatorTable(operators: readonly Operator[]): string {
  if (operators.length === 0) return 'No operators.';
  return table(
    ['operator', 'role', 'state', 'token', 'scopes', 'expires', 'last used'],
    operators.flatMap((o) => {
      const state = o.revokedAt ? 'revoked' : 'active';
      const tokens = o.tokens.length > 0 ? o.tokens : [null];
      return tokens.map((t) => [
        o.name,
        o.role,
        state,
        t ? `${t.id}${t.revokedAt ? ' (revoked)' : ''}` : '-',
        t ? t.scopes.join(',') : '-',
        t ? t.expiresAt : '-',
        t?.lastUsedAt ?? '-',
      ]);
    }),
  );
}
