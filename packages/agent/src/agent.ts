import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { FleetwardError, parseInventory, sealJson, thingSealingInfo, topicFilterMatches, Topics, type CommandResult, type JobUpdate, type SealedValue } from '@fleetward/protocol';
import { CommandDispatcher, type CommandHandler } from './commands/command-dispatcher.js';
import type { AgentConfig } from './config/agent-config.js';
import { LocalContracts } from './data/device-contracts.js';
import { CounterFile } from './faults/counter-file.js';
import { LOW_BATTERY_TELEMETRY_DIVISOR, resourceMode, type ResourceMode } from './faults/resource-mode.js';
import { RenewalAnswers, renewalDue, requestRenewal } from './identity/certificate-renewal.js';
import { checkCertificate, loadCredentials, saveCredentials, type DeviceCredentials } from './identity/device-credentials.js';
import { ensurePrivateDir } from './identity/key-file.js';
import type { DeviceKeyStore } from './identity/device-key.js';
import { deviceKeyStore, provisionAndSave } from './identity/device-identity.js';
import { firstCertificate } from './identity/provision-device.js';
import { OfflineQueue } from './queue/offline-queue.js';
import { BackendSealingKey } from './sealed/backend-sealing-key.js';
import { SealedStore } from './sealed/sealed-store.js';
import { DeviceSession } from './session/device-session.js';
import { subscribeOne } from './session/mqtt-requests.js';
import { QueueDelivery } from './session/queue-delivery.js';
import { ReadingSchemas } from './telemetry/reading-schemas.js';
import { powerSupplyBattery, type BatterySource } from './metrics/battery.js';
import { procReports, type DeviceReports } from './metrics/proc-reports.js';
import type { CustomMetrics, DroppedCustomMetric } from './metrics/custom-metrics.js';
import type { UpdateFault } from './faults/update-faults.js';
import type { UpdateClient, UpdateEvent } from './updates/update-client.js';

export interface AgentOptions {
  /** Battery level in percent, or null on mains power (default: the configured battery file). */
  readonly battery?: BatterySource;
  /** Share of memory still available, 0–1 (default: the kernel's free memory). */
  readonly memoryAvailable?: () => number;
  /** Device metrics and inventory (default: collected from /proc and the configured firmware; the simulator supplies its own). */
  readonly reports?: DeviceReports;
  /**
   * The application's custom metrics, read for every metrics report: numbers, or lists tagged with
   * their kind (`{"peers": {"address-list": ["192.0.2.1"]}}`), each declared for the device's thing
   * type on the platform. A value the gateway would refuse is left out (an event says why), never the report.
   */
  readonly customMetrics?: () => CustomMetrics | Promise<CustomMetrics>;
  readonly now?: () => Date;
  /** Told about what happens (connections, refusals, renewals), for a log. */
  readonly onEvent?: (event: AgentEvent) => void;
  readonly random?: () => number;
  /**
   * Restarts the device into the slot the update state names, after an install or a rollback. The
   * daemon exits with REBOOT_EXIT_CODE (systemd starts it again); the simulator restarts the agent.
   * Default: a soft reboot in this process (the update client's boot step, then a new connection).
   */
  readonly reboot?: () => void | Promise<void>;
  /** The application's check that newly installed firmware works, run once the gateway was reached over mTLS. */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  /** Faults the update client plays (tests and the simulator only). */
  readonly updateFaults?: readonly UpdateFault[];
}

export type AgentEvent =
  | { readonly type: 'provisioned'; readonly thing: string; readonly serial: string }
  | { readonly type: 'online'; readonly sessionPresent: boolean }
  | { readonly type: 'offline' }
  | { readonly type: 'refused'; readonly code: number | string; readonly message: string }
  | { readonly type: 'publish-refused'; readonly topic: string; readonly reasonCode: number }
  | { readonly type: 'renewed'; readonly serial: string; readonly notAfter: string }
  | { readonly type: 'renewal-failed'; readonly message: string }
  | { readonly type: 'command'; readonly result: CommandResult }
  | { readonly type: 'queue-shed'; readonly dropped: number }
  /** The data contracts for the device's own topics arrived (`name@version`): readings are minimized here from now on. */
  | { readonly type: 'contracts'; readonly contracts: readonly string[] }
  /** A step of an update job, as reported to the gateway. */
  | { readonly type: 'update'; readonly jobId: string; readonly update: JobUpdate }
  /** The update client restarts the device: into a new slot on trial, or back to the previous one. */
  | { readonly type: 'reboot'; readonly jobId: string; readonly slot: 'a' | 'b'; readonly why: 'install' | 'rollback' }
  /** Updates are off on this device (no trusted root configured, or it cannot be used): said once at start. */
  | { readonly type: 'updates-disabled'; readonly reason: string }
  /** A custom metric the application supplied was left out of the metrics report (name null: its source failed). */
  | { readonly type: 'custom-metric-dropped'; readonly name: string | null; readonly reason: string }
  | { readonly type: 'error'; readonly message: string };

export interface AgentStatus {
  readonly thing: string;
  readonly online: boolean;
  readonly serial: string;
  readonly notAfter: string;
  readonly queued: number;
  readonly dropped: number;
  readonly published: number;
  readonly refused: number;
  /** Publishes the gateway answered with a quota or rate refusal: kept, and sent again more slowly. */
  readonly throttled: number;
  readonly forbiddenTopics: readonly string[];
  readonly malformedReadings: number;
  readonly deferredReadings: number;
  readonly commands: { readonly executed: number; readonly rejected: number };
  readonly session: DeviceSession['stats'];
  readonly restarts: number;
  readonly renewals: number;
  readonly mode: ResourceMode;
}

const SESSION_EXPIRY_SECONDS = 3_600;
const KEEPALIVE_SECONDS = 60;
const MEMORY_PRESSURE_BELOW = 0.05;

/**
 * The device agent: the device's identity (its own key, provisioned by claim or pre-provisioned,
 * renewed before expiry), one mTLS MQTT session to the gateway, a persistent queue in front of every
 * durable publish, commands validated before they run, and the security controls that never yield
 * to faults. See docs/agent.md.
 */
export class FleetwardAgent {
  readonly #config: AgentConfig;
  readonly #options: AgentOptions;
  readonly #caPem: string;
  readonly #keys: DeviceKeyStore;
  readonly #queue: OfflineQueue;
  readonly #counters: CounterFile;
  readonly #schemas = new ReadingSchemas();
  readonly #commands: CommandDispatcher;
  readonly #renewals = new RenewalAnswers();
  readonly #sealingKey: BackendSealingKey;
  readonly #contracts: LocalContracts;
  readonly #subscriptions = new Map<string, (topic: string, payload: Buffer) => void>();
  /** Filters the gateway granted in this process's sessions. */
  readonly #granted = new Set<string>();
  readonly #readingsSeen = new Map<string, number>();
  readonly #session: DeviceSession;
  readonly #battery: BatterySource;
  readonly #reports: DeviceReports;
  #credentials: DeviceCredentials;
  #mode: ResourceMode = { lowBattery: false, memoryPressure: false };
  #renewing: Promise<void> | null = null;
  #tick: NodeJS.Timeout | null = null;
  #updates: UpdateClient | null = null;
  #updatesTimer: NodeJS.Timeout | null = null;
  readonly #delivery: QueueDelivery;
  #stats = { malformedReadings: 0, deferredReadings: 0, renewals: 0 };

  private constructor(config: AgentConfig, options: AgentOptions, caPem: string, store: DeviceKeyStore, credentials: DeviceCredentials, queue: OfflineQueue, counters: CounterFile) {
    this.#config = config;
    this.#keys = store;
    this.#options = options;
    this.#caPem = caPem;
    this.#credentials = credentials;
    this.#queue = queue;
    this.#counters = counters;
    this.#sealingKey = new BackendSealingKey(config.thing);
    this.#contracts = new LocalContracts(config.thing);
    this.#battery = options.battery ?? powerSupplyBattery(config.batterySupplyDir);
    const custom = { ...(options.customMetrics && { custom: options.customMetrics }), onCustomDropped: (dropped: DroppedCustomMetric) => this.#emit({ type: 'custom-metric-dropped', ...dropped }) };
    this.#reports = options.reports ?? procReports(config, this.#battery, () => ({ agentRestarts: counters.restarts, authFailures: counters.localAuthFailures }), custom);
    this.#commands = new CommandDispatcher(this.#schemas, () => this.#now());
    for (const [stream, schema] of Object.entries(config.telemetrySchemas)) this.#schemas.declare(`telemetry:${stream}`, schema);
    this.#session = new DeviceSession(
      {
        url: config.mqttUrl,
        clientId: config.thing,
        identity: () => ({ key: this.#credentials.key.tls, certPem: this.#credentials.certPem, caPem: this.#caPem }),
        backoff: config.reconnect,
        sessionExpirySeconds: SESSION_EXPIRY_SECONDS,
        keepaliveSeconds: KEEPALIVE_SECONDS,
        ...(options.random && { random: options.random }),
      },
      {
        online: (client, sessionPresent) => this.#online(client, sessionPresent),
        offline: () => this.#emit({ type: 'offline' }),
        refused: (code, message) => this.#emit({ type: 'refused', code, message }),
        message: (topic, payload, packet) => this.#message(topic, payload, packet),
      },
    );
    this.#delivery = new QueueDelivery({
      queue,
      client: () => this.#session.client,
      slowDown: () => this.#session.slowDown(),
      backoff: config.reconnect,
      ...(options.random && { random: options.random }),
      onRefused: (topic, reasonCode) => this.#emit({ type: 'publish-refused', topic, reasonCode }),
      onError: (message) => this.#emit({ type: 'error', message }),
    });
  }

  /**
   * Loads (or provisions) the device's identity, opens the queue and connects. Refuses to start
   * with a key others can read, a certificate for another thing or from another CA, or a corrupt
   * configuration: those are FleetwardErrors the daemon reports and exits on, not retried in a loop.
   */
  static async start(config: AgentConfig, options: AgentOptions = {}): Promise<FleetwardAgent> {
    await ensurePrivateDir(config.stateDir);
    const caPem = await readFile(config.caFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the CA file ${config.caFile} cannot be read (${error.code ?? 'error'})`, { key: 'caFile' });
    });
    const store = await deviceKeyStore(config);
    const credentials = (await loadCredentials(config.stateDir, store, config.thing, caPem)) ?? (await provisionAndSave(config, store, caPem, (serial) => options.onEvent?.({ type: 'provisioned', thing: config.thing, serial })));
    const queue = await OfflineQueue.open(join(config.stateDir, 'queue'), { maxEntries: config.queue.maxEntries, maxBytes: config.queue.maxBytes }, { durability: config.queue.durability });
    let agent: FleetwardAgent;
    try {
      const counters = await CounterFile.open(join(config.stateDir, 'counters.json'));
      await counters.recordRestart();
      agent = new FleetwardAgent(config, options, caPem, store, credentials, queue, counters);
    } catch (error) {
      // The queue holds the folder open: a failed start must let go of it, or a retry finds it taken.
      await queue.close().catch(() => undefined);
      throw error;
    }
    await agent.#openUpdates();
    agent.#session.start();
    agent.#scheduleTick(0);
    return agent;
  }

  /** The OTA update client (rule 4), or null when updates are off (no `updates.trustedRoot`). */
  get updates(): UpdateClient | null {
    return this.#updates;
  }

  get thing(): string {
    return this.#config.thing;
  }

  get online(): boolean {
    return this.#session.client !== null;
  }

  get certificate(): X509Certificate {
    return this.#credentials.certificate;
  }

  status(): AgentStatus {
    return {
      thing: this.thing,
      online: this.online,
      serial: this.#credentials.certificate.serialNumber.toLowerCase(),
      notAfter: new Date(this.#credentials.certificate.validTo).toISOString(),
      queued: this.#queue.size,
      dropped: this.#queue.droppedTotal,
      ...this.#delivery.stats,
      ...this.#stats,
      forbiddenTopics: this.#delivery.forbiddenTopics,
      commands: this.#commands.stats,
      session: this.#session.stats,
      restarts: this.#counters.restarts,
      mode: this.#mode,
    };
  }

  /**
   * Publishes durably: the message is on disk when this resolves, and is delivered in order with
   * QoS 1 whenever the gateway is reachable (at least once). A topic the gateway refused as not
   * authorized is refused here from then on (FW_ERR_FORBIDDEN): the agent does not retry it in a loop.
   * On a topic a data contract covers, the payload is checked against it (FW_ERR_PAYLOAD_REJECTED,
   * counted as a malformed reading) and minimized by it before it is queued.
   */
  async publish(topic: string, payload: string | Buffer | object): Promise<void> {
    if (topic.startsWith('$') || /[+#]/.test(topic) || topic.length === 0) throw new FleetwardError('FW_ERR_VALIDATION', `applications publish to their own topic names, not ${topic}`, { field: 'topic' });
    if (this.#delivery.isForbidden(topic)) throw new FleetwardError('FW_ERR_FORBIDDEN', `the gateway does not allow this device to publish to ${topic}`, { topic });
    let minimized: Buffer | null;
    try {
      // Rule 9: checked and minimized before the queue, so what the contract drops never reaches the disk or the network.
      minimized = this.#contracts.apply(topic, payload);
    } catch (error) {
      this.#stats.malformedReadings += 1;
      throw error;
    }
    const body = minimized ?? (Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)));
    await this.#queue.append({ topic, payload: body });
    void this.#delivery.flush();
  }

  /**
   * A reading on `things/{thing}/telemetry/{stream}`, checked against the stream's declared schema
   * first: a malformed reading is refused here (FW_ERR_PAYLOAD_REJECTED) and counted. On low
   * battery only one reading in four per stream is sent; the others are counted as deferred.
   */
  async telemetry(stream: string, reading: Record<string, unknown>): Promise<'queued' | 'deferred'> {
    try {
      this.#schemas.check(`telemetry:${stream}`, reading);
    } catch (error) {
      this.#stats.malformedReadings += 1;
      throw error;
    }
    const seen = (this.#readingsSeen.get(stream) ?? 0) + 1;
    this.#readingsSeen.set(stream, seen);
    if (this.#mode.lowBattery && seen % LOW_BATTERY_TELEMETRY_DIVISOR !== 1) {
      this.#stats.deferredReadings += 1;
      return 'deferred';
    }
    await this.publish(`things/${this.thing}/telemetry/${stream}`, reading);
    return 'queued';
  }

  /** Subscribes (QoS 1) now and after every reconnect; a refused subscription is FW_ERR_FORBIDDEN. */
  async subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<void> {
    const client = this.#session.client;
    if (client) {
      await subscribeOne(client, filter);
      this.#granted.add(filter);
    }
    // Kept for the next sessions only once granted (or while offline): a refused filter is not asked for again and again.
    this.#subscriptions.set(filter, handler);
  }

  onCommand(name: string, handler: CommandHandler, paramsSchema?: object): void {
    this.#commands.on(name, handler, paramsSchema);
  }

  /**
   * Seals a value to the backend's key (rule 9): put the result in a reading, and only the platform,
   * on ingest, can read it; a stolen device cannot, not even the one that sealed it.
   */
  async seal(value: unknown): Promise<SealedValue> {
    const recipient = await this.#sealingKey.fetch(this.#session.client);
    return sealJson(value, recipient, thingSealingInfo(this.thing));
  }

  /** A store on the device for records kept before upload, sealed to the backend's key (see `seal`). */
  async openSealedStore(): Promise<SealedStore> {
    const recipient = await this.#sealingKey.fetch(this.#session.client);
    return SealedStore.open(join(this.#config.stateDir, 'sealed'), recipient, { thing: this.thing });
  }

  /** Whether an update may be installed now: never on low battery (rule 6: a flat battery mid-install bricks a device). */
  mayInstallUpdates(): boolean {
    return !this.#mode.lowBattery;
  }

  /** A failed local login (console, SSH, local API) the application saw: reported in the device metrics. */
  async recordLocalAuthFailure(): Promise<void> {
    await this.#counters.recordLocalAuthFailure();
  }

  /** Renews the certificate now, with a new key (also done on its own before expiry and when the gateway asks). */
  async renewNow(): Promise<void> {
    this.#renewing ??= this.#renew().finally(() => {
      this.#renewing = null;
    });
    return this.#renewing;
  }

  /** Re-reads battery and memory and applies the resulting mode (also done on every tick). */
  async checkResources(): Promise<ResourceMode> {
    const battery = await this.#battery();
    const memoryAvailable = this.#options.memoryAvailable ? this.#options.memoryAvailable() : freemem() / totalmem();
    const mode = resourceMode({ batteryPercent: battery, memoryAvailable }, { lowBatteryPercent: this.#config.lowBatteryPercent, memoryPressureBelow: MEMORY_PRESSURE_BELOW });
    if (mode.memoryPressure) {
      const dropped = this.#queue.shed(Math.floor(this.#config.queue.maxEntries / 10));
      if (dropped > 0) this.#emit({ type: 'queue-shed', dropped });
    }
    this.#mode = mode;
    return mode;
  }

  /** Resolves once the queue is empty (everything acknowledged by the gateway) or the time is up. */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.#queue.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return this.#queue.size === 0;
  }

  async stop(): Promise<void> {
    if (this.#tick) clearTimeout(this.#tick);
    this.#tick = null;
    if (this.#updatesTimer) clearInterval(this.#updatesTimer);
    this.#updatesTimer = null;
    await this.#updates?.close();
    await this.#session.stop();
    await this.#queue.close();
  }

  #online(client: MqttClient, sessionPresent: boolean): void {
    this.#emit({ type: 'online', sessionPresent });
    // Reaching the gateway over mTLS (a CONNACK on this device's certificate) is the first half of a new slot's health check.
    this.#updates?.gatewayReached();
    const own = [Topics.commands(this.thing), `$fw/things/${this.thing}/cert/renew/+`];
    // Rule 4: the jobs pushed to this device, the answers to its requests, and the gateway's answers to its reports.
    if (this.#updates) own.push(Topics.jobsNotify(this.thing), Topics.jobs(this.thing), Topics.jobsRejected(this.thing), `$fw/things/${this.thing}/jobs/+/update/+`);
    void (async () => {
      try {
        // A resumed session still holds what this process subscribed before: only the rest is asked for.
        if (!sessionPresent) this.#granted.clear();
        for (const filter of [...own, ...this.#subscriptions.keys()]) {
          if (this.#granted.has(filter)) continue;
          await subscribeOne(client, filter);
          this.#granted.add(filter);
        }
        await this.#contracts.fetch(client).then(
          () => this.#emit({ type: 'contracts', contracts: this.#contracts.names }),
          (error: unknown) => this.#emit({ type: 'error', message: `the data contracts could not be fetched: ${(error as Error).message}` }),
        );
        await client.publishAsync(Topics.inventory(this.thing), JSON.stringify(await this.#inventory()), { qos: 1 });
        if (this.#updates) {
          // Asked on every connection: a job released while the device was away is not missed.
          await client.publishAsync(Topics.jobsRequest(this.thing), JSON.stringify({ clientToken: `jobs-${Date.now().toString(36)}` }), { qos: 1 });
        }
        if (renewalDue(this.#credentials.certificate, this.#now(), this.#config.renewAtRemaining)) await this.renewNow();
      } catch (error) {
        this.#emit({ type: 'error', message: (error as Error).message });
      }
      await this.#delivery.flush();
    })();
  }

  #message(topic: string, payload: Buffer, _packet: IPublishPacket): void {
    if (topic === Topics.commands(this.thing)) {
      void this.#commands.dispatch(payload).then((result) => {
        this.#emit({ type: 'command', result });
        return this.#session.client?.publishAsync(Topics.commandResult(this.thing), JSON.stringify(result), { qos: 1 });
      }).catch((error: unknown) => this.#emit({ type: 'error', message: (error as Error).message }));
      return;
    }
    if (topic === Topics.renewRequired(this.thing)) {
      if (payload.length > 0) void this.renewNow().catch(() => undefined);
      return;
    }
    if (this.#sealingKey.receive(topic, payload)) return;
    if (this.#updates?.receive(topic, payload)) return;
    if (this.#contracts.receive(topic, payload)) return;
    if (topic === Topics.renewAccepted(this.thing) || topic === Topics.renewRejected(this.thing)) {
      this.#renewals.receive(this.thing, topic, payload);
      return;
    }
    for (const [filter, handler] of this.#subscriptions) {
      if (!topicFilterMatches(filter, topic)) continue;
      try {
        handler(topic, payload);
      } catch (error) {
        this.#emit({ type: 'error', message: `a subscription handler failed: ${(error as Error).message}` });
      }
    }
  }

  async #renew(): Promise<void> {
    const client = this.#session.client;
    if (client === null) throw new FleetwardError('FW_ERR_NOT_READY', 'the agent is offline: renewal waits for the next connection');
    const key = await this.#keys.generate();
    const previous = this.#credentials.key;
    try {
      const answer = await requestRenewal(client, this.thing, key, this.#renewals);
      const certPem = answer.certificatePem + firstCertificate(answer.chainPem);
      checkCertificate(certPem, key.publicKey, this.thing, this.#caPem);
      await saveCredentials(this.#config.stateDir, this.#keys, key, certPem);
      this.#credentials = (await loadCredentials(this.#config.stateDir, this.#keys, this.thing, this.#caPem)) ?? this.#credentials;
      await this.#keys.discard(previous).catch(() => undefined);
      this.#stats.renewals += 1;
      this.#emit({ type: 'renewed', serial: answer.serial, notAfter: answer.notAfter });
      this.#session.reconnectNow();
    } catch (error) {
      this.#emit({ type: 'renewal-failed', message: (error as Error).message });
      throw error;
    }
  }

  /**
   * Opens the update client when a trusted root is configured; updates are off otherwise, and the
   * agent says so. A root that cannot be used turns updates off too (the device keeps reporting, so
   * the platform lists it as unable to update) rather than keeping the device offline.
   */
  async #openUpdates(): Promise<void> {
    const { updates, firmware, stateDir } = this.#config;
    if (updates.trustedRoot === null || updates.hardware === null) {
      this.#emit({ type: 'updates-disabled', reason: 'no updates.trustedRoot is configured' });
      return;
    }
    // Loaded only when updates are on: an agent without a trusted root never needs the update client.
    const { UpdateClient } = await import('./updates/update-client.js');
    try {
      this.#updates = await UpdateClient.open({
        thing: this.thing,
        home: stateDir,
        config: { ...updates, trustedRoot: updates.trustedRoot, hardware: updates.hardware },
        factory: { version: firmware.version, securityVersion: firmware.securityVersion, imagePath: firmware.imagePath },
        identity: () => ({ key: this.#credentials.key.tls, certPem: this.#credentials.certPem, caPem: this.#caPem }),
        report: (jobId, update) => this.#reportJob(jobId, update),
        battery: this.#battery,
        reboot: this.#options.reboot ?? (() => this.#softReboot()),
        ...(this.#options.healthCheck && { healthCheck: this.#options.healthCheck }),
        ...(this.#options.updateFaults && { faults: this.#options.updateFaults }),
        ...(this.#options.now && { now: this.#options.now }),
        onEvent: (event) => this.#updateEvent(event),
        onFirmwareChanged: () => void this.#republishInventory(),
      });
    } catch (error) {
      this.#emit({ type: 'updates-disabled', reason: (error as Error).message });
      return;
    }
    this.#updatesTimer = setInterval(() => void this.#updates?.tick().catch((error: unknown) => this.#emit({ type: 'error', message: (error as Error).message })), updates.checkIntervalSeconds * 1000);
    this.#updatesTimer.unref?.();
  }

  /** A job step, queued on disk like any durable publish (QoS 1, survives being offline and a restart). */
  async #reportJob(jobId: string, update: JobUpdate): Promise<void> {
    await this.#queue.append({ topic: Topics.jobUpdate(this.thing, jobId), payload: Buffer.from(JSON.stringify(update)) });
    void this.#delivery.flush();
  }

  #updateEvent(event: UpdateEvent): void {
    if (event.type === 'update-error') this.#emit({ type: 'error', message: event.message });
    else this.#emit(event);
  }

  /** Without a reboot hook: the update client's boot step in this process, then a new connection (which confirms the slot). */
  #softReboot(): void {
    setImmediate(() => {
      void this.#updates
        ?.boot()
        .then(() => this.#session.reconnectNow())
        .catch((error: unknown) => this.#emit({ type: 'error', message: (error as Error).message }));
    });
  }

  /** The device's inventory; with updates on, the firmware is what the A/B slots run (version, security version, image hash). */
  async #inventory(): Promise<object> {
    const report = await this.#reports.inventory();
    if (this.#updates === null) return report;
    // Checked again with the gateway's own parser: what the device sends is what the gateway accepts.
    return parseInventory(new TextEncoder().encode(JSON.stringify({ ...report, ...(await this.#updates.runningFirmware()) })));
  }

  async #republishInventory(): Promise<void> {
    const client = this.#session.client;
    if (client === null) return;
    try {
      await client.publishAsync(Topics.inventory(this.thing), JSON.stringify(await this.#inventory()), { qos: 1 });
    } catch (error) {
      this.#emit({ type: 'error', message: `the inventory could not be published: ${(error as Error).message}` });
    }
  }

  #scheduleTick(delayMs: number): void {
    this.#tick = setTimeout(() => void this.#onTick(), delayMs);
    this.#tick.unref?.();
  }

  async #onTick(): Promise<void> {
    try {
      await this.checkResources();
      const client = this.#session.client;
      if (client) await client.publishAsync(Topics.metrics(this.thing), JSON.stringify(await this.#reports.metrics()), { qos: 0 });
      if (client && renewalDue(this.#credentials.certificate, this.#now(), this.#config.renewAtRemaining)) await this.renewNow();
    } catch (error) {
      this.#emit({ type: 'error', message: (error as Error).message });
    }
    if (this.#tick !== null) this.#scheduleTick(this.#config.metricsIntervalSeconds * 1000 * (this.#mode.lowBattery ? LOW_BATTERY_TELEMETRY_DIVISOR : 1));
  }

  #now(): Date {
    return this.#options.now ? this.#options.now() : new Date();
  }

  #emit(event: AgentEvent): void {
    this.#options.onEvent?.(event);
  }
}

/** Provisions the device by the configured method and saves what it got; returns the credentials as loaded back. */
