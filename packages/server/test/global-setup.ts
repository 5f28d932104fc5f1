import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { TEST_DATABASE_URL } from './helpers/database-url.js';

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string;
  }
}

/**
 * Checks that PostgreSQL answers before any test runs (the suite tests both dialects over real
 * connections), and gives this run an id: its schemas are named `fwtest_<run>_...`, so runs on
 * one database never collide, and teardown drops only this run's schemas.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = randomBytes(4).toString('hex');
  project.provide('runId', runId);
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${TEST_DATABASE_URL} (${(error as Error).message}); .ci/run starts it, or set FLEETWARD_TEST_DATABASE_URL`);
  }
  await client.end();
  return async () => {
    const cleanup = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await cleanup.connect();
    const { rows } = await cleanup.query<{ nspname: string }>(`select nspname from pg_namespace where nspname like $1`, [`fwtest_${runId}_%`]);
    for (const { nspname } of rows) await cleanup.query(`drop schema if exists "${nspname}" cascade`);
    await cleanup.end();
  };
}
