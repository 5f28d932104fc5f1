import { performance } from 'node:perf_hooks';
import { AuditCheckpoints } from '../../packages/server/src/audit/audit-checkpoints.js';
import type { AuditEvent } from '../../packages/server/src/audit/audit-events.js';
import { AuditLog } from '../../packages/server/src/audit/audit-log.js';
import { settings } from '../../packages/server/src/config/settings.js';
import { openBench } from '../lib/bench-home.js';
import { benchDetection } from '../monitor/detection.js';
import { benchFloodQuarantine } from '../monitor/flood-quarantine.js';
import { progress, row, type Row, type Scenario } from '../lib/report.js';

const APPEND_EVENTS = 200_000;
const APPEND_RUNS = 5;
/** Records outstanding at once: the log batches them into group commits. */
const WAVE = 5_000;
const APPEND_TARGET = 20_000;
/** Checkpoints by count at the default, and by time far more often than the 60 s default, to weigh them. */
const CHECKPOINT_EVERY_EVENTS = settings.audit.checkpointEvents.default;
const CHECKPOINT_EVERY_MS = 1_000;

const EVENT: AuditEvent = {
  actor: 'operator:bench',
  action: 'auth.failure',
  outcome: 'denied',
  source: '127.0.0.1',
  details: { reason: 'FW_ERR_TOKEN_INVALID', route: 'GET /api/v1/operators' },
};

/**
 * Rules 5 and 6 (issue 8): audit appends with signed checkpoints on, the detection engine over one
 * window of a large fleet, and a hostile device's flood to its quarantine end to end.
 */
export const monitoring: Scenario = {
  name: 'monitoring',
  description: 'audit appends with signed checkpoints on (SQLite); detection engine over one window of 100,000 devices; the flood of a hostile device to its quarantine, end to end',
  async run() {
    // BENCH_MONITORING_PARTS=audit,detection,flood picks parts (default: all).
    const parts = new Set((process.env.BENCH_MONITORING_PARTS ?? 'audit,detection,flood').split(','));
    const rows: Row[] = [];
    const raw: Record<string, unknown> = {};
    if (parts.has('audit')) {
      const rates: number[] = [];
      const checkpointCounts: number[] = [];
      for (let i = 1; i <= APPEND_RUNS; i += 1) {
        const { rate, checkpoints } = await appendWithCheckpoints();
        rates.push(rate);
        checkpointCounts.push(checkpoints);
        progress(`SQLite append with checkpoints run ${i}/${APPEND_RUNS}: ${Math.round(rate)} events/s, ${checkpoints} checkpoints`);
      }
      rows.push(
        row(
          `SQLite: append ${APPEND_EVENTS.toLocaleString('en-US')} events, ${WAVE.toLocaleString('en-US')} outstanding, checkpoint every ${CHECKPOINT_EVERY_EVENTS.toLocaleString('en-US')} events and every ${CHECKPOINT_EVERY_MS / 1000} s`,
          'events/s',
          rates,
          { atLeast: APPEND_TARGET },
        ),
      );
      Object.assign(raw, { appendEvents: APPEND_EVENTS, wave: WAVE, checkpointEveryEvents: CHECKPOINT_EVERY_EVENTS, checkpointEveryMs: CHECKPOINT_EVERY_MS, rates, checkpointCounts });
    }
    // Second part: the detection engine over one window of the fleet (bench/monitor/detection.ts).
    if (parts.has('detection')) {
      const detection = await benchDetection();
      rows.push(...detection.rows);
      raw.detection = detection.raw;
    }
    // Third part: a hostile device's flood to its quarantine, end to end (bench/monitor/flood-quarantine.ts).
    if (parts.has('flood')) {
      const flood = await benchFloodQuarantine();
      rows.push(...flood.rows);
      raw.flood = flood.raw;
    }
    return { rows, raw };
  },
};

async function appendWithCheckpoints(): Promise<{ rate: number; checkpoints: number }> {
  const bench = await openBench();
  try {
    const { store, clock, keyRing } = bench.context;
    const checkpoints = new AuditCheckpoints({ store, clock, sealer: keyRing, everyEvents: CHECKPOINT_EVERY_EVENTS, onError: (error) => progress(`checkpoint failed: ${String(error)}`) });
    // The node's own AuditLog, with the checkpoint counter wired into its append hook as node.ts does.
    const audit = new AuditLog(store, clock, (count) => checkpoints.noteAppended(count));
    let timed: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      timed = timed.then(() => checkpoints.checkpoint());
    }, CHECKPOINT_EVERY_MS);
    const started = performance.now();
    for (let done = 0; done < APPEND_EVENTS; done += WAVE) {
      const size = Math.min(WAVE, APPEND_EVENTS - done);
      await Promise.all(Array.from({ length: size }, () => audit.record(EVENT)));
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    await timed;
    await checkpoints.settled();
    const verification = await checkpoints.verify(audit);
    if (!verification.ok) throw new Error(`verification failed after the run: ${verification.firstBreak?.message ?? ''}`);
    return { rate: APPEND_EVENTS / seconds, checkpoints: verification.checkpoints.checked };
  } finally {
    await bench.close();
  }
}
