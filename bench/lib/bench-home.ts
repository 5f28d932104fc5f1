import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../packages/server/src/config/load-config.js';
import { closeContext, openHome, type NodeContext } from '../../packages/server/src/node.js';

export const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface Bench {
  readonly context: NodeContext;
  close(): Promise<void>;
}

/** A fresh data folder (SQLite, or PostgreSQL in a new schema when one is given), opened like `init` does. */
export async function openBench(postgresSchema?: string): Promise<Bench> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-bench-'));
  const env: Record<string, string> = { FLEETWARD_HOME: join(dir, 'home'), FLEETWARD_LOG_LEVEL: 'silent' };
  if (postgresSchema !== undefined) Object.assign(env, { FLEETWARD_DATABASE_URL: POSTGRES_URL, FLEETWARD_DATABASE_SCHEMA: postgresSchema });
  const cleanup = async () => {
    if (postgresSchema !== undefined) await dropSchema(postgresSchema);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const { context } = await openHome(loadConfig({ env, flags: {} }).config, { create: true });
    return {
      context,
      async close() {
        try {
          await closeContext(context);
        } finally {
          await cleanup();
        }
      },
    };
  } catch (error) {
    await cleanup().catch(() => undefined);
    throw error;
  }
}

/** Drops a throw-away PostgreSQL schema of a bench run. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}
