import { join } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { Actor } from '../audit/audit-events.js';
import type { NodeContext } from '../node.js';
import { configFrom } from './config-flags.js';
import { RemoteClient } from './remote-client.js';

/** Where a command acts: a running node's API, or the local data folder directly. */
export type Connection =
  | { readonly kind: 'local'; readonly context: NodeContext; readonly actor: Actor }
  | { readonly kind: 'remote'; readonly client: RemoteClient };

/**
 * Connects to the node named by FLEETWARD_URL (with FLEETWARD_TOKEN), or, when no URL is set,
 * opens the local data folder and acts as `local:<user>`: whoever can read the data folder holds
 * its keys anyway, and this is how a locked-out admin recovers.
 */
export async function withConnection<T>(options: Record<string, unknown>, run: (connection: Connection) => Promise<T>): Promise<T> {
  const url = process.env.FLEETWARD_URL;
  if (url !== undefined && url !== '') {
    const token = process.env.FLEETWARD_TOKEN;
    if (token === undefined || token === '') throw new FleetwardError('FW_ERR_USAGE', 'FLEETWARD_URL is set but FLEETWARD_TOKEN is not');
    const caFile = process.env.FLEETWARD_CA_FILE ?? join(configFrom(options).config.home, 'ca.pem');
    return run({ kind: 'remote', client: new RemoteClient(url, token, caFile) });
  }
  const { config } = configFrom(options);
  // The node's modules are loaded only by commands that work on the data folder.
  const { closeContext, localActor, openLocal } = await import('../node.js');
  const context = await openLocal(config);
  try {
    return await run({ kind: 'local', context, actor: localActor() });
  } finally {
    await closeContext(context);
  }
}

/** One operation, in its local form (domain services) and its remote form (the API). */
export function via<T>(connection: Connection, local: (context: NodeContext, actor: Actor) => Promise<T>, remote: (client: RemoteClient) => Promise<T>): Promise<T> {
  return connection.kind === 'local' ? local(connection.context, connection.actor) : remote(connection.client);
}

/** Runs one operation against the local data folder or the node at FLEETWARD_URL. */
export function perform<T>(options: Record<string, unknown>, local: (context: NodeContext, actor: Actor) => Promise<T>, remote: (client: RemoteClient) => Promise<T>): Promise<T> {
  return withConnection(options, (connection) => via(connection, local, remote));
}

/** Encodes a path segment of an API URL. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** A query string from defined values. */
export function query(values: Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
