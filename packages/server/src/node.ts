import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { FleetwardError } from '@fleetward/protocol';
import { connectRedisNode, type RedisNode } from '@fleetward/broker';
import { pino } from 'pino';
import { FailureThrottle } from './access/auth-throttle.js';
import { Operators, type IssuedToken } from './access/operators.js';
import { DeviceBans } from './access/device-bans.js';
import { PolicyStore } from './access/policy-store/index.js';
import { actorFields, type Actor } from './audit/audit-events.js';
import { buildApi } from './api/app.js';
import type { Readiness } from './api/routes/health.js';
import type { Api } from './api/types.js';
import { AuditLog } from './audit/audit-log.js';
import { AuditCheckpoints, auditCheckpointJob } from './audit/audit-checkpoints.js';
import { auditSyslogJob } from './audit/audit-syslog-export.js';
import { systemClock, type Clock } from './clock.js';
import { checkPrivate, ensureHome, homeExists, homeLayout, isInitialized, readPrivateFile, writePrivateFile, writePublicFile, type HomeLayout } from './config/home.js';
import { redactedConfig } from './config/load-config.js';
import { apiUrl, pkiBaseUrl, type Config } from './config/settings.js';
import { redactUrlPassword } from './config/values.js';
import { serverTlsOptions } from './gateway/tls-policy.js';
import { caSummaries, sealedCaKeys, updateSealedCaKey } from './identity/ca-repository.js';
import { rotateIssuingCa, type IssuingCaOperations, type IssuingRotation } from './identity/ca-rotation.js';
import { importIssuingCa, requestIssuingCa } from './identity/offline-root.js';
import { ensureCaHierarchy, type CaHierarchy, type HierarchyOptions } from './identity/ca-hierarchy.js';
import { KeyCustody } from './identity/custody/key-custody.js';
import { Pkcs11Custody } from './identity/custody/pkcs11-custody.js';
import { CertificateAuthorities } from './identity/certificate-authorities.js';
import { Certificates } from './identity/certificates.js';
import { CredentialAudit } from './identity/credential-audit/credential-audit.js';
import { Scheduler, type Job } from './jobs/scheduler.js';
import { Canaries } from './health/canaries.js';
import { FailClosed } from './health/fail-closed.js';
import { CanaryIdentities } from './health/canary-identities.js';
import { SessionTickets } from './gateway/session-tickets.js';
import { DeviceGateway } from './gateway/device-gateway.js';
import { deviceTrustAnchors } from './gateway/trust-anchors.js';
import { WEBSOCKET_PATH } from './gateway/websocket-listener.js';
import { openDataServices, type DataServices } from './data/data-services.js';
import { resealDataKeys } from './data/data-keys.js';
import { resealDataWebhookSecrets } from './data/data-webhooks.js';
import { CrlPublisher } from './identity/crl-publisher.js';
import { IdentityEvents } from './identity/events.js';
import { ThirdPartyCas } from './identity/third-party-cas.js';
import { Manufacturing } from './identity/manufacturing.js';
import { ClaimProvisioning } from './identity/provisioning/claim.js';
import { EnrollmentTokens } from './identity/provisioning/enrollment-tokens.js';
import { ProvisioningTemplates, type TemplatePolicies } from './identity/provisioning/templates.js';
import { OcspResponder } from './identity/ocsp-responder.js';
import { Groups } from './identity/registry/groups.js';
import { ThingTypes } from './identity/registry/thing-types.js';
import { Things } from './identity/registry/things.js';
import { KeyRing } from './identity/key-ring.js';
import { loadKeyRing, saveKeyRing } from './identity/key-ring-file.js';
import { notAfterOf } from './identity/keys.js';
import { ensureServerCertificate, type ServerCredentials } from './identity/server-certificate.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type NodeMetrics } from './observability/metrics.js';
import { observePlatform } from './observability/platform-metrics.js';
import { migrateToLatest, openStore, type Store, type StoreOptions } from './store/store.js';
import { VERSION } from './version.js';
import { DeviceHealth } from './updates/device-health.js';
import type { RaiseAlert } from './updates/types.js';
import { AlertServices, resealWebhookSecrets, updateAlertsToAlerts } from './monitor/alerts/index.js';
import { withFirmwareDetections } from './monitor/detection/firmware-rule.js';
import { openMonitorServices, type MonitorServices } from './monitor/monitor-services.js';
import { openUpdateServices, type UpdateServices } from './updates/update-services.js';
import { TufRepository } from './updates/tuf/tuf-repository.js';
import type { PendingJobs } from '@fleetward/protocol';

/** Rule 1: the registry, the CAs and the certificates they issue. */
export interface IdentityServices {
  readonly events: IdentityEvents;
  readonly custody: KeyCustody;
  readonly cas: CertificateAuthorities;
  readonly thingTypes: ThingTypes;
  readonly groups: Groups;
  readonly things: Things;
  readonly certificates: Certificates;
  readonly manufacturing: Manufacturing;
  readonly templates: ProvisioningTemplates;
  readonly enrollmentTokens: EnrollmentTokens;
  readonly claims: ClaimProvisioning;
  readonly thirdPartyCas: ThirdPartyCas;
  readonly crl: CrlPublisher;
  readonly ocsp: OcspResponder;
  readonly credentialAudit: CredentialAudit;
}

/** Everything a node or a local CLI command works with, opened from one data folder. */
export interface NodeContext {
  readonly config: Config;
  readonly layout: HomeLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly audit: AuditLog;
  /** Signed checkpoints of the audit chain (rule 5): rewriting history is caught even with database access. */
  readonly auditCheckpoints: AuditCheckpoints;
  readonly operators: Operators;
  readonly identity: IdentityServices;
  readonly policies: PolicyStore;
  readonly bans: DeviceBans;
  readonly data: DataServices;
  readonly updates: UpdateServices & { readonly health: DeviceHealth };
}

export interface OpenOptions {
  /** Create what is missing (`init`, `serve`); otherwise a data folder that is not initialized is refused. */
  readonly create: boolean;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How the CAs are created, when they are (an offline root). */
  readonly hierarchy?: HierarchyOptions;
}

/** What opening the data folder created, for the start-up message. */
export interface InitReport {
  readonly initialized: boolean;
  readonly caCreated: boolean;
  /** The one-time bootstrap admin token: present only on the very first start. */
  readonly bootstrapToken: IssuedToken | null;
}

export async function openHome(config: Config, options: OpenOptions): Promise<{ context: NodeContext; report: InitReport }> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.log.level);
  const layout = homeLayout(config.home);
  const initialized = await isInitialized(layout);
  if (!initialized && !options.create) {
    throw new FleetwardError('FW_ERR_HOME_NOT_INITIALIZED', `${layout.root} is not an initialized Fleetward data folder; run \`fleetward init\``, { home: layout.root });
  }
  if (options.create || (await homeExists(layout))) await ensureHome(layout);
  const keyRing = initialized ? await loadKeyRing(layout) : KeyRing.generate(clock.now());
  if (!initialized) await saveKeyRing(layout, keyRing);

  const store = await openStore(storeOptions(config, layout, logger));
  try {
    await migrateToLatest(store, config.database.schema);
    const metrics = createMetrics();
    const auditCheckpoints = new AuditCheckpoints({
      store,
      clock,
      sealer: keyRing,
      everyEvents: config.audit.checkpointEvents,
      onError: (error) => logger.error({ err: error }, 'an audit checkpoint failed'),
    });
    const audit = new AuditLog(store, clock, (count) => {
      metrics.auditEvents.inc(count);
      auditCheckpoints.noteAppended(count);
    });
    const operators = new Operators({ store, audit, clock, defaultTokenTtlDays: config.auth.tokenTtlDays });
    // The policy store needs the registry's groups, and provisioning needs the policy store: bound late.
    const late: { policies?: PolicyStore } = {};
    const templatePolicies: TemplatePolicies = {
      async attachWithin(trx, thing, names, actor) {
        for (const name of names) await (late.policies as PolicyStore).attachWithin(trx, name, { kind: 'thing', name: thing }, actor);
      },
    };
    const identity = identityServices({ config, store, audit, clock, keyRing, logger, metrics, templatePolicies });
    const policies = new PolicyStore({ store, audit, clock, groups: identity.groups });
    late.policies = policies;
    const data = await openDataServices(
      { store, audit, clock, keyRing, onWriteError: (error, lost) => logger.error({ err: error, lost }, 'a telemetry batch could not be stored') },
      {
        ingest: { unmatched: config.data.unmatchedTopics },
        writer: { maxPendingMessages: config.data.maxPendingMessages },
      },
    );
    const bans = new DeviceBans({ store, audit, clock });
    const updates = updateServices({ config, layout, store, audit, clock, keyRing, logger, metrics, identity });
    const context: NodeContext = { config, layout, clock, logger, metrics, store, keyRing, audit, auditCheckpoints, operators, identity, policies, bans, data, updates };
    if (!options.create) return { context, report: { initialized: false, caCreated: false, bootstrapToken: null } };

    if (!initialized) await audit.record({ actor: 'node', action: 'node.init', outcome: 'success', details: { home: layout.root, store: store.dialect, kek: keyRing.activeId } });
    const { created: caCreated } = await ensureCaHierarchy({ store, custody: identity.custody, audit, clock }, config.ca, options.hierarchy);
    const bootstrapToken = await operators.bootstrap(config.auth.bootstrapTokenTtlHours);
    return { context, report: { initialized: !initialized, caCreated, bootstrapToken } };
  } catch (error) {
    await store.close();
    throw error;
  }
}

function identityServices(deps: { config: Config; store: Store; audit: AuditLog; clock: Clock; keyRing: KeyRing; logger: Logger; metrics: NodeMetrics; templatePolicies: TemplatePolicies }): IdentityServices {
  const { config, store, audit, clock, keyRing, logger, metrics, templatePolicies } = deps;
  const events = new IdentityEvents((error) => logger.error({ err: error }, 'an identity event listener failed'));
  const custody = keyCustody(config, keyRing);
  const cas = new CertificateAuthorities(store, custody, pkiBaseUrl(config), clock);
  const thingTypes = new ThingTypes({ store, audit, clock });
  const groups = new Groups({ store, audit, clock });
  const things = new Things({ store, audit, clock, groups, events });
  const certificates = new Certificates({ store, audit, clock, events, things, issuing: () => cas.issuing(), config: config.pki });
  const manufacturing = new Manufacturing({ store, things, certificates, events });
  const templates = new ProvisioningTemplates({ store, audit, clock });
  const enrollmentTokens = new EnrollmentTokens({ store, audit, clock });
  const claims = new ClaimProvisioning({ store, audit, clock, templates, tokens: enrollmentTokens, things, certificates, events, templatePolicies });
  const thirdPartyCas = new ThirdPartyCas({ store, audit, clock, templates, things, templatePolicies });
  const crl = new CrlPublisher({ store, clock, cas: () => cas.signingCas(), validityHours: config.pki.crlValidityHours });
  const ocsp = new OcspResponder({ store, clock, cas: () => cas.signingCas() });
  const credentialAudit = new CredentialAudit({
    store,
    audit,
    clock,
    config: config.pki,
    onFindings: (counts) => {
      for (const [severity, count] of Object.entries(counts)) metrics.credentialFindings.set({ severity }, count);
    },
    onError: (error) => logger.error({ err: error }, 'a credential re-check failed'),
  });
  // Lifecycle changes re-check the thing's credentials at once, not only on the schedule.
  events.on('thingStateChanged', ({ thing }) => credentialAudit.queueRecheck([thing]));
  events.on('certificatesIssued', ({ things }) => credentialAudit.queueRecheck(things));
  events.on('certificatesRevoked', ({ thing, serials }) => (thing === null ? credentialAudit.queueRecheckOfCertificates(serials) : credentialAudit.queueRecheck([thing])));
  return { events, custody, cas, thingTypes, groups, things, certificates, manufacturing, templates, enrollmentTokens, claims, thirdPartyCas, crl, ocsp, credentialAudit };
}

/** A late binding of what only a serving node has: the gateway that pushes jobs, the API's bound port. */
const nodeBindings = new WeakMap<UpdateServices, NodeBinding>();

/** What only a serving node provides to the update services, bound once it is built. */
interface NodeBinding {
  notify?: (thing: string, jobs: PendingJobs) => void;
  baseUrl?: string;
  /** Rule 5's alert service, which rule 4's alerts also go to. */
  forwardAlert?: RaiseAlert;
}

function updateServices(deps: { config: Config; layout: HomeLayout; store: Store; audit: AuditLog; clock: Clock; keyRing: KeyRing; logger: Logger; metrics: NodeMetrics; identity: IdentityServices }): UpdateServices & { health: DeviceHealth } {
  const { config, identity } = deps;
  const bound: NodeBinding = {};
  const base = () => bound.baseUrl ?? pkiBaseUrl(config);
  const health = new DeviceHealth();
  const services = openUpdateServices({
    ...deps,
    artifactsDir: deps.layout.artifactsDir,
    thingTypes: identity.thingTypes,
    things: identity.things,
    groups: identity.groups,
    thirdPartyCas: identity.thirdPartyCas,
    notify: (thing, jobs) => bound.notify?.(thing, jobs),
    forwardAlert: (alert) => bound.forwardAlert?.(alert) ?? Promise.resolve(),
    jobUrls: {
      get metadataUrl() {
        return `${base()}/updates/v1/metadata`;
      },
      get targetsUrl() {
        return `${base()}/updates/v1/targets`;
      },
    },
    health,
  });
  // Bound to the object the context holds: buildNode looks the binding up by `context.updates`.
  const withHealth = { ...services, health };
  nodeBindings.set(withHealth, bound);
  return withHealth;
}

/**
 * Rule 4's alerts into rule 5's alert service: unauthorized firmware becomes the `unknown-firmware`
 * detection (with that rule's actions), every other kind an alert of behaviour `updates.<kind>`.
 */
function updateAlertsForward(alerts: AlertServices, clock: Clock): RaiseAlert {
  const asAlert = updateAlertsToAlerts(alerts, clock);
  const asDetection = withFirmwareDetections(() => Promise.resolve(), alerts, clock);
  return (alert) => (alert.kind === 'unauthorized-firmware' ? asDetection(alert) : asAlert(alert));
}

/** CA key custody: sealed keys always open; a PKCS#11 token is opened on first use when configured. */
function keyCustody(config: Config, keyRing: KeyRing): KeyCustody {
  const { pkcs11Module: module, pkcs11TokenLabel: tokenLabel, pkcs11Pin, pkcs11PinFile, keyCustody: mode } = config.pki;
  const token =
    module !== null && tokenLabel !== null
      ? async () => {
          if (pkcs11Pin === null && pkcs11PinFile === null) throw new FleetwardError('FW_ERR_CONFIG_INVALID', 'the PKCS#11 token needs a PIN: set FLEETWARD_PKI_PKCS11_PIN_FILE (a 0600 file) or FLEETWARD_PKI_PKCS11_PIN');
          const pin = pkcs11Pin ?? (await readPrivateFile(pkcs11PinFile as string, 'PKCS#11 PIN file')).toString('utf8').trim();
          return Pkcs11Custody.open({ module, tokenLabel, pin });
        }
      : null;
  return new KeyCustody(keyRing, mode, token);
}

function storeOptions(config: Config, layout: HomeLayout, logger: Logger): StoreOptions {
  if (config.database.url === null) return { kind: 'sqlite', file: layout.databaseFile };
  return {
    kind: 'postgres',
    url: config.database.url,
    schema: config.database.schema,
    poolSize: config.database.poolSize,
    onPoolError: (error) => logger.warn({ err: error }, 'PostgreSQL connection lost'),
  };
}

/** Opens an initialized data folder for a CLI command: warnings to stderr, stdout left for the command. */
export async function openLocal(config: Config): Promise<NodeContext> {
  const { context } = await openHome(config, { create: false, logger: createLogger('warn', pino.destination(2)) });
  return context;
}

export async function closeContext(context: NodeContext): Promise<void> {
  await context.data.close();
  await context.identity.certificates.flush();
  await context.identity.credentialAudit.flush();
  await context.audit.flush();
  await context.auditCheckpoints.settled();
  await context.store.close();
}

/** A node built from an opened context: the API (not yet listening) and its TLS identity. */
export interface FleetwardNode {
  readonly context: NodeContext;
  readonly api: Api;
  readonly hierarchy: CaHierarchy;
  readonly server: ServerCredentials;
  readiness(): Promise<Readiness>;
  /**
   * Picks up a rotated issuing CA (rotated here or by another process or node): re-issues the TLS
   * server certificate from it, republishes ca.pem and swaps the listener's TLS context in place.
   */
  refreshCertificateAuthorities(): Promise<boolean>;
  /** Background work, started by `listen`: CRL and CA refresh, retiring superseded certificates, the credential audit. */
  readonly jobs: Scheduler;
  /** The device gateway (MQTT over mutual TLS), started by `listen`. */
  readonly gateway: DeviceGateway;
  /** Rule 5: alerts, response actions and notifications; device security metrics and detection. */
  readonly alerts: AlertServices;
  readonly monitor: MonitorServices;
  /** Binds the API and MQTT ports and starts the background jobs; a port in use is a clear FW_ERR_PORT_IN_USE. */
  listen(): Promise<{ apiUrl: string; mqttUrl: string; mqttWebSocketUrl: string | null }>;
  /** Stops accepting, drains requests in flight, records the stop, closes the store. */
  close(): Promise<void>;
}

export async function buildNode(context: NodeContext): Promise<FleetwardNode> {
  const { config, layout, store, clock } = context;
  const hierarchy = await context.identity.cas.hierarchy();
  const server = await prepareTls(context, hierarchy);
  // The listener's TLS identity, and the chain device certificates (EST) are verified against;
  // operators authenticate with tokens.
  const tlsOptions = (credentials: ServerCredentials, chain: string) => serverTlsOptions(credentials, config.tls.minVersion, { mode: 'optional', ca: chain });
  const throttle = new FailureThrottle({ limit: config.auth.failureLimit, windowMs: config.auth.failureWindowSeconds * 1000 });
  const cluster = await clusterBacking(config);
  // Rule 6: with the database or Redis away nothing new is admitted, and live sessions are closed past the bound.
  const failClosed = new FailClosed({
    clock,
    logger: context.logger,
    metrics: context.metrics,
    audit: context.audit,
    boundSeconds: config.health.failClosedGraceSeconds,
    store,
    redis: cluster === null ? null : cluster.options.cluster,
    // MQTT 5 has no DISCONNECT 0x88: 0x89 (Server busy) asks the device to come back later.
    disconnectAll: (why: string): number => gateway.disconnectAll(why, 0x89),
  });

  // Rule 6: the canaries attack this node's listeners once they are bound (listen() tells them where).
  const canaries = new Canaries({
    config,
    clock,
    logger: context.logger,
    metrics: context.metrics,
    audit: context.audit,
    identities: new CanaryIdentities({ home: layout.root, keyRing: context.keyRing, clock, things: context.identity.things, certificates: context.identity.certificates }),
    cas: context.identity.cas,
    certificates: context.identity.certificates,
    repository: context.updates.repository,
    // The audit control checks the signed checkpoints too, not only the hash chain.
    verifyAudit: () => context.auditCheckpoints.verify(context.audit),
  });

  const readiness = async (): Promise<Readiness> => {
    const storeCheck = await store.ping().then(
      () => ({ ok: true, detail: `${store.dialect} reachable` }),
      (error: unknown) => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }),
    );
    const notAfter = notAfterOf(hierarchy.issuing.certificate);
    const caCheck = clock.now() < notAfter ? { ok: true, detail: `issuing CA valid until ${notAfter.toISOString()}` } : { ok: false, detail: `issuing CA expired at ${notAfter.toISOString()}` };
    const controlsCheck = canaries.readiness();
    const dependencyChecks = failClosed.readiness();
    const ready = storeCheck.ok && caCheck.ok && controlsCheck.ok && Object.values(dependencyChecks).every((check) => check.ok);
    return { ready, checks: { store: storeCheck, ...dependencyChecks, ca: caCheck, controls: controlsCheck } };
  };

  // Rule 5: alerts and response (operators' MQTT notifications go out through the gateway, built below).
  const alerts = new AlertServices({
    store,
    audit: context.audit,
    clock,
    keyRing: context.keyRing,
    things: context.identity.things,
    certificates: context.identity.certificates,
    deployments: context.updates.deployments,
    publish: (topic, payload) =>
      void gateway.broker
        .publishFromServer({ topic, payload, qos: 1, retain: false, properties: { contentType: 'application/json', payloadFormatIndicator: true }, expiresAt: undefined, publisher: undefined })
        .catch((error: unknown) => context.logger.error({ err: error, topic }, 'could not publish an alert')),
  });
  const monitor = await openMonitorServices({ config, store, audit: context.audit, clock, logger: context.logger, metrics: context.metrics, sink: alerts });

  const api = await buildApi(
    {
      operators: context.operators,
      ...context.identity,
      policies: context.policies,
      bans: context.bans,
      data: context.data,
      updates: context.updates,
      caSummaries: () => caSummaries(store.db),
      issuingCa: issuingCaOperations(context, () => refreshTls()),
      audit: context.audit,
      auditCheckpoints: context.auditCheckpoints,
      throttle,
      metrics: context.metrics,
      logger: context.logger,
      clock,
      readiness,
      canaries,
      alerts,
      monitor,
      redactedConfig: redactedConfig(config),
    },
    { tls: tlsOptions(server, hierarchy.chainPem), bodyLimitBytes: config.api.bodyLimitBytes, version: VERSION },
  );

  // What the listeners' TLS contexts were built from: the issuing CA, and the CAs devices chain to.
  let tlsIssuer = hierarchy.issuing.id;
  let credentials = server;
  let anchors = await deviceTrustAnchors(store, hierarchy);
  const refreshTls = async (): Promise<boolean> => {
    const current = await context.identity.cas.hierarchy();
    const rotated = current.issuing.id !== tlsIssuer;
    if (rotated) {
      credentials = await prepareTls(context, current);
      api.server.setSecureContext(tlsOptions(credentials, current.chainPem));
      tlsIssuer = current.issuing.id;
    }
    const nextAnchors = await deviceTrustAnchors(store, current);
    if (rotated || nextAnchors !== anchors) {
      anchors = nextAnchors;
      gateway.setTrust(credentials, anchors);
    }
    return rotated;
  };

  const refreshCertificateAuthorities = async (): Promise<boolean> => {
    await context.identity.cas.refreshIfRotated();
    return refreshTls();
  };
  const { updates } = context;
  // Read at scrape time; the gateway exists by then.
  const platform = observePlatform(context.metrics, { broker: () => gateway.broker.stats(), auditPending: () => context.audit.pending, telemetryPending: () => context.data.writer.pending, dataVerdicts: () => context.data.ingest.verdictTotals() });
  const gateway = new DeviceGateway(
    {
      ...context,
      ...context.identity,
      updates: { jobs: updates.deployments, inventory: updates.inventory, health: updates.health },
      monitor: monitor.windows,
      policyTiming: platform.policyEvaluation,
      onTrustChanged: refreshCertificateAuthorities,
      availability: failClosed,
      sessionTickets: config.tls.sessionResumptionHours === 0 ? null : new SessionTickets(context.keyRing, config.tls.sessionResumptionHours * 3600),
    },
    cluster,
  );
  const binding = nodeBindings.get(updates);
  if (binding !== undefined) {
    binding.notify = (thing, jobs) => gateway.notifyJobs(thing, jobs);
    binding.forwardAlert = updateAlertsForward(alerts, clock);
  }
  const canaryJobs = config.health.canaries === 'on' ? [canaries.job(config.health.canaryIntervalSeconds)] : [];
  const jobs = new Scheduler([...nodeJobs(context, refreshCertificateAuthorities), failClosed.job(), ...canaryJobs, ...monitor.jobs(), ...alerts.jobs()], (job, error) => {
    context.metrics.jobFailures.inc({ job });
    context.logger.error({ err: error, job }, 'a background job failed');
  });

  let started = false;
  let closed = false;
  return {
    context,
    api,
    hierarchy,
    server,
    readiness,
    jobs,
    gateway,
    alerts,
    monitor,
    refreshCertificateAuthorities,
    async listen() {
      try {
        await api.listen({ host: config.host, port: config.api.port });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new FleetwardError('FW_ERR_PORT_IN_USE', `port ${config.api.port} on ${config.host} is already in use (is another fleetward serve running? choose another with --api-port)`, { port: config.api.port, host: config.host });
        }
        throw error;
      }
      started = true;
      const ports = await gateway.listen(credentials, anchors).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new FleetwardError('FW_ERR_PORT_IN_USE', `port ${config.mqtt.port} or ${config.mqtt.websocketPort ?? '-'} on ${config.host} is already in use (choose another with --mqtt-port or --mqtt-websocket-port)`, { port: config.mqtt.port, host: config.host });
        }
        throw error;
      });
      const url = apiUrl(config, listeningPort(api));
      canaries.setEndpoints({ mqttPort: ports.port, websocketPort: ports.websocketPort, apiUrl: url });
      jobs.start();
      // Devices are sent the URL they fetch updates from: the bound port when the configuration asked for any.
      if (binding !== undefined && config.pki.baseUrl === null && config.api.port === 0) binding.baseUrl = pkiBaseUrl({ ...config, api: { ...config.api, port: listeningPort(api) } });
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      const mqttUrl = `mqtts://${host}:${ports.port}`;
      const mqttWebSocketUrl = ports.websocketPort === null ? null : `wss://${host}:${ports.websocketPort}${WEBSOCKET_PATH}`;
      await context.audit.record({ actor: 'node', action: 'node.start', outcome: 'success', details: { version: VERSION, api: url, mqtt: mqttUrl, ...(mqttWebSocketUrl !== null && { mqttWebSocket: mqttWebSocketUrl }), home: layout.root } });
      return { apiUrl: url, mqttUrl, mqttWebSocketUrl };
    },
    async close() {
      if (closed) return;
      closed = true;
      await gateway.close();
      await api.close();
      await jobs.stop();
      await alerts.notifier.settle();
      if (started) {
        await context.audit.record({ actor: 'node', action: 'node.stop', outcome: 'success' }).catch((error: unknown) => context.logger.error({ err: error }, 'could not record node.stop'));
        // The last events are covered by a checkpoint before the node goes away.
        await context.auditCheckpoints.checkpoint().catch((error: unknown) => context.logger.error({ err: error }, 'could not write the last audit checkpoint'));
      }
      await closeContext(context);
    },
  };
}

/** With FLEETWARD_REDIS_URL, the MQTT sessions and fan-out this node shares with the others of its cluster. */
async function clusterBacking(config: Config): Promise<RedisNode | null> {
  if (config.redis.url === null) return null;
  return connectRedisNode({ url: config.redis.url, keyPrefix: `${config.redis.keyPrefix}broker:` }).catch((error: unknown) => {
    const where = redactUrlPassword(config.redis.url ?? '');
    throw new FleetwardError('FW_ERR_STORE_UNAVAILABLE', `Redis at ${where} is unreachable: ${error instanceof Error ? error.message : String(error)}`, { redis: where });
  });
}

/** What a serving node does periodically. Each is safe to run on every node of a cluster at once. */
function nodeJobs(context: NodeContext, refreshCertificateAuthorities: () => Promise<boolean>): Job[] {
  const { identity, clock } = context;
  return [
    // A CA rotated by another node or the CLI is picked up; every CRL is rebuilt before it goes stale.
    {
      name: 'pki.refresh',
      everyMs: 60_000,
      run: async () => {
        await refreshCertificateAuthorities();
        await identity.crl.refresh();
      },
    },
    { name: 'certificates.retire-superseded', everyMs: 10 * 60_000, run: () => identity.certificates.retireSuperseded(clock.now(), { name: 'node' }) },
    // Cheap when not due: the last run's time is in the database, shared by every node.
    { name: 'credentials.audit', everyMs: 5 * 60_000, run: () => identity.credentialAudit.runIfDue() },
    // Contracts applied elsewhere come into force; data past its retention is deleted.
    ...context.data.jobs(),
    // Signed checkpoints of the audit chain; the export to an external collector when one is configured.
    auditCheckpointJob(context.auditCheckpoints, context.config.audit.checkpointSeconds),
    ...[auditSyslogJob({ store: context.store, clock: context.clock }, context.config.audit)].filter((job): job is Job => job !== null),
    // Snapshot and timestamp are re-signed before devices would take the repository for frozen.
    { name: 'updates.refresh-metadata', everyMs: 60_000, run: async () => void (await context.updates.repository.refreshOnline()) },
    { name: 'updates.rollout', everyMs: context.config.updates.rolloutIntervalSeconds * 1000, run: async () => void (await context.updates.deployments.tick()) },
  ];
}

/** The port the API is bound to (differs from the configuration when it asked for port 0). */
function listeningPort(api: Api): number {
  const address = api.server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Writes the CA chain clients trust and makes sure this node's server certificate is current. */
async function prepareTls(context: NodeContext, hierarchy: CaHierarchy): Promise<ServerCredentials> {
  const { config, layout, keyRing, clock, audit } = context;
  const current = await readFile(layout.caFile, 'utf8').catch(() => null);
  if (current !== hierarchy.chainPem) await writePublicFile(layout.caFile, hierarchy.chainPem);
  const { credentials, issued } = await ensureServerCertificate({ layout, keyRing, hierarchy, hostnames: config.tls.hostnames, validityDays: config.tls.serverCertValidityDays, now: clock.now() });
  if (issued) {
    await audit.record({ actor: 'node', action: 'tls.server-certificate.issue', outcome: 'success', details: { hostnames: [...credentials.hostnames], notAfter: credentials.notAfter.toISOString() } });
  }
  return credentials;
}

/**
 * The issuing CA operations on a context: after a change this process uses the new CA at once and
 * publishes the new chain in ca.pem; `afterChange` lets a running node swap its TLS identity too.
 */
export function issuingCaOperations(context: NodeContext, afterChange: () => Promise<unknown> = () => Promise.resolve()): IssuingCaOperations {
  const { store, audit, clock, config, identity, layout } = context;
  const deps = { store, custody: identity.custody, audit, clock, events: identity.events };
  const adopt = async (rotation: IssuingRotation): Promise<IssuingRotation> => {
    identity.cas.reload();
    await writePublicFile(layout.caFile, (await identity.cas.hierarchy()).chainPem);
    await afterChange();
    return rotation;
  };
  return {
    rotate: async (actor, options) => adopt(await rotateIssuingCa(deps, config.ca, actor, options)),
    request: (actor) => requestIssuingCa(deps, config.ca, actor),
    import: async (certificatePem, actor, options) => adopt(await importIssuingCa(deps, certificatePem, actor, options)),
  };
}

/** `fleetward init`: creates the data folder, CA hierarchy and server certificate, then closes. */
export async function initialize(config: Config, options: Omit<OpenOptions, 'create'> = {}): Promise<InitReport & { caFile: string }> {
  const { context, report } = await openHome(config, { ...options, create: true });
  try {
    await prepareTls(context, await context.identity.cas.hierarchy());
    return { ...report, caFile: context.layout.caFile };
  } finally {
    await closeContext(context);
  }
}

/**
 * Rotates the key-encryption key: a new key is added, every sealed key (CA keys in the
 * database, the server key file) is re-sealed with it, and only then are the old keys dropped.
 */
export async function rotateKeyEncryptionKey(context: NodeContext, actor: Actor): Promise<{ previous: readonly string[]; active: string; resealed: number }> {
  const { store, layout, clock, audit } = context;
  await checkPrivate(layout.keyRingFile, 'key-encryption key file');
  const rotated = context.keyRing.withNewActiveKey(clock.now());
  await saveKeyRing(layout, rotated);
  const sealedServerKey = await readFile(layout.serverKeyFile, 'utf8').catch(() => null);
  let resealed = 0;
  await store.db.transaction().execute(async (trx) => {
    for (const { id, sealed } of await sealedCaKeys(trx)) {
      await updateSealedCaKey(trx, id, rotated.reseal(sealed, `ca:${id}`));
      resealed += 1;
    }
    resealed += await resealDataKeys(trx, rotated);
    resealed += await TufRepository.reseal(trx, rotated);
    resealed += await AuditCheckpoints.reseal(trx, rotated);
    resealed += await resealWebhookSecrets(trx, rotated);
    resealed += await resealDataWebhookSecrets(trx, rotated);
    await audit.recordWithin(trx, [
      { ...actorFields(actor), action: 'kek.rotate', outcome: 'success', details: { previous: [...context.keyRing.keyIds], active: rotated.activeId } },
    ]);
  });
  if (sealedServerKey !== null) {
    await writePrivateFile(layout.serverKeyFile, rotated.reseal(sealedServerKey, 'tls:server'));
    resealed += 1;
  }
  await saveKeyRing(layout, rotated.withoutRetiredKeys());
  return { previous: context.keyRing.keyIds, active: rotated.activeId, resealed };
}

/** The actor for commands run on the data folder directly. */
export function localActor(): Actor {
  return { name: `local:${userInfo().username}` };
}
