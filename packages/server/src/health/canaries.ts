import { parseThrottleSettings, type ThrottleSettings } from '../access/throttling/index.js';
import type { AuditLog, AuditVerification } from '../audit/audit-log.js';
import type { ReadinessCheck } from '../api/routes/health.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import type { CertificateAuthorities } from '../identity/certificate-authorities.js';
import type { Certificates } from '../identity/certificates.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Job } from '../jobs/scheduler.js';
import type { TufRepository } from '../updates/tuf/tuf-repository.js';
import { attackAsDevice, attackAuditChain, attackExpired, attackNoClientCertificate, attackPlaintext, attackRevoked, attackUnknownCa, attackUpdateMetadata, expiredCertificate, rogueCertificate } from './canary-attacks.js';
import type { CanaryIdentities, CanaryIdentitySet } from './canary-identities.js';
import { checkError, CONTROLS, isFailing, reportOf, type ControlName, type ControlResult, type ControlsReport, type Verdict } from './controls.js';
import type { ProbeTarget } from './mqtt-probe.js';

/** Where the node is listening, known once it is bound (ports may have been 0 in the configuration). */
export interface CanaryEndpoints {
  readonly mqttPort: number;
  readonly websocketPort: number | null;
  /** The API's URL as bound (`https://127.0.0.1:8443`): CRL and OCSP are read from it. */
  readonly apiUrl: string;
}

export interface CanaryDependencies {
  readonly config: Pick<Config, 'host' | 'limits'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<NodeMetrics, 'controlHeld' | 'controlCheckedAt'>;
  readonly audit: Pick<AuditLog, 'record' | 'verify'>;
  readonly identities: Pick<CanaryIdentities, 'ensure'>;
  readonly cas: Pick<CertificateAuthorities, 'hierarchy' | 'issuing' | 'signingCas'>;
  readonly certificates: Pick<Certificates, 'get'>;
  readonly repository: Pick<TufRepository, 'status' | 'metadataFile'>;
  /** How the audit trail is verified; by default the hash chain (`audit.verify`). Pass the checkpoint verifier to include signed checkpoints. */
  readonly verifyAudit?: () => Promise<AuditVerification>;
  /** The device limits the gateway enforces; by default parsed from `config.limits` as the gateway does. */
  readonly limits?: ThrottleSettings;
  /**
   * A run asked for sooner than this after the last one returns the last report: the canary connects
   * like a device, and on-demand runs in a loop must not spend its connect rate (6 a minute by default).
   */
  readonly minIntervalMs?: number;
}

const MIN_INTERVAL_MS = 15_000;

/**
 * The canaries (rule 6): on a schedule, attack this node's own listeners with the canary identities
 * and record whether each control held. Results are kept in memory (the last one per control, with
 * when it was checked and since when it has had that status), exported as Prometheus gauges, and a
 * control that starts or stops failing is audited (`health.control.failed` / `.recovered`).
 * A failing control makes the node not ready (`readiness()`).
 */
export class Canaries {
  readonly #deps: CanaryDependencies;
  readonly #limits: ThrottleSettings;
  readonly #results = new Map<ControlName, ControlResult>();
  #endpoints: CanaryEndpoints | null = null;
  #checkedAt: string | null = null;
  #running: Promise<ControlsReport> | null = null;
  #rogue: { thing: string; keyPem: string; certPem: string } | null = null;

  constructor(deps: CanaryDependencies) {
    this.#deps = deps;
    this.#limits = deps.limits ?? parseThrottleSettings(deps.config.limits);
  }

  /** Called once the node is listening: the canaries attack what is bound. */
  setEndpoints(endpoints: CanaryEndpoints): void {
    this.#endpoints = endpoints;
  }

  /** The last report (no checks yet before the first run). */
  report(): ControlsReport {
    return reportOf(this.#results, this.#checkedAt);
  }

  /** Runs every canary now; a run already in progress is shared, and one finished less than `minIntervalMs` ago is reused. */
  run(): Promise<ControlsReport> {
    const last = this.#checkedAt === null ? null : Date.parse(this.#checkedAt);
    if (this.#running === null && last !== null && this.#deps.clock.now().getTime() - last < (this.#deps.minIntervalMs ?? MIN_INTERVAL_MS)) return Promise.resolve(this.report());
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** For the node's readiness: not ready while any control is failing. Ready before the first run (start-up is not blocked). */
  readiness(): ReadinessCheck {
    const report = this.report();
    if (report.checkedAt === null) return { ok: true, detail: 'security controls not checked yet' };
    const failing = report.controls.filter((c) => isFailing(c.status));
    if (failing.length === 0) return { ok: true, detail: `${report.controls.filter((c) => c.status === 'held').length} security controls held at ${report.checkedAt}` };
    return { ok: false, detail: `security controls failing: ${failing.map((c) => `${c.control} (${c.status})`).join(', ')}` };
  }

  /** The scheduler job: every `everySeconds` (FLEETWARD_HEALTH_CANARY_INTERVAL_SECONDS). */
  job(everySeconds: number): Job {
    return { name: 'health.canaries', everyMs: everySeconds * 1000, run: () => this.run() };
  }

  async #run(): Promise<ControlsReport> {
    const endpoints = this.#endpoints;
    const verdicts = new Map<ControlName, { verdict: Verdict; started: number; finished: number }>();
    const timed = async (names: readonly ControlName[], attack: () => Promise<Verdict | readonly Verdict[]>) => {
      const started = Date.now();
      let outcome: Verdict | readonly Verdict[];
      try {
        outcome = await attack();
      } catch (error) {
        outcome = checkError(`the check failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      const finished = Date.now();
      names.forEach((name, i) => verdicts.set(name, { verdict: Array.isArray(outcome) ? (outcome[i] as Verdict) : (outcome as Verdict), started, finished }));
    };

    if (endpoints === null) {
      for (const name of CONTROLS.slice(0, 7)) verdicts.set(name, { verdict: checkError('the node is not listening: nothing to attack'), started: Date.now(), finished: Date.now() });
    } else {
      const mqtt: ProbeTarget = { host: loopbackOf(this.#deps.config.host), port: endpoints.mqttPort };
      const ports = [mqtt, ...(endpoints.websocketPort === null ? [] : [{ host: mqtt.host, port: endpoints.websocketPort }])];
      let identities: CanaryIdentitySet | null = null;
      let ca = '';
      try {
        identities = await this.#deps.identities.ensure();
        ca = (await this.#deps.cas.hierarchy()).chainPem;
      } catch (error) {
        const why = checkError(`the canary identities could not be prepared: ${error instanceof Error ? error.message : String(error)}`);
        for (const name of CONTROLS.slice(1, 7)) verdicts.set(name, { verdict: why, started: Date.now(), finished: Date.now() });
      }
      const configured = `no plaintext listener is configured (MQTT on ${endpoints.mqttPort} requires TLS${endpoints.websocketPort === null ? '' : `, MQTT over WebSockets on ${endpoints.websocketPort} requires TLS`})`;
      await timed(['plaintext-refused'], () => attackPlaintext(ports, configured));
      if (identities !== null) {
        const ids = identities;
        await timed(['client-certificate-required'], () => attackNoClientCertificate(mqtt, ca));
        await timed(['unknown-ca-refused'], async () => attackUnknownCa(mqtt, ca, ids.canary, await this.#rogueFor(ids.canary.thing)));
        await timed(['expired-certificate-refused'], async () => attackExpired(mqtt, ca, ids.canary, await expiredCertificate(await this.#deps.cas.issuing(), ids.canary, this.#deps.clock.now())));
        await timed(['revoked-certificate-refused'], async () => {
          const info = await this.#deps.certificates.get(ids.revoked.serial);
          const signing = (await this.#deps.cas.signingCas()).get(info.caId);
          if (signing === undefined) return checkError(`the CA ${info.caId} of the revoked canary certificate no longer signs CRLs`);
          return attackRevoked(mqtt, ca, ids.revoked, { apiUrl: endpoints.apiUrl, caId: info.caId, caCertificate: signing.ca.certificate, now: this.#deps.clock.now() });
        });
        await timed(['cross-thing-denied', 'rate-limit-enforced'], async () => {
          const { crossThing, rateLimit } = await attackAsDevice(mqtt, ca, ids, this.#limits);
          return [crossThing, rateLimit];
        });
      }
    }
    await timed(['tampered-update-rejected'], () => attackUpdateMetadata(this.#deps.repository, this.#deps.clock.now()));
    await timed(['audit-chain-verifies'], () => attackAuditChain({ verify: this.#deps.verifyAudit ?? (() => this.#deps.audit.verify()) }));

    for (const [name, { verdict, started, finished }] of verdicts) await this.#record(name, verdict, finished - started);
    this.#checkedAt = this.#deps.clock.now().toISOString();
    return this.report();
  }

  async #record(control: ControlName, verdict: Verdict, durationMs: number): Promise<void> {
    const checkedAt = this.#deps.clock.now().toISOString();
    const previous = this.#results.get(control);
    const since = previous !== undefined && previous.status === verdict.status ? previous.since : checkedAt;
    this.#results.set(control, { control, status: verdict.status, checkedAt, durationMs, detail: verdict.detail, since });
    this.#deps.metrics.controlHeld.set({ control }, isFailing(verdict.status) ? 0 : 1);
    this.#deps.metrics.controlCheckedAt.set({ control }, Math.floor(Date.parse(checkedAt) / 1000));
    const failing = isFailing(verdict.status);
    const wasFailing = previous !== undefined && isFailing(previous.status);
    if (failing) this.#deps.logger.warn({ control, status: verdict.status, detail: verdict.detail }, 'a security control did not hold');
    if (failing === wasFailing) return;
    await this.#deps.audit
      .record({ actor: 'node', action: failing ? 'health.control.failed' : 'health.control.recovered', outcome: failing ? 'failure' : 'success', target: `control:${control}`, details: { status: verdict.status, detail: verdict.detail.slice(0, 2_000) } })
      .catch((error: unknown) => this.#deps.logger.error({ err: error, control }, 'could not audit a control status change'));
  }

  async #rogueFor(thing: string): Promise<{ keyPem: string; certPem: string }> {
    if (this.#rogue?.thing !== thing) this.#rogue = { thing, ...(await rogueCertificate(thing, this.#deps.clock.now())) };
    return this.#rogue;
  }
}

/** The canaries connect over loopback: to the bound address, or to loopback when the node binds every address. */
export function loopbackOf(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.replace(/^\[(.*)\]$/, '$1');
}
