import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { IssuedToken, Operator, TokenRequest, TokenSummary } from '../access/operators.js';
import type { Role } from '../access/roles.js';
import type { AuditVerification } from '../audit/audit-log.js';
import type { AuditRecord } from '../audit/audit-events.js';
import type { NodeContext } from '../node.js';
import { configFrom } from './config-flags.js';
import { RemoteClient } from './remote-client.js';

/** What operator and audit commands need, whether they reach a running node or the data folder. */
export interface Target {
  readonly where: string;
  createOperator(request: { name: string; role: Role } & TokenRequest): Promise<{ operator: Operator; token: IssuedToken }>;
  listOperators(includeRevoked: boolean): Promise<Operator[]>;
  revokeOperator(name: string): Promise<Operator>;
  issueToken(name: string, request: TokenRequest): Promise<IssuedToken>;
  revokeToken(id: string): Promise<TokenSummary>;
  verifyAudit(): Promise<AuditVerification>;
  auditEvents(query: { after?: number; limit: number; action?: string }): Promise<{ events: AuditRecord[]; next: number | null }>;
}

/**
 * Runs a command against the node named by FLEETWARD_URL (with FLEETWARD_TOKEN), or, when no URL
 * is set, directly on the local data folder as `local:<user>`: whoever can read the data folder
 * holds its keys anyway, and this is how a locked-out admin recovers.
 */
export async function withTarget<T>(options: Record<string, unknown>, run: (target: Target) => Promise<T>): Promise<T> {
  const url = process.env.FLEETWARD_URL;
  if (url !== undefined && url !== '') {
    const token = process.env.FLEETWARD_TOKEN;
    if (token === undefined || token === '') throw new FleetwardError('FW_ERR_USAGE', 'FLEETWARD_URL is set but FLEETWARD_TOKEN is not');
    const caFile = process.env.FLEETWARD_CA_FILE ?? join(configFrom(options).config.home, 'ca.pem');
    return run(remoteTarget(new RemoteClient(url, token, caFile), url));
  }
  const { config } = configFrom(options);
  // The node's modules are loaded only by commands that work on the data folder.
  const { closeContext, localActor, openLocal } = await import('../node.js');
  const context = await openLocal(config);
  try {
    return await run(localTarget(context, localActor()));
  } finally {
    await closeContext(context);
  }
}

function localTarget(context: NodeContext, actor: { readonly name: string }): Target {
  const { operators, audit } = context;
  return {
    where: context.layout.root,
    createOperator: (request) => operators.create(request, actor),
    listOperators: (includeRevoked) => operators.list({ includeRevoked }),
    revokeOperator: (name) => operators.revoke(name, actor),
    issueToken: (name, request) => operators.issueToken(name, request, actor),
    revokeToken: (id) => operators.revokeToken(id, actor),
    verifyAudit: () => audit.verifyAs(actor),
    auditEvents: async (query) => {
      const events = await audit.list({ limit: query.limit, ...(query.after !== undefined && { afterSeq: query.after }), ...(query.action !== undefined && { action: query.action }) });
      return { events, next: events.length === query.limit ? (events.at(-1)?.seq ?? null) : null };
    },
  };
}

function remoteTarget(client: RemoteClient, url: string): Target {
  const path = (name: string) => encodeURIComponent(name);
  return {
    where: url,
    createOperator: (request) => client.call('POST', '/api/v1/operators', request),
    listOperators: async (includeRevoked) => (await client.call<{ operators: Operator[] }>('GET', `/api/v1/operators?includeRevoked=${includeRevoked}`)).operators,
    revokeOperator: (name) => client.call('DELETE', `/api/v1/operators/${path(name)}`),
    issueToken: (name, request) => client.call('POST', `/api/v1/operators/${path(name)}/tokens`, request),
    revokeToken: (id) => client.call('DELETE', `/api/v1/tokens/${path(id)}`),
    verifyAudit: () => client.call('GET', '/api/v1/audit/verification'),
    auditEvents: (query) => {
      const params = new URLSearchParams({ limit: String(query.limit), ...(query.after !== undefined && { after: String(query.after) }), ...(query.action !== undefined && { action: query.action }) });
      return client.call('GET', `/api/v1/audit/events?${params.toString()}`);
    },
  };
}
