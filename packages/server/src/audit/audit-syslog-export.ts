import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { connect, type TLSSocket } from 'node:tls';
import { sql, type Kysely } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { Clock } from '../clock.js';
import type { Job } from '../jobs/scheduler.js';
import type { Store } from '../store/store.js';
import type { Tables } from '../store/tables.js';
import type { AuditRecord } from './audit-events.js';
import { octetCounted, rfc5424 } from './syslog-format.js';

const RECORD_COLUMNS = ['seq', 'ts', 'actor', 'action', 'target', 'outcome', 'source', 'details', 'prev_hash as prevHash', 'hash'] as const;
const CURSOR = 'syslog';
const LOCK = 'fleetward.audit.syslog-export';
/** Batches one run sends at most, so a long backlog does not hold the job (and, on PostgreSQL, the lock) forever. */
const MAX_BATCHES_PER_RUN = 50;

export interface SyslogTarget {
  /** `tls://host:port`. */
  readonly url: string;
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Milliseconds for connecting, sending and the collector's close; default 10 s. */
  readonly timeoutMs?: number;
}

export interface AuditSyslogExportDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly target: SyslogTarget;
  readonly batchEvents: number;
  readonly hostname?: string;
  readonly onExported?: (count: number, cursor: number) => void;
}

export interface ExportRun {
  /** Events delivered in this run. */
  readonly sent: number;
  /** The last sequence number the collector acknowledged (by closing the session cleanly). */
  readonly cursor: number;
  /** Another node holds the export lock (PostgreSQL): it exports. */
  readonly skipped: boolean;
}

/**
 * Ships every audit event, in order, to a syslog collector as RFC 5424 over TLS (RFC 5425
 * octet-counted framing), from a cursor kept in the database (`audit_export_cursors`).
 *
 * Delivery is at least once. TCP and RFC 5425 have no application-level acknowledgement, so each
 * batch is sent in its own TLS session that we close (TLS close_notify, then FIN) and the batch
 * counts as delivered only when the collector closes its side in turn: it has then read every
 * byte before our close. Only then does the cursor move. A batch interrupted by an outage is sent
 * again from the cursor, so the collector may see some events twice; each message carries its
 * `seq` (structured data `fleetward@32473 seq=…`) for the collector to de-duplicate on.
 */
export class AuditSyslogExport {
  readonly #deps: AuditSyslogExportDeps;
  readonly #origin: { hostname: string; appName: string };

  constructor(deps: AuditSyslogExportDeps) {
    this.#deps = deps;
    this.#origin = { hostname: deps.hostname ?? hostname(), appName: 'fleetward' };
  }

  /**
   * Sends what is pending since the cursor, batch by batch, saving the cursor after each confirmed
   * batch; throws if the collector fails (what was confirmed stays confirmed).
   */
  async run(): Promise<ExportRun> {
    let sent = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch += 1) {
      const step = await this.#step();
      if (step.skipped) return { ...step, sent };
      sent += step.sent;
      if (step.sent < this.#deps.batchEvents) return { sent, cursor: step.cursor, skipped: false };
    }
    return { sent, cursor: await this.cursor(), skipped: false };
  }

  /** The last sequence number the collector acknowledged. */
  cursor(): Promise<number> {
    return readCursor(this.#deps.store.db);
  }

  /** One batch. On PostgreSQL inside a transaction holding a try-lock, so one node exports at a time. */
  #step(): Promise<ExportRun> {
    const { store } = this.#deps;
    // SQLite: one node; a write transaction would block every audit append while we wait on the network.
    if (store.dialect === 'sqlite') return this.#sendBatch(store.db);
    return store.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext(${LOCK})) as locked`.execute(trx);
      if (rows[0]?.locked !== true) return { sent: 0, cursor: await readCursor(trx), skipped: true };
      return this.#sendBatch(trx);
    });
  }

  async #sendBatch(db: Kysely<Tables>): Promise<ExportRun> {
    const start = await readCursor(db);
    const events: AuditRecord[] = await db.selectFrom('audit_events').select(RECORD_COLUMNS).where('seq', '>', start).orderBy('seq').limit(this.#deps.batchEvents).execute();
    if (events.length === 0) return { sent: 0, cursor: start, skipped: false };
    await deliver(this.#deps.target, events.map((e) => octetCounted(rfc5424(e, this.#origin))));
    const cursor = (events.at(-1) as AuditRecord).seq;
    const now = this.#deps.clock.now().toISOString();
    await db.insertInto('audit_export_cursors').values({ name: CURSOR, seq: cursor, updated_at: now }).onConflict((oc) => oc.column('name').doUpdateSet({ seq: cursor, updated_at: now })).execute();
    this.#deps.onExported?.(events.length, cursor);
    return { sent: events.length, cursor, skipped: false };
  }
}

async function readCursor(db: Kysely<Tables>): Promise<number> {
  const row = await db.selectFrom('audit_export_cursors').select('seq').where('name', '=', CURSOR).executeTakeFirst();
  return row?.seq ?? 0;
}

/**
 * One TLS session: connect, write every frame, close our side, and wait for the collector to close
 * its side. Resolves only on that clean close; anything else (refused, reset, timeout) rejects.
 */
function deliver(target: SyslogTarget, frames: readonly Buffer[]): Promise<void> {
  const url = new URL(target.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = target.timeoutMs ?? 10_000;
  return new Promise<void>((resolve, reject) => {
    let ended = false;
    let settled = false;
    const socket: TLSSocket = connect({
      host,
      port: Number(url.port),
      minVersion: 'TLSv1.2',
      ...(isIP(host) === 0 && { servername: host }),
      ...(target.ca !== undefined && { ca: target.ca }),
      ...(target.cert !== undefined && { cert: target.cert }),
      ...(target.key !== undefined && { key: target.key }),
    });
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new FleetwardError('FW_ERR_REMOTE', `syslog collector ${target.url}: ${error.message}`, { url: target.url }));
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no progress for ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once('end', () => {
      // The collector closing before we closed means it stopped reading: not an acknowledgement.
      if (!ended) fail(new Error('the collector closed the connection before the batch was complete'));
    });
    socket.once('close', (hadError) => {
      if (settled) return;
      if (!ended || hadError) return fail(new Error('the connection closed before the collector confirmed the batch'));
      settled = true;
      resolve();
    });
    socket.once('secureConnect', () => {
      void (async () => {
        for (const frame of frames) {
          if (settled) return;
          if (!socket.write(frame)) await new Promise<void>((done) => socket.once('drain', done));
        }
        ended = true;
        socket.end();
      })().catch(fail);
    });
  });
}

/** Reads the TLS files named by the settings (at each run, so renewed certificates are picked up). */
export async function syslogTarget(settings: { readonly syslogUrl: string; readonly syslogCaFile: string | null; readonly syslogCertFile: string | null; readonly syslogKeyFile: string | null }): Promise<SyslogTarget> {
  const read = (file: string | null): Promise<Buffer | undefined> => (file === null ? Promise.resolve(undefined) : readFile(file));
  const [ca, cert, key] = await Promise.all([read(settings.syslogCaFile), read(settings.syslogCertFile), read(settings.syslogKeyFile)]);
  return { url: settings.syslogUrl, ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}

/**
 * The syslog export job of a serving node, or null when `FLEETWARD_AUDIT_SYSLOG_URL` is unset.
 * A failing run (collector down) keeps the cursor; the next run resumes from it.
 */
export function auditSyslogJob(
  deps: { readonly store: Store; readonly clock: Clock; readonly onExported?: (count: number, cursor: number) => void },
  settings: { readonly syslogUrl: string | null; readonly syslogCaFile: string | null; readonly syslogCertFile: string | null; readonly syslogKeyFile: string | null; readonly syslogIntervalSeconds: number; readonly syslogBatchEvents: number },
): Job | null {
  const url = settings.syslogUrl;
  if (url === null) return null;
  return {
    name: 'audit.syslog-export',
    everyMs: settings.syslogIntervalSeconds * 1000,
    run: async () => {
      const target = await syslogTarget({ ...settings, syslogUrl: url });
      return new AuditSyslogExport({ ...deps, target, batchEvents: settings.syslogBatchEvents }).run();
    },
  };
}
