import type { ReadinessCheck } from '../api/routes/health.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Job } from '../jobs/scheduler.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { Outages, type Dependency, type OutageChange } from './outages.js';

/** How often the dependencies are probed; an outage is closed on at most this long after its bound. */
export const PROBE_INTERVAL_MS = 1_000;
/** A database that does not answer `select 1` within this is taken for away. */
const PING_TIMEOUT_MS = 1_000;

export interface FailClosedDependencies {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<NodeMetrics, 'dependencyUp' | 'failClosedDisconnects'>;
  readonly audit: Pick<AuditLog, 'record'>;
  /** How long live sessions keep the policy they were admitted with while a dependency is away. */
  readonly boundSeconds: number;
  readonly store: Pick<Store, 'ping' | 'dialect'>;
  /** This node's link to the cluster's Redis (sessions, takeovers, fan-out); null for a single node. */
  readonly redis: { readonly connected: boolean } | null;
  /** Closes every live device connection of this node (MQTT 5: DISCONNECT 0x89); returns how many. */
  readonly disconnectAll: (why: string) => number;
}

/** Why a CONNECT cannot be admitted now: MQTT 5 CONNACK 0x88 (Server unavailable), the device retries later. */
export interface Unavailable {
  readonly dependency: Dependency;
  /** The stable reason in metrics and the audit trail. */
  readonly reason: 'registry-unavailable' | 'cluster-unavailable';
  readonly message: string;
}

/**
 * Rule 6, fail closed under dependency failure. While the database or (in a cluster) Redis is
 * away, nothing new is admitted: admission cannot read the registry, or cannot coordinate the
 * session with the other nodes (a takeover of the same client id elsewhere would go unseen).
 * Live sessions keep the policy they were admitted with, but only for `boundSeconds`: a
 * revocation made on a node that still reaches the database cannot reach this one meanwhile, so
 * past the bound they are closed and the devices reconnect wherever the node is ready again.
 */
export class FailClosed {
  readonly #deps: FailClosedDependencies;
  readonly #outages: Outages;
  /** Sessions closed during each outage in progress, for the recovery's audit event. */
  readonly #closed = new Map<Dependency, number>();

  constructor(deps: FailClosedDependencies) {
    this.#deps = deps;
    this.#outages = new Outages(deps.boundSeconds * 1000);
  }

  /** The periodic probe: owned by the node's scheduler. */
  job(): Job {
    return { name: 'health.dependencies', everyMs: PROBE_INTERVAL_MS, run: () => this.check() };
  }

  /** Probes each dependency once, acts on what changed, and closes live sessions past the bound. */
  async check(): Promise<void> {
    const database = await this.#deps.store.ping(PING_TIMEOUT_MS).then(
      () => true,
      () => false,
    );
    this.#observe('database', database, this.#deps.clock.now().getTime());
    this.#redisConnected();
    const expired = this.#outages.expired();
    if (expired !== null) this.#closeLive(expired);
  }

  /**
   * Asked at every CONNECT before anything else. Redis is judged on its live link (no I/O, and
   * admitting first would audit a connection the engine then refuses); the database is refused
   * here only past the bound, until a probe finds it back — before that, the registry look-up
   * itself fails, and a device admitted on a lucky query would only be closed at the next probe.
   */
  unavailable(): Unavailable | null {
    if (!this.#redisConnected()) {
      return { dependency: 'redis', reason: 'cluster-unavailable', message: 'the cluster session store cannot be reached; try again later' };
    }
    if (this.#outages.of('database')?.expired === true) {
      return { dependency: 'database', reason: 'registry-unavailable', message: 'the registry cannot be reached; try again later' };
    }
    return null;
  }

  /** The node's readiness checks for Redis (the database has its own): none for a single node. */
  readiness(): Readonly<Record<string, ReadinessCheck>> {
    if (this.#deps.redis === null) return {};
    if (this.#redisConnected()) return { redis: { ok: true, detail: 'Redis reachable' } };
    return { redis: { ok: false, detail: `Redis unreachable${this.#outageDetail('redis')}` } };
  }

  #outageDetail(dependency: Dependency): string {
    const outage = this.#outages.of(dependency);
    if (outage === undefined) return ': new device connections are refused';
    const since = new Date(outage.since).toISOString();
    if (outage.expired) return ` since ${since}: new device connections are refused; live sessions were closed after ${this.#deps.boundSeconds} s`;
    return ` since ${since}: new device connections are refused; live sessions are closed at ${new Date(outage.since + this.#outages.boundMs).toISOString()} unless it is back`;
  }

  /**
   * Redis's live link, taken as an observation each time it is looked at (probe, CONNECT,
   * readiness): an outage shorter than the probe interval is still noticed, logged and audited
   * when a refusal or a not-ready answer came of it. True for a single node.
   */
  #redisConnected(): boolean {
    if (this.#deps.redis === null) return true;
    const connected = this.#deps.redis.connected;
    this.#observe('redis', connected, this.#deps.clock.now().getTime());
    return connected;
  }

  #observe(dependency: Dependency, reachable: boolean, now: number): void {
    this.#deps.metrics.dependencyUp.set({ dependency }, reachable ? 1 : 0);
    const change = this.#outages.observe(dependency, reachable, now);
    if (change !== null) this.#report(change);
  }

  #report(change: OutageChange): void {
    const { logger } = this.#deps;
    const name = this.#label(change.dependency);
    const bound = this.#deps.boundSeconds;
    switch (change.kind) {
      case 'down':
        this.#closed.set(change.dependency, 0);
        logger.warn({ dependency: change.dependency, boundSeconds: bound }, `${name} unreachable: new device connections are refused; live sessions keep the policy they were admitted with for at most ${bound} s`);
        this.#audit('health.dependency.unavailable', change.dependency, { since: new Date(change.at).toISOString(), boundSeconds: bound });
        return;
      case 'expired':
        logger.error({ dependency: change.dependency, since: new Date(change.since).toISOString() }, `${name} unreachable for more than ${bound} s: live device sessions are closed (0x89) and new ones refused until it is back`);
        return;
      case 'up': {
        const seconds = Math.round((change.at - change.since) / 1000);
        const sessionsClosed = this.#closed.get(change.dependency) ?? 0;
        this.#closed.delete(change.dependency);
        logger.info({ dependency: change.dependency, seconds, sessionsClosed }, `${name} reachable again after ${seconds} s: device connections are admitted again`);
        this.#audit('health.dependency.recovered', change.dependency, { since: new Date(change.since).toISOString(), until: new Date(change.at).toISOString(), seconds, boundExceeded: change.expired, sessionsClosed });
        return;
      }
      default: {
        const unknown: never = change;
        throw new Error(`unknown outage change ${JSON.stringify(unknown)}`);
      }
    }
  }

  #closeLive(dependency: Dependency): void {
    const closed = this.#deps.disconnectAll(`${this.#label(dependency)} unreachable for more than ${this.#deps.boundSeconds} s`);
    if (closed === 0) return;
    this.#closed.set(dependency, (this.#closed.get(dependency) ?? 0) + closed);
    this.#deps.metrics.failClosedDisconnects.inc({ dependency }, closed);
    // With the database away the gateway's own audit event of the closing is lost: the log keeps it.
    this.#deps.logger.error({ dependency, closed }, 'live device sessions closed: their policy could no longer be kept current');
  }

  /** Best effort: with the database away an event cannot be recorded, and the log keeps it instead. */
  #audit(action: 'health.dependency.unavailable' | 'health.dependency.recovered', dependency: Dependency, details: Readonly<Record<string, string | number | boolean>>): void {
    const unavailable = action === 'health.dependency.unavailable';
    this.#deps.audit
      .record({ actor: 'node', action, outcome: unavailable ? 'failure' : 'success', target: `dependency:${dependency}`, details: { ...details } })
      .catch((error: unknown) => this.#deps.logger.warn({ err: error, action, dependency }, 'could not audit a dependency status change'));
  }

  #label(dependency: Dependency): string {
    if (dependency === 'redis') return 'Redis';
    return this.#deps.store.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite';
  }
}

