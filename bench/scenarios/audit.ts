import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { AuditEvent } from '../../packages/server/src/audit/audit-events.js';
import type { NodeContext } from '../../packages/server/src/node.js';
import { openBench, type Bench } from '../lib/bench-home.js';
import { missingRow, progress, row, type Row, type Scenario } from '../lib/report.js';

const APPEND_EVENTS = 200_000;
const APPEND_RUNS = 3;
/** Records outstanding at once: the log batches them into group commits. */
const WAVE = 5_000;
const VERIFY_EVENTS = 1_000_000;
const VERIFY_RUNS = 3;
const APPEND_TARGET = 20_000;
const VERIFY_TARGET_S = 10;

/** A typical high-volume event: a failed API authentication. */
const EVENT: AuditEvent = {
  actor: 'operator:bench',
  action: 'auth.failure',
  outcome: 'denied',
  source: '127.0.0.1',
  details: { reason: 'FW_ERR_TOKEN_INVALID', route: 'GET /api/v1/operators' },
};

export const audit: Scenario = {
  name: 'audit',
  description: 'in-process AuditLog: hash-chained append throughput (SQLite, PostgreSQL) and verify() of 1,000,000 events',
  async run() {
    const sqliteRates: number[] = [];
    for (let i = 1; i <= APPEND_RUNS; i += 1) {
      sqliteRates.push(await appendRun(() => openBench()));
      progress(`SQLite append run ${i}/${APPEND_RUNS}: ${Math.round(sqliteRates.at(-1) ?? 0)} events/s`);
    }

    const verify = await verifyRuns();

    const postgresRates: number[] = [];
    let postgresError: string | null = null;
    try {
      for (let i = 1; i <= APPEND_RUNS; i += 1) {
        postgresRates.push(await appendRun(() => openBench(`bench_${randomBytes(6).toString('hex')}`)));
        progress(`PostgreSQL append run ${i}/${APPEND_RUNS}: ${Math.round(postgresRates.at(-1) ?? 0)} events/s`);
      }
    } catch (error) {
      postgresError = error instanceof Error ? error.message : String(error);
      progress(`PostgreSQL skipped: ${postgresError}`);
    }

    const rows: Row[] = [
      row(`SQLite: append ${APPEND_EVENTS.toLocaleString('en-US')} events, ${WAVE.toLocaleString('en-US')} outstanding`, 'events/s', sqliteRates, { atLeast: APPEND_TARGET }),
      row(`SQLite: fill to ${VERIFY_EVENTS.toLocaleString('en-US')} events (same append path)`, 'events/s', [verify.fillRate]),
      row(`SQLite: verify() ${VERIFY_EVENTS.toLocaleString('en-US')} events`, 's', verify.seconds, { below: VERIFY_TARGET_S }),
      postgresRates.length === APPEND_RUNS
        ? row(`PostgreSQL: append ${APPEND_EVENTS.toLocaleString('en-US')} events, ${WAVE.toLocaleString('en-US')} outstanding`, 'events/s', postgresRates)
        : missingRow('PostgreSQL: append', 'events/s', null, `not measured: ${postgresError ?? 'incomplete'}`),
    ];
    return { rows, raw: { appendEvents: APPEND_EVENTS, wave: WAVE, sqliteRates, verify, postgresRates, postgresError } };
  },
};

async function appendRun(open: () => Promise<Bench>): Promise<number> {
  const bench = await open();
  try {
    return await append(bench.context, APPEND_EVENTS);
  } finally {
    await bench.close();
  }
}

/** Records `count` events in waves of WAVE concurrent records; returns events per second. */
async function append(context: NodeContext, count: number): Promise<number> {
  const started = performance.now();
  for (let done = 0; done < count; done += WAVE) {
    const size = Math.min(WAVE, count - done);
    await Promise.all(Array.from({ length: size }, () => context.audit.record(EVENT)));
  }
  return count / ((performance.now() - started) / 1000);
}

async function verifyRuns(): Promise<{ fillRate: number; seconds: number[] }> {
  const bench = await openBench();
  try {
    const { context } = bench;
    // Opening records a few events of its own (node.init, ca.create, ...): fill up to exactly VERIFY_EVENTS.
    const head = await context.store.db.selectFrom('audit_head').select('seq').where('id', '=', 1).executeTakeFirstOrThrow();
    progress(`filling a fresh SQLite home to ${VERIFY_EVENTS.toLocaleString('en-US')} events...`);
    const fillRate = await append(context, VERIFY_EVENTS - head.seq);
    progress(`filled at ${Math.round(fillRate)} events/s`);
    const seconds: number[] = [];
    for (let i = 1; i <= VERIFY_RUNS; i += 1) {
      const started = performance.now();
      const result = await context.audit.verify();
      seconds.push((performance.now() - started) / 1000);
      if (!result.ok || result.checked !== VERIFY_EVENTS) {
        throw new Error(`verify() returned ok=${result.ok} checked=${result.checked} (expected ${VERIFY_EVENTS}): ${result.firstBreak?.message ?? ''}`);
      }
      progress(`verify run ${i}/${VERIFY_RUNS}: ${seconds.at(-1)?.toFixed(2)} s, checked ${result.checked}`);
    }
    return { fillRate, seconds };
  } finally {
    await bench.close();
  }
}
