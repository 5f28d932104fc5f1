import { connect as tcpConnect, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { fullJitterDelay, type BackoffPolicy } from './backoff.js';
import { isIdentityRefusal, refusalResponse } from './reason-codes.js';
import { CONNECT_TIMEOUT_MS, mqttTlsOptions, secureUrl, TlsContextCache, type TlsIdentity } from './tls-options.js';

export interface SessionOptions {
  readonly url: string;
  readonly clientId: string;
  /** Read at every attempt, so a renewed certificate is used from the next connection on. */
  readonly identity: () => TlsIdentity;
  readonly backoff: BackoffPolicy;
  /** How long the gateway keeps the session (subscriptions, queued QoS 1 messages) while the device is away. */
  readonly sessionExpirySeconds: number;
  readonly keepaliveSeconds: number;
  readonly random?: () => number;
}

export interface SessionListener {
  online(client: MqttClient, sessionPresent: boolean): void;
  offline(): void;
  /** A refused connection: a CONNACK reason code, or a TLS/socket error code. */
  refused(code: number | string, message: string): void;
  message(topic: string, payload: Buffer, packet: IPublishPacket): void;
}

export interface SessionStats {
  readonly connects: number;
  readonly disconnects: number;
  readonly refusals: number;
  /** TLS handshakes that resumed a session with a ticket instead of a full handshake. */
  readonly resumed: number;
  readonly lastError: string | null;
}

/**
 * One MQTT session to the gateway over mutual TLS, kept up: after a drop or a refusal the next
 * attempt waits an exponential, capped, fully jittered delay; a quota or rate refusal counts double,
 * and an identity refusal (revoked, banned, not authorized) waits the cap, so a refused device never
 * hammers the gateway. Each attempt is a fresh MQTT.js client: MQTT.js's own reconnect is off.
 */
export class DeviceSession {
  readonly #options: SessionOptions;
  readonly #listener: SessionListener;
  readonly #tls = new TlsContextCache();
  #client: MqttClient | null = null;
  /** The TCP connection of an attempt, before TLS and MQTT start on it. */
  #dialing: Socket | null = null;
  #online = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #stats = { connects: 0, disconnects: 0, refusals: 0, resumed: 0, lastError: null as string | null };

  constructor(options: SessionOptions, listener: SessionListener) {
    this.#options = options;
    this.#listener = listener;
  }

  get stats(): SessionStats {
    return { ...this.#stats };
  }

  /** The connected client, or null while offline. */
  get client(): MqttClient | null {
    return this.#online ? this.#client : null;
  }

  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  /** Drops the current connection and connects again at once (after a renewal, with the new certificate). */
  reconnectNow(): void {
    this.#attempt = 0;
    this.#drop();
    this.#clearTimer();
    this.#connect();
  }

  /** A quota or rate refusal on a publish: the next reconnect (if any) waits longer too. */
  slowDown(): void {
    this.#attempt += 1;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    this.#hangUp();
    const client = this.#client;
    this.#client = null;
    this.#online = false;
    if (client) await client.endAsync(false).catch(() => undefined);
  }

  /**
   * One attempt. Over mqtts the TCP connection comes first, and TLS and MQTT start on it once it is
   * up: against a gateway that is down or restarting, an attempt costs a refused TCP connection, not
   * a TLS client and an MQTT client (a simulator's thousands of devices retry at once).
   */
  #connect(): void {
    if (this.#stopped) return;
    const url = new URL(secureUrl(this.#options.url));
    if (url.protocol !== 'mqtts:') return this.#open(url, undefined);
    const socket = tcpConnect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 8883) });
    this.#dialing = socket;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })));
    socket.once('error', (error: Error & { code?: string }) => {
      if (this.#dialing !== socket) return;
      this.#dialing = null;
      this.#refused(error.code ?? 'error', error.message);
      this.#scheduleReconnect(error.code ?? 'error');
    });
    socket.once('connect', () => {
      if (this.#dialing !== socket) return;
      this.#dialing = null;
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      this.#open(url, socket);
    });
  }

  #open(url: URL, socket: Socket | undefined): void {
    const context = this.#tls.contextFor(this.#options.identity());
    const ticket = this.#tls.ticketFor(context);
    const options = mqttTlsOptions(
      context,
      this.#options.clientId,
      { clean: false, keepalive: this.#options.keepaliveSeconds, properties: { sessionExpiryInterval: this.#options.sessionExpirySeconds } },
      ticket,
    );
    // MQTT.js hands its options to tls.connect: TLS starts on the connected socket.
    const client = mqtt.connect(url.href, socket === undefined ? options : Object.assign(options, { socket }));
    this.#client = client;
    // TLS (mqtts): the gateway's session tickets arrive after the handshake; a resumed handshake is counted.
    if (client.stream instanceof TLSSocket) {
      const tls = client.stream;
      tls.on('session', (received: Buffer) => this.#tls.keepTicket(context, received));
      if (ticket !== undefined) tls.once('secureConnect', () => (this.#stats.resumed += tls.isSessionReused() ? 1 : 0));
    }
    let refusedCode: number | string | null = null;
    client.on('connect', (connack) => {
      if (this.#client !== client) return;
      this.#online = true;
      this.#attempt = 0;
      this.#stats.connects += 1;
      this.#listener.online(client, connack.sessionPresent);
    });
    client.on('message', (topic, payload, packet) => {
      if (this.#client === client) this.#listener.message(topic, payload, packet);
    });
    client.on('error', (error: Error & { code?: number | string }) => {
      refusedCode = error.code ?? 'error';
      this.#refused(refusedCode, error.message);
    });
    client.on('close', () => {
      if (this.#client !== client) return;
      client.removeAllListeners('message');
      const wasOnline = this.#online;
      this.#online = false;
      this.#client = null;
      client.end(true);
      if (wasOnline) {
        this.#stats.disconnects += 1;
        this.#listener.offline();
      }
      this.#scheduleReconnect(refusedCode);
    });
  }

  #refused(code: number | string, message: string): void {
    this.#stats.lastError = `${String(code)}: ${message}`;
    this.#stats.refusals += 1;
    this.#listener.refused(code, message);
  }

  #scheduleReconnect(code: number | string | null): void {
    if (this.#stopped) return;
    if (typeof code === 'number' && refusalResponse(code) === 'slow-down') this.#attempt += 1;
    const delay = typeof code === 'number' && isIdentityRefusal(code) ? this.#options.backoff.maxMs : fullJitterDelay(this.#options.backoff, this.#attempt, this.#options.random);
    this.#attempt += 1;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
    this.#timer.unref?.();
  }

  #hangUp(): void {
    const socket = this.#dialing;
    this.#dialing = null;
    socket?.destroy();
  }

  #drop(): void {
    this.#hangUp();
    const client = this.#client;
    this.#client = null;
    if (client) {
      const wasOnline = this.#online;
      this.#online = false;
      client.removeAllListeners('message');
      client.end(true);
      if (wasOnline) this.#listener.offline();
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
