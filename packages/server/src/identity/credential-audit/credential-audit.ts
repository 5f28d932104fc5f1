import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { actorFields, type Actor } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import type { Config } from '../../config/settings.js';
import { lockForTransaction } from '../../store/locks.js';
import type { Store } from '../../store/store.js';
import type { Tables } from '../../store/tables.js';
import { assessCredentials, type AuditSettings, type Finding, type FindingKind, type FindingSeverity } from './checks.js';
import { caFacts, certificateFacts } from './facts.js';

export type AuditTrigger = 'schedule' | 'operator';

export interface CredentialReport {
  /** When the whole fleet was last audited; null if never. Things re-checked since are current too. */
  readonly ranAt: string | null;
  readonly counts: Readonly<Record<FindingSeverity, number>>;
  readonly findings: readonly (Finding & { readonly foundAt: string })[];
}

export interface CredentialAuditDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly config: Config['pki'];
  /** Told the stored findings by severity after each run or re-check (the metrics gauge). */
  readonly onFindings?: (counts: Record<FindingSeverity, number>) => void;
  /** A background re-check failed (it is retried by the next change or the schedule). */
  readonly onError: (error: unknown) => void;
}

export interface FindingFilter {
  readonly kind?: FindingKind;
  readonly severity?: FindingSeverity;
  readonly thing?: string;
  readonly limit: number;
}

/** How long a (certificate, client id) use is not written again: the audit looks at days, not seconds. */
const USE_RESOLUTION_MS = 5 * 60_000;
/** How long recorded uses wait to be written together. */
const USE_WRITE_DELAY_MS = 250;
/** Uses per statement (four bound values a row stay far below SQLite's and PostgreSQL's parameter limits). */
const USE_WRITE_CHUNK = 500;
/** Lifecycle changes arriving together (bulk provisioning) are re-checked in one pass. */
const RECHECK_DELAY_MS = 1_000;

/**
 * The credential audit (rule 2's periodic assessment of rule 1's credentials): runs over the whole
 * fleet on a schedule or on demand, and re-checks a thing at once when its lifecycle or
 * certificates change. Findings are stored, so the report is read without recomputing it.
 */
export class CredentialAudit {
  readonly #deps: CredentialAuditDeps;
  readonly #uses = new Map<string, number>();
  readonly #unwrittenUses = new Map<string, { readonly serial: string; readonly clientId: string; readonly at: string }>();
  #writingUses: Promise<void> | null = null;
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<void> | null = null;
  readonly #lookups = new Set<Promise<void>>();

  constructor(deps: CredentialAuditDeps) {
    this.#deps = deps;
  }

  /** Audits every credential now and replaces the stored findings. */
  async run(trigger: AuditTrigger, actor: Actor): Promise<CredentialReport> {
    const { db, dialect } = this.#deps.store;
    const now = this.#deps.clock.now();
    const findings = assessCredentials(await certificateFacts(db, now), await caFacts(db, now), this.#settings(now));
    await db.transaction().execute(async (trx) => {
      await lockForTransaction(trx, dialect, 'fleetward:credential-audit');
      await trx.deleteFrom('credential_findings').execute();
      await insertFindings(trx, findings, now);
      await trx.insertInto('credential_audit_runs').values({ ran_at: now.toISOString(), trigger, findings: findings.length }).onConflict((oc) => oc.column('ran_at').doNothing()).execute();
      await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'credentials.audit', outcome: 'success', details: { trigger, ...countsOf(findings) } }]);
    });
    await this.#publishCounts();
    return this.report({ limit: 10_000 });
  }

  /** Runs the scheduled audit if the last one (on any node) is older than the interval. */
  async runIfDue(): Promise<boolean> {
    const last = await this.#deps.store.db.selectFrom('credential_audit_runs').select('ran_at').orderBy('ran_at', 'desc').limit(1).executeTakeFirst();
    const due = last === undefined || this.#deps.clock.now().getTime() - Date.parse(last.ran_at) >= this.#deps.config.credentialAuditIntervalHours * 3_600_000;
    if (due) await this.run('schedule', { name: 'node' });
    return due;
  }

  /** Re-checks these things' credentials now (a lifecycle change, an issuance, a revocation). */
  async recheck(things: readonly string[]): Promise<void> {
    if (things.length === 0) return;
    const { db } = this.#deps.store;
    const now = this.#deps.clock.now();
    const facts = await certificateFacts(db, now, things);
    const wanted = new Set(things);
    const findings = assessCredentials(facts, [], this.#settings(now)).filter((f) => f.thing !== null && wanted.has(f.thing));
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('credential_findings').where('thing', 'in', things).execute();
      await insertFindings(trx, findings, now);
    });
    await this.#publishCounts();
  }

  /** Queues a re-check of things; changes arriving within a second are checked together. */
  queueRecheck(things: readonly string[]): void {
    for (const thing of things) this.#pending.add(thing);
    if (this.#pending.size > 0) this.#timer ??= setTimeout(() => void this.flush(), RECHECK_DELAY_MS).unref();
  }

  /** Queues a re-check of the things holding these certificates. */
  queueRecheckOfCertificates(serials: readonly string[]): void {
    if (serials.length === 0) return;
    const lookup = this.#deps.store.db
      .selectFrom('certificates')
      .innerJoin('things', 'things.id', 'certificates.thing_id')
      .select('things.name')
      .where('certificates.serial', 'in', serials)
      .execute()
      .then((rows) => this.queueRecheck(rows.map((r) => r.name)), this.#deps.onError)
      .finally(() => this.#lookups.delete(lookup));
    this.#lookups.add(lookup);
  }

  /** Writes recorded uses and runs the queued re-checks now (before closing the store, and in tests). */
  async flush(): Promise<void> {
    await this.#writingUses?.catch(() => undefined);
    await Promise.all(this.#lookups);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#inFlight !== null) await this.#inFlight;
    if (this.#pending.size === 0) return;
    const things = [...this.#pending];
    this.#pending.clear();
    this.#inFlight = this.recheck(things)
      .catch(this.#deps.onError)
      .finally(() => {
        this.#inFlight = null;
      });
    await this.#inFlight;
  }

  /** The stored findings, most severe first. */
  async report(filter: FindingFilter): Promise<CredentialReport> {
    const { db } = this.#deps.store;
    let query = db.selectFrom('credential_findings').selectAll();
    if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
    if (filter.severity !== undefined) query = query.where('severity', '=', filter.severity);
    if (filter.thing !== undefined) query = query.where('thing', '=', filter.thing);
    const rows = await query.orderBy('found_at', 'desc').orderBy('id').execute();
    const findings = rows
      .map((r) => ({ kind: r.kind as FindingKind, severity: r.severity as FindingSeverity, thing: r.thing, serial: r.serial, caId: r.ca_id, message: r.message, foundAt: r.found_at }))
      .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
    const last = await db.selectFrom('credential_audit_runs').select('ran_at').orderBy('ran_at', 'desc').limit(1).executeTakeFirst();
    return { ranAt: last?.ran_at ?? null, counts: countsOf(findings), findings: findings.slice(0, filter.limit) };
  }

  /**
   * Records that a certificate connected as a client id (the gateway calls this on every
   * admission): marks the certificate used, and lets the audit see one certificate on several devices.
   */
  async recordUse(serial: string, clientId: string): Promise<void> {
    const now = this.#deps.clock.now();
    const key = `${serial}\u0000${clientId}`;
    const last = this.#uses.get(key);
    if (last !== undefined && now.getTime() - last < USE_RESOLUTION_MS) return;
    this.#uses.set(key, now.getTime());
    this.#unwrittenUses.set(key, { serial, clientId, at: now.toISOString() });
    // Group commit: the uses of a quarter second (a reconnect storm's thousands) are one transaction.
    this.#writingUses ??= new Promise<void>((done) => setTimeout(done, USE_WRITE_DELAY_MS)).then(() => this.#writeUses());
    await this.#writingUses;
  }

  async #writeUses(): Promise<void> {
    const uses = [...this.#unwrittenUses.values()];
    this.#unwrittenUses.clear();
    this.#writingUses = null;
    // A few statements per batch, not two per use: in a reconnect storm the per-statement cost was most of a connect's.
    await this.#deps.store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < uses.length; i += USE_WRITE_CHUNK) {
        const chunk = uses.slice(i, i + USE_WRITE_CHUNK);
        await trx
          .insertInto('certificate_uses')
          .values(chunk.map(({ serial, clientId, at }) => ({ serial, client_id: clientId, first_seen_at: at, last_seen_at: at })))
          .onConflict((oc) => oc.columns(['serial', 'client_id']).doUpdateSet({ last_seen_at: (eb) => eb.ref('excluded.last_seen_at') }))
          .execute();
        // Uses are recorded at a resolution of minutes: the batch's latest time stands for each of its certificates.
        const latest = chunk.reduce((max, use) => (use.at > max ? use.at : max), '');
        await trx.updateTable('certificates').set({ last_used_at: latest }).where('serial', 'in', [...new Set(chunk.map((use) => use.serial))]).execute();
      }
    });
  }

  #settings(now: Date): AuditSettings {
    const { expiryWarningDays, caExpiryWarningDays, unusedCertificateDays, renewalWindowDays } = this.#deps.config;
    return { now, expiryWarningDays, caExpiryWarningDays, unusedCertificateDays, renewalWindowDays };
  }

  async #publishCounts(): Promise<void> {
    if (!this.#deps.onFindings) return;
    const rows = await this.#deps.store.db.selectFrom('credential_findings').select(['severity', (eb) => eb.fn.countAll<number>().as('count')]).groupBy('severity').execute();
    const counts = { high: 0, medium: 0, low: 0 };
    for (const row of rows) counts[row.severity as FindingSeverity] = Number(row.count);
    this.#deps.onFindings(counts);
  }
}

const SEVERITY_ORDER: Readonly<Record<FindingSeverity, number>> = { high: 0, medium: 1, low: 2 };

function countsOf(findings: readonly Finding[]): Record<FindingSeverity, number> {
  const counts = { high: 0, medium: 0, low: 0 };
  for (const finding of findings) counts[finding.severity] += 1;
  return counts;
}

async function insertFindings(db: Kysely<Tables>, findings: readonly Finding[], now: Date): Promise<void> {
  const at = now.toISOString();
  for (let i = 0; i < findings.length; i += 500) {
    const rows = findings.slice(i, i + 500).map((f) => ({ id: randomUUID(), kind: f.kind, severity: f.severity, thing: f.thing, serial: f.serial, ca_id: f.caId, message: f.message, found_at: at }));
    await db.insertInto('credential_findings').values(rows).execute();
  }
}
