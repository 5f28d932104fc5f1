import type { Duplex } from 'node:stream';
import {
  createBroker,
  createMemoryPersistence,
  type Admission,
  type Broker,
  type ClientRef,
  type ConnectRefusalCode,
  type ConnectRequest,
  type ConnectionInfo,
  type DisconnectReasonCode,
  type Message,
  type PublishRefusalCode,
  type PublishVerdict,
  type RedisNode,
  type Subscription,
} from '@fleetward/broker';
import { deviceReportKind, parseDeviceMetrics, parseInventory, parseReservedRequest, Topics, type PendingJobs, type RenewalRequired } from '@fleetward/protocol';
import type { CompiledPolicy } from '../access/policy/index.js';
import { describeThrottleSummary, parseThrottleSettings, refusalResponse, Throttle, type RefusalResponse, type ThrottleRefusal, type ThrottleSummary } from '../access/throttling/index.js';
import type { Actor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import type { Certificates } from '../identity/certificates.js';
import type { CredentialAudit } from '../identity/credential-audit/credential-audit.js';
import type { IdentityEvents } from '../identity/events.js';
import { validAt } from '../identity/keys.js';
import type { ClaimProvisioning } from '../identity/provisioning/claim.js';
import type { Groups } from '../identity/registry/groups.js';
import type { ThirdPartyCas } from '../identity/third-party-cas.js';
import type { VerifiedCertificate } from '../identity/verified-certificate.js';
import type { DeviceBans } from '../access/device-bans.js';
import type { DataIngest } from '../data/data-ingest.js';
import type { SealingKeys } from '../data/sealing-keys.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { affectsConnection, type PolicyChanges, type PolicyStore } from '../access/policy-store/index.js';
import { connectionPolicy, type PolicySource } from './connection-policy.js';
import { identify, type DeviceIdentity } from './device-identity.js';
import { DeviceListener, type SourceDecision } from './device-listener.js';
import { WebSocketListener } from './websocket-listener.js';
import { RegistryWatch } from './registry-watch.js';
import { answerReservedRequest, deviceReportProblem, type UpdateJobs } from './reserved-requests.js';
import type { SoftwareInventory } from '../updates/software-inventory.js';
import type { DeviceHealth } from '../updates/device-health.js';
import type { MonitorWindows } from '../monitor/monitor-windows.js';
import type { SessionTickets } from './session-tickets.js';
import { deviceTlsOptions, type ServerTlsCredentials } from './tls-policy.js';
import type { Unavailable } from '../health/fail-closed.js';

/**
 * One admitted connection: who it is and what it may do, as the registry said at CONNECT and
 * again after every policy-relevant change (policy, attachment, group membership, attribute).
 */
export interface DeviceSession {
  identity: DeviceIdentity;
  policy: CompiledPolicy;
  /** The policies `policy` was compiled from. */
  policyNames: readonly string[];
  readonly clientId: string;
  readonly certificate: VerifiedCertificate;
  readonly source: string;
  /** Whom the throttles count this connection against: the thing, or for a claim certificate the client id. */
  readonly throttleKey: string;
}

export interface GatewayDependencies {
  readonly config: Config;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  readonly events: IdentityEvents;
  readonly groups: Groups;
  readonly thirdPartyCas: ThirdPartyCas;
  readonly claims: ClaimProvisioning;
  readonly certificates: Certificates;
  readonly credentialAudit: CredentialAudit;
  readonly policies: PolicySource & Pick<PolicyStore, 'changeCursor' | 'changesSince'>;
  /** Operator bans, stored: every node enforces them. */
  readonly bans: Pick<DeviceBans, 'list' | 'fingerprint'>;
  /** Data contracts (rule 9): every application publish is checked and minimized before fan-out. */
  readonly data: { readonly ingest: Pick<DataIngest, 'inspect' | 'contracts'>; readonly sealing: Pick<SealingKeys, 'current'> };
  /** Update jobs and the software inventory (rule 4): devices' job requests and reports, and what they report running. */
  readonly updates: { readonly jobs: UpdateJobs; readonly inventory: Pick<SoftwareInventory, 'record'>; readonly health: Pick<DeviceHealth, 'record' | 'denied'> };
  /** Rule 5's per-device security metrics: cloud-side counts per window, and the device's own reports. */
  readonly monitor: Pick<MonitorWindows, 'cloud' | 'report'>;
  /** Where sampled policy evaluation times go (seconds), for the platform metrics. */
  readonly policyTiming?: { observe(seconds: number): void };
  /** The CAs devices chain to changed somewhere (this node, another, the CLI): rebuild the trust anchors. */
  readonly onTrustChanged: () => Promise<unknown>;
  /** Rule 6, fail closed: whether a dependency admission cannot do without (database, Redis) is away now. */
  readonly availability: { unavailable(): Unavailable | null };
  /** TLS session resumption for reconnecting devices; null: every connection is a full handshake. */
  readonly sessionTickets: SessionTickets | null;
}

/** What the device listeners' TLS settings are built from. */
interface ListenerTls {
  readonly credentials: ServerTlsCredentials;
  readonly trustAnchors: string;
}

/** How often the registry is polled for changes made by other processes and nodes. */
const WATCH_INTERVAL_MS = 500;
/** How often the throttles forget idle state and hand over refusal summaries for the audit trail. */
const THROTTLE_TICK_MS = 1_000;
/** Server-initiated DISCONNECT for a revoked, suspended or deregistered credential (MQTT 5: Administrative action). */
const REVOKED: DisconnectReasonCode = 0x98;
const GATEWAY: Actor = { name: 'gateway' };
/** User property naming the client an answer on a reserved topic is for. */
const REPLY_FOR = 'fleetward-reply-for';

/**
 * The device gateway (rules 2 and 3): MQTT 3.1.1 and 5.0 over mutual TLS on the broker engine,
 * whose hooks it supplies. Admission asks the registry (certificate active, thing allowed to
 * connect, client id allowed by policy); every publish, subscribe and delivery asks the policy
 * compiled for the connection; a revocation or lifecycle change closes live connections on every
 * node within a second.
 */
export class DeviceGateway {
  readonly broker: Broker<DeviceSession>;
  readonly throttle: Throttle;
  readonly #deps: GatewayDependencies;
  readonly #redis: RedisNode | null;
  readonly #watch: RegistryWatch;
  /** Live connections per client id, to tell a takeover from a first connection. */
  readonly #live = new Map<string, number>();
  /** Every admitted connection of this node, to re-evaluate when policies change. */
  readonly #sessions = new Set<DeviceSession>();
  readonly #sessionOf = new WeakMap<ConnectionInfo, DeviceSession>();
  /**
   * The verified client certificate of each connection the listeners handed over. Kept here, not in
   * the engine's ConnectionInfo (an X509Certificate there): admission reads it without parsing it.
   */
  readonly #certificateOf = new WeakMap<ConnectionInfo, VerifiedCertificate>();
  #policyCursor = 0;
  #evaluations = 0;
  #banFingerprint = '';
  #listener: DeviceListener | null = null;
  #websocket: WebSocketListener | null = null;
  #timer: NodeJS.Timeout | null = null;
  #throttleTimer: NodeJS.Timeout | null = null;
  #ticketTimer: NodeJS.Timeout | null = null;
  /** What the listeners' TLS contexts are built from (listen, then setTrust). */
  #tls: ListenerTls | null = null;
  #polling: Promise<void> | null = null;
  readonly #unsubscribe: (() => void)[] = [];

  /** With `redis`, sessions, retained messages and fan-out are shared with the other nodes of the cluster. */
  constructor(deps: GatewayDependencies, redis: RedisNode | null = null) {
    this.#deps = deps;
    this.#redis = redis;
    this.#watch = new RegistryWatch(deps.store);
    this.throttle = new Throttle(parseThrottleSettings(deps.config.limits), deps.clock.now().getTime());
    const { settings } = this.throttle;
    this.broker = createBroker<DeviceSession>(
      {
        ...(redis === null ? { persistence: createMemoryPersistence() } : redis.options),
        // The per-device limits the engine enforces itself; the throttles count its refusals through onLimit.
        limits: { ...this.throttle.engineLimits, maxSubscriptionsPerClient: settings.maxSubscriptionsPerThing, maxConnections: settings.maxConnections },
      },
      {
        admit: (connect, connection) => this.#admit(connect, connection),
        authorizePublish: (client, message) => this.#authorizePublish(client, message),
        authorizeSubscribe: (client, subscription) => this.#authorizeSubscribe(client, subscription),
        authorizeDelivery: (client, message) => this.#authorizeDelivery(client, message),
        onError: (error, hook) => deps.logger.error({ err: error, hook }, 'a gateway hook failed'),
        onLimit: (event) => deps.metrics.mqttLimited.inc({ limit: event.limit }),
      },
    );
    const { events } = deps;
    this.#unsubscribe.push(
      events.on('certificatesRevoked', ({ serials }) => this.#closeRevoked(serials)),
      events.on('thingStateChanged', ({ thing, from, to }) => {
        if (!(from === 'pending' && to === 'active')) this.#closeThing(thing, `thing is now ${to}`);
      }),
      events.on('rotationRequested', ({ thing, serial }) => this.#askToRenew(thing, serial)),
    );
  }

  /**
   * Starts the mutual TLS listener on `mqtt.port`, and MQTT over secure WebSockets on
   * `mqtt.websocketPort` when set; returns the ports bound.
   */
  async listen(credentials: ServerTlsCredentials, trustAnchors: string): Promise<{ readonly port: number; readonly websocketPort: number | null }> {
    const { config } = this.#deps;
    const admission = {
      admitSource: (source: string): SourceDecision => {
        const decision = this.throttle.allowHandshake(source, this.#now());
        if (decision.action !== 'refuse') return decision;
        this.#deps.metrics.mqttThrottled.inc({ reason: decision.refusal });
        return { action: 'refuse' };
      },
      onHandshakeFailure: (source: string, error: Error) => {
        this.throttle.onHandshakeFailed(source, this.#now());
        this.#deps.metrics.mqttHandshakeFailures.inc();
        this.#deps.logger.debug({ source, err: error }, 'device TLS handshake refused');
      },
    };
    this.#tls = { credentials, trustAnchors };
    const tls = this.#deviceTls(this.#tls);
    this.#listener = new DeviceListener(tls, {
      ...admission,
      onDevice: (socket, certificate) => this.#serve(socket, { transport: 'tls', remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 }, certificate),
    });
    const port = await this.#listener.listen(config.host, config.mqtt.port);
    let websocketPort: number | null = null;
    if (config.mqtt.websocketPort !== null) {
      this.#websocket = new WebSocketListener(tls, {
        ...admission,
        onDevice: (stream, source, certificate) => this.#serve(stream, { transport: 'websocket', ...source }, certificate),
      });
      websocketPort = await this.#websocket.listen(config.host, config.mqtt.websocketPort);
    }
    await this.#watch.begin(this.#deps.clock.now());
    this.#policyCursor = await this.#deps.policies.changeCursor();
    await this.#syncBans();
    this.#timer = setInterval(() => void this.pollRegistry(), WATCH_INTERVAL_MS).unref();
    this.#throttleTimer = setInterval(() => void this.#auditRefusals(this.throttle.tick(this.#now())), THROTTLE_TICK_MS).unref();
    this.#scheduleTicketRotation();
    return { port, websocketPort };
  }

  /** New trust anchors or server certificate (a rotated CA, a registered or deregistered third-party CA): tickets issued before no longer resume. */
  setTrust(credentials: ServerTlsCredentials, trustAnchors: string): void {
    this.#tls = { credentials, trustAnchors };
    const tls = this.#deviceTls(this.#tls);
    this.#listener?.setTls(tls);
    this.#websocket?.setTls(tls);
  }

  #deviceTls({ credentials, trustAnchors }: ListenerTls): ReturnType<typeof deviceTlsOptions> {
    const tickets = this.#deps.sessionTickets;
    return deviceTlsOptions(credentials, this.#deps.config.tls.minVersion, trustAnchors, tickets === null ? null : { keys: tickets.keysFor(trustAnchors, this.#deps.clock.now()), lifetimeSeconds: tickets.lifetimeSeconds });
  }

  /** At the end of each ticket period the listeners take the next period's keys. */
  #scheduleTicketRotation(): void {
    const tickets = this.#deps.sessionTickets;
    if (tickets === null) return;
    this.#ticketTimer = setTimeout(() => {
      if (this.#tls === null) return;
      const keys = tickets.keysFor(this.#tls.trustAnchors, this.#deps.clock.now());
      this.#listener?.setTicketKeys(keys);
      this.#websocket?.setTicketKeys(keys);
      this.#scheduleTicketRotation();
    }, tickets.msUntilRotation(this.#deps.clock.now()) + 1).unref();
  }

  /** Applies registry changes made elsewhere (other nodes, the CLI); the timer calls it, tests too. */
  pollRegistry(): Promise<void> {
    this.#polling ??= this.#watch
      .poll(this.#deps.clock.now())
      .then(async (changes) => {
        if (changes.revokedSerials.length > 0) this.#closeRevoked(changes.revokedSerials);
        for (const { name, state } of changes.things) if (state !== 'active') this.#closeThing(name, `thing is now ${state}`);
        if (changes.trustChanged) void this.#deps.onTrustChanged().catch((error: unknown) => this.#deps.logger.error({ err: error }, 'could not refresh the device trust anchors'));
        if (changes.retiredCas.length > 0) {
          const retired = new Set(changes.retiredCas);
          this.#close((s) => retired.has(s.identity.caId), 'its CA was deregistered');
        }
        await this.#applyPolicyChanges();
        await this.#syncBans();
      })
      .catch((error: unknown) => this.#deps.logger.warn({ err: error }, 'could not poll the registry for revocations'))
      .finally(() => {
        this.#polling = null;
      });
    return this.#polling;
  }

  /** Recompiles the policy of every live connection a policy, attachment, group or attribute change reaches. */
  async #applyPolicyChanges(): Promise<void> {
    const changes = await this.#deps.policies.changesSince(this.#policyCursor);
    this.#policyCursor = changes.cursor;
    if (!changes.reset && changes.policies.length + changes.things.length + changes.groups.length + changes.certificates.length === 0) return;
    const affected = [...this.#sessions].filter((session) => reached(changes, session));
    const refused: DeviceSession[] = [];
    for (const session of affected) {
      const identity = await identify(this.#deps, session.certificate, session.source);
      if (identity === null) continue;
      const { policy, names } = await connectionPolicy(this.#deps.policies, identity, session.source, session.clientId);
      Object.assign(session, { identity, policy, policyNames: names });
      if (!policy.allows('mqtt:connect', session.clientId)) refused.push(session);
    }
    if (refused.length > 0) this.#close((s) => refused.includes(s), 'its policies no longer allow its client id', 0x87);
  }

  /** Loads the operators' bans when they changed, and closes live connections a new ban covers. */
  async #syncBans(): Promise<void> {
    const fingerprint = await this.#deps.bans.fingerprint();
    if (fingerprint === this.#banFingerprint) return;
    this.#banFingerprint = fingerprint;
    const now = this.#now();
    const stored = await this.#deps.bans.list();
    for (const ban of this.throttle.bans(now)) if (ban.reason === 'operator') this.throttle.unban(ban.target);
    for (const ban of stored) {
      const result = this.throttle.ban({ kind: ban.kind, value: ban.value }, { expiresAt: ban.expiresAt === null ? null : Date.parse(ban.expiresAt), by: ban.createdBy, ...(ban.note !== null && { note: ban.note }) }, now);
      if (result === 'full') this.#deps.logger.error({ ban: `${ban.kind}:${ban.value}` }, 'the ban list is full (limits.maxBans): ban not enforced');
    }
    this.#close((s) => this.throttle.banFor(s.throttleKey, s.clientId, s.source, now) !== undefined, 'banned by an operator');
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#throttleTimer !== null) clearInterval(this.#throttleTimer);
    if (this.#ticketTimer !== null) clearTimeout(this.#ticketTimer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.#polling;
    await this.broker.close();
    await this.#redis?.close();
    await this.#listener?.close();
    await this.#websocket?.close();
    await this.#auditRefusals(this.throttle.flush());
  }

  /** Refusals by the throttles reach the audit trail as one summary per device or source and interval, so a flood cannot flood it. */
  #auditRefusals(summaries: readonly ThrottleSummary[]): Promise<void> {
    if (summaries.length === 0) return Promise.resolve();
    const recorded = summaries.map((summary) =>
      this.#deps.audit.record({
        actor: GATEWAY.name,
        action: 'mqtt.throttled',
        outcome: 'denied',
        ...(summary.subject !== 'other' && { target: `${summary.subject}:${summary.name}` }),
        details: { summary: describeThrottleSummary(summary), counts: summary.counts, total: summary.total, from: new Date(summary.firstAt).toISOString(), to: new Date(summary.lastAt).toISOString() },
      }),
    );
    return Promise.all(recorded).then(
      () => undefined,
      (error: unknown) => this.#deps.logger.error({ err: error }, 'could not audit throttle refusals'),
    );
  }

  #now(): number {
    return this.#deps.clock.nowMs();
  }

  /** One device connection, over TLS or a secure WebSocket, whose certificate the TLS layer verified. */
  #serve(stream: Duplex, connection: ConnectionInfo, certificate: VerifiedCertificate): void {
    this.#certificateOf.set(connection, certificate);
    stream.once('close', () => {
      const session = this.#sessionOf.get(connection);
      if (session === undefined) return;
      this.#sessions.delete(session);
      const { clientId, throttleKey, identity } = session;
      if (identity.kind === 'device') this.#deps.monitor.cloud.disconnected(identity.thing, identity.serial, session.source, this.#deps.clock.now());
      this.throttle.onDisconnect(throttleKey, clientId);
      const left = (this.#live.get(clientId) ?? 1) - 1;
      if (left > 0) this.#live.set(clientId, left);
      else this.#live.delete(clientId);
    });
    this.broker.handle(stream, connection);
  }

  async #admit(connect: ConnectRequest, connection: ConnectionInfo): Promise<Admission<DeviceSession>> {
    const clientId = connect.clientId === '' ? (connect.assignedClientId ?? '') : connect.clientId;
    const source = connection.remoteAddress;
    const certificate = this.#certificateOf.get(connection);
    const refuse = async (reasonCode: 0x87 | 0x85 | 0x88, reason: string, message: string, identity?: DeviceIdentity): Promise<Admission<DeviceSession>> => {
      this.#deps.metrics.mqttConnects.inc({ outcome: 'denied', reason });
      // A node that cannot serve (0x88) says nothing about the device: no authentication failure counts against it.
      if (reasonCode !== 0x88) this.#deps.monitor.cloud.connectAttempt(identity?.kind === 'device' ? identity.thing : null, source, reason === 'client-id' ? 'authz-failure' : 'authn-failure');
      // With the database down the refusal cannot be recorded; the device is refused all the same (fail closed).
      await this.#deps.audit
        .record({ actor: actorOf(identity), action: 'mqtt.connect', outcome: 'denied', source, target: targetOf(identity), details: { reason, clientId: clientId.slice(0, 128) } })
        .catch((error: unknown) => this.#deps.logger.error({ err: error, reason }, 'could not record a refused connection'));
      return { admit: false, reasonCode, reasonString: message };
    };
    if (certificate === undefined) return refuse(0x87, 'no-certificate', 'a client certificate is required');
    // A full handshake checked this; a resumed one (a session ticket) did not, and a ticket may outlive the certificate.
    if (!validAt(certificate, this.#deps.clock.now())) return refuse(0x87, 'certificate-expired', 'this certificate is expired or not yet valid');
    // Before any look-up: admitting now would audit a session the engine cannot open, or one whose policy could go stale unseen.
    const unavailable = this.#deps.availability.unavailable();
    if (unavailable !== null) return refuse(0x88, unavailable.reason, unavailable.message);
    let identity: DeviceIdentity | null;
    try {
      identity = await identify(this.#deps, certificate, source);
    } catch {
      // Nothing is admitted on data the node cannot read: MQTT 5 "Server unavailable", the device retries later.
      return refuse(0x88, 'registry-unavailable', 'the registry cannot be reached; try again later');
    }
    if (identity === null) return refuse(0x87, 'unknown-certificate', 'this certificate was not issued or registered by Fleetward');
    if (identity.certificateStatus !== 'active') return refuse(0x87, 'certificate-revoked', 'this certificate is revoked', identity);
    if (identity.kind === 'device' && identity.thingState !== 'active' && identity.thingState !== 'quarantined') return refuse(0x87, 'thing-state', `the thing is ${identity.thingState}`, identity);
    const { policy, names } = await connectionPolicy(this.#deps.policies, identity, source, clientId);
    if (!policy.allows('mqtt:connect', clientId)) return refuse(0x85, 'client-id', `client id ${clientId} is not allowed for this certificate (by default a device connects as its thing name)`, identity);
    // Several devices share a claim certificate: each of them is throttled by its own client id.
    const throttleKey = identity.kind === 'device' ? identity.thing : `claim:${clientId}`;
    const verdict = this.throttle.allowConnect(throttleKey, clientId, source, this.#now());
    if (verdict !== 'ok') {
      this.#deps.monitor.cloud.connectAttempt(identity.kind === 'device' ? identity.thing : null, source, 'throttled');
      return this.#throttled(verdict, 'connect', identity);
    }

    // Registered before anything is awaited, so a connection that closes meanwhile is forgotten too.
    const session: DeviceSession = { identity, policy, policyNames: names, clientId, certificate, source, throttleKey };
    this.#sessions.add(session);
    this.#sessionOf.set(connection, session);
    const takeover = (this.#live.get(clientId) ?? 0) > 0;
    this.#live.set(clientId, (this.#live.get(clientId) ?? 0) + 1);
    await this.#deps.audit.record({ actor: actorOf(identity), action: takeover ? 'mqtt.takeover' : 'mqtt.connect', outcome: 'success', source, target: targetOf(identity), details: { clientId, serial: identity.serial, protocol: connect.protocolVersion === 5 ? 'mqtt5' : 'mqtt3.1.1' } });
    this.#deps.metrics.mqttConnects.inc({ outcome: 'success', reason: takeover ? 'takeover' : 'new' });
    if (identity.kind === 'device') {
      this.#deps.monitor.cloud.arm(identity.thing, identity.groups);
      this.#deps.monitor.cloud.connectAttempt(identity.thing, source, 'accepted');
      this.#deps.monitor.cloud.connected(identity.thing, identity.serial, source, this.#deps.clock.now());
    }
    // Not awaited: a device need not wait for the write (uses are group-committed; a failure is logged).
    this.#deps.credentialAudit.recordUse(identity.serial, clientId).catch((error: unknown) => this.#deps.logger.warn({ err: error }, 'could not record a certificate use'));
    if (identity.kind === 'device' && identity.mustRotate) setImmediate(() => this.#askToRenew(identity.thing, identity.serial));
    return { admit: true, context: session };
  }

  #authorizePublish(client: ClientRef<DeviceSession>, message: Message): PublishVerdict {
    const { policy, identity, certificate, source, throttleKey } = client.context;
    // Read once: every step below is asked about the same moment.
    const now = this.#now();
    // Every publish a device sends counts, refused or not: a flood of refused messages is still a flood.
    if (identity.kind === 'device') this.#deps.monitor.cloud.message(identity.thing, 'in', message.payload.length);
    // One publish in 64 is timed: enough for the latency histogram, nothing measurable on the others.
    const timed = this.#deps.policyTiming !== undefined && (this.#evaluations++ & 63) === 0;
    const started = timed ? performance.now() : 0;
    const allowed = policy.allows('mqtt:publish', message.topic) && !(message.retain && message.payload.length > 0 && !policy.allows('mqtt:retain', message.topic));
    if (timed) this.#deps.policyTiming?.observe((performance.now() - started) / 1000);
    if (!allowed) {
      this.#deps.metrics.mqttDenied.inc({ action: 'publish' });
      this.throttle.denied(throttleKey, 'publish-denied', now);
      if (identity.kind === 'device') this.#denied(identity.thing, new Date(now));
      return false;
    }
    const verdict = this.throttle.allowPublish(throttleKey, message.payload.length, now);
    if (verdict !== 'ok') {
      const response = this.#throttled(verdict, 'publish', identity);
      if (response.packet === 'disconnect') this.broker.disconnect((other) => other === client, response.code as DisconnectReasonCode);
      return { reasonCode: response.packet === 'puback' ? (response.code as PublishRefusalCode) : 0x97, reasonString: response.reasonString };
    }
    if (identity.kind === 'device') {
      // Before fan-out and storage: refused data reaches no one; accepted data travels minimized.
      const judged = this.#deps.data.ingest.inspect({ thing: identity.thing, thingType: identity.thingType, topic: message.topic, payload: message.payload, receivedAtMs: now });
      if (judged.verdict === 'refuse') return { reasonCode: judged.reasonCode as PublishRefusalCode, reasonString: judged.detail };
      if (judged.payload !== message.payload) return { payload: judged.payload };
    }
    const reportProblem = deviceReportProblem(message.topic, message.payload);
    if (reportProblem !== null) return { reasonCode: 0x99, reasonString: reportProblem };
    if (identity.kind === 'device') this.#recordReport(identity.thing, identity.thingType, message.topic, message.payload, now);
    const request = parseReservedRequest(message.topic);
    if (request !== null) {
      const services = { ...this.#deps, jobs: this.#deps.updates.jobs, sealing: this.#deps.data.sealing, onFailure: (error: unknown) => this.#deps.logger.error({ err: error }, 'a reserved request failed') };
      void answerReservedRequest(services, request, identity, certificate, message.payload, source).then((reply) =>
        this.#send(client.clientId, reply.topic, reply.payload),
      );
    }
    return true;
  }

  #authorizeSubscribe(client: ClientRef<DeviceSession>, subscription: Subscription): boolean {
    const allowed = client.context.policy.allows('mqtt:subscribe', subscription.pattern);
    if (!allowed) {
      this.#deps.metrics.mqttDenied.inc({ action: 'subscribe' });
      this.throttle.denied(client.context.throttleKey, 'subscribe-denied', this.#now());
      const { identity } = client.context;
      if (identity.kind === 'device') this.#denied(identity.thing, this.#deps.clock.now());
    }
    return allowed;
  }

  /** A throttle refusal: counted; audited in the periodic summaries; answered with the code MQTT 5 has for it (the engine maps it for 3.1.1). */
  #throttled(refusal: ThrottleRefusal, stage: 'connect', identity: DeviceIdentity): Admission<DeviceSession>;
  #throttled(refusal: ThrottleRefusal, stage: 'publish', identity: DeviceIdentity): RefusalResponse;
  #throttled(refusal: ThrottleRefusal, stage: 'connect' | 'publish', identity: DeviceIdentity): Admission<DeviceSession> | RefusalResponse {
    this.#deps.metrics.mqttThrottled.inc({ reason: refusal });
    const response = refusalResponse(refusal, 5);
    if (stage === 'publish') return response;
    this.#deps.metrics.mqttConnects.inc({ outcome: 'denied', reason: refusal });
    this.#deps.logger.debug({ actor: actorOf(identity), refusal }, 'connect throttled');
    return { admit: false, reasonCode: response.packet === 'connack' ? (response.code as ConnectRefusalCode) : 0x89, reasonString: response.reasonString };
  }

  #authorizeDelivery(client: ClientRef<DeviceSession>, message: Message): boolean {
    // Only the gateway publishes answers (no policy lets a device publish there); each is for the one client that asked.
    if (isAnswerTopic(message.topic)) return message.properties?.userProperties?.[REPLY_FOR] === client.clientId;
    const allowed = client.context.policy.allows('mqtt:receive', message.topic);
    const { identity } = client.context;
    if (allowed && identity.kind === 'device') this.#deps.monitor.cloud.message(identity.thing, 'out', message.payload.length);
    return allowed;
  }

  /**
   * Publishes an answer only the given client receives (several devices may share a claim
   * certificate). The addressee travels with the message, so any node of a cluster can deliver it.
   */
  #send(clientId: string, topic: string, payload: Buffer): void {
    const properties = { contentType: 'application/json', payloadFormatIndicator: true, userProperties: { [REPLY_FOR]: clientId } };
    this.#publish({ topic, payload, qos: 1, retain: false, properties, expiresAt: undefined, publisher: undefined });
  }

  /** A publish or subscribe the policy refused: counted for rollout health gating and the security metrics. */
  #denied(thing: string, at: Date): void {
    this.#deps.updates.health.denied(thing, at);
    this.#deps.monitor.cloud.denied(thing);
  }

  /** Tells a device its pending update jobs changed (a job was released or cancelled); a device that is offline asks again when it connects. */
  notifyJobs(thing: string, jobs: PendingJobs): void {
    this.#publish({ topic: Topics.jobsNotify(thing), payload: Buffer.from(JSON.stringify(jobs)), qos: 1, retain: false, properties: { contentType: 'application/json', payloadFormatIndicator: true }, expiresAt: undefined, publisher: undefined });
  }

  /** A device's own report (already checked): its software goes to the inventory, its metrics to rollout health gating. */
  #recordReport(thing: string, thingType: string | null, topic: string, payload: Buffer, receivedAtMs: number): void {
    const kind = deviceReportKind(topic);
    if (kind === 'metrics') {
      const report = parseDeviceMetrics(payload);
      this.#deps.updates.health.record(thing, report, new Date(receivedAtMs));
      this.#deps.monitor.report(thing, thingType, report);
    }
    if (kind === 'inventory') {
      this.#deps.updates.inventory.record(thing, thingType, parseInventory(payload)).catch((error: unknown) => this.#deps.logger.error({ err: error, thing }, 'could not record a software inventory report'));
    }
  }

  /** Tells a device to renew: a retained message, so it gets it when it next subscribes, even if offline now. */
  #askToRenew(thing: string, serial: string): void {
    const body: RenewalRequired = { serial, reason: 'must-rotate' };
    this.#publish({ topic: Topics.renewRequired(thing), payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: true, properties: { contentType: 'application/json', payloadFormatIndicator: true }, expiresAt: undefined, publisher: undefined });
  }

  #publish(message: Message): void {
    this.broker.publishFromServer(message).catch((error: unknown) => this.#deps.logger.error({ err: error, topic: message.topic }, 'the gateway could not publish'));
  }

  /**
   * Closes every live device connection of this node (rule 6: a dependency stayed away longer than
   * live sessions may keep their last policy); returns how many were closed.
   */
  disconnectAll(why: string, reasonCode: DisconnectReasonCode): number {
    return this.#close(() => true, why, reasonCode);
  }

  #closeRevoked(serials: readonly string[]): void {
    const revoked = new Set(serials);
    this.#close((s) => revoked.has(s.identity.serial), 'certificate revoked');
  }

  #closeThing(thing: string, why: string): void {
    this.#close((s) => s.identity.kind === 'device' && s.identity.thing === thing, why);
  }

  #close(which: (session: DeviceSession) => boolean, why: string, reasonCode: DisconnectReasonCode = REVOKED): number {
    const closed: string[] = [];
    this.broker.disconnect((client) => {
      const match = which(client.context);
      if (match) closed.push(client.clientId);
      return match;
    }, reasonCode);
    if (closed.length === 0) return 0;
    void this.#deps.audit.record({ actor: GATEWAY.name, action: 'mqtt.disconnect', outcome: 'success', details: { reason: why, clientIds: closed.slice(0, 100), count: closed.length } }).catch(() => undefined);
    return closed.length;
  }
}

/** Answers to provisioning requests: the claim certificate's clients share these topics. */
function isAnswerTopic(topic: string): boolean {
  return topic.startsWith('$fw/provisioning/') && (topic.endsWith('/accepted') || topic.endsWith('/rejected'));
}

function reached(changes: PolicyChanges, session: DeviceSession): boolean {
  const { identity } = session;
  if (identity.kind !== 'device') return false;
  return affectsConnection(changes, { thing: identity.thing, groups: identity.groups, serial: identity.serial, policies: session.policyNames });
}

function actorOf(identity: DeviceIdentity | undefined): string {
  if (identity === undefined) return 'anonymous';
  return identity.kind === 'device' ? `thing:${identity.thing}` : `claim:${identity.template}`;
}

function targetOf(identity: DeviceIdentity | undefined): string | undefined {
  return identity === undefined ? undefined : `certificate:${identity.serial}`;
}
