import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/settings.js';
import { TEST_DATABASE_URL } from './database-url.js';

export type Dialect = 'sqlite' | 'postgres';
export const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres'];

/** A fresh data folder (and, for PostgreSQL, a fresh schema) described as FLEETWARD_* variables. */
export interface TestEnvironment {
  readonly dialect: Dialect;
  readonly home: string;
  readonly env: Readonly<Record<string, string>>;
  config(extra?: Readonly<Record<string, string>>): Config;
  cleanup(): Promise<void>;
}

export async function testEnvironment(dialect: Dialect, extra: Readonly<Record<string, string>> = {}): Promise<TestEnvironment> {
  const parent = await mkdtemp(join(tmpdir(), 'fleetward-test-'));
  const home = join(parent, 'home');
  const schema = `fwtest_${inject('runId')}_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    FLEETWARD_HOME: home,
    FLEETWARD_LOG_LEVEL: 'silent',
    FLEETWARD_API_PORT: '0',
    FLEETWARD_MQTT_PORT: '0',
    // Devices in most tests publish without data contracts; the data tests set `refuse`, the default.
    FLEETWARD_DATA_UNMATCHED_TOPICS: 'pass-unclassified',
    // The canaries register things, issue and revoke certificates and connect: only their own tests run them.
    FLEETWARD_HEALTH_CANARIES: 'off',
    ...(dialect === 'postgres' && { FLEETWARD_DATABASE_URL: TEST_DATABASE_URL, FLEETWARD_DATABASE_SCHEMA: schema }),
    ...extra,
  };
  return {
    dialect,
    home,
    env,
    config: (more = {}) => loadConfig({ env: { ...env, ...more }, flags: {} }).config,
    async cleanup() {
      await rm(parent, { recursive: true, force: true });
      if (dialect === 'postgres') await dropSchema(schema);
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/** A clock the test moves by hand. */
export class TestClock implements Clock {
  #now: number;
  constructor(start = Date.parse('2026-11-25T12:00:00.000Z')) {
    this.#now = start;
  }
  now(): Date {
    return new Date(this.#now);
  }
  nowMs(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}
