import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { generate, parser as mqttParser, type IPublishPacket, type Packet } from 'mqtt-packet';

/**
 * A deliberately small MQTT 5 client for the canaries, on mqtt-packet over a raw socket: it must see
 * exactly what the gateway answers (CONNACK, PUBACK and SUBACK reason codes and reason strings, TLS
 * alerts, a silent close), which a full client library smooths over with retries and generic errors.
 */

/** Where the node's device listener is, as the canaries reach it (loopback for a wildcard bind). */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

export interface ClientCredentials {
  /** The CA chain the node's server certificate is checked against. */
  readonly ca: string;
  readonly key?: string;
  /** Certificate, then its issuing CA. */
  readonly cert?: string;
}

/** How a connection attempt ended: a CONNACK (with a session when it admitted us), or refused before any CONNACK. */
export type ConnectOutcome =
  | { readonly kind: 'connack'; readonly reasonCode: number; readonly reasonString: string | undefined; readonly session: MqttSession | null }
  | { readonly kind: 'refused'; readonly detail: string; readonly tlsAlert: string | null }
  | { readonly kind: 'unreachable'; readonly detail: string };

export interface Acknowledgement {
  readonly reasonCode: number;
  readonly reasonString: string | undefined;
}

const PROTOCOL = { protocolVersion: 5 } as const;

/**
 * Opens mutual TLS to the listener and sends CONNECT. The server's certificate chain is verified
 * against `ca`; its host name is not (the canary attacks the listener, it does not test its name).
 */
export function connectTls(target: ProbeTarget, credentials: ClientCredentials, clientId: string, timeoutMs: number): Promise<ConnectOutcome> {
  const socket = tlsConnect({
    host: target.host,
    port: target.port,
    ca: credentials.ca,
    ...(credentials.key !== undefined && { key: credentials.key }),
    ...(credentials.cert !== undefined && { cert: credentials.cert }),
    ...(isIP(target.host) === 0 && { servername: target.host }),
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  });
  return handshake(socket, 'secureConnect', clientId, timeoutMs);
}

/** Plain TCP, then an MQTT CONNECT in clear: what a device without TLS would send. */
export function connectPlain(target: ProbeTarget, clientId: string, timeoutMs: number): Promise<ConnectOutcome> {
  return handshake(tcpConnect({ host: target.host, port: target.port }), 'connect', clientId, timeoutMs);
}

function handshake(socket: Socket | TLSSocket, ready: 'connect' | 'secureConnect', clientId: string, timeoutMs: number): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const parse = mqttParser(PROTOCOL);
    let connected = false;
    let settled = false;
    const finish = (outcome: ConnectOutcome, keep = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      if (!keep) socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish(connected ? { kind: 'refused', detail: `no CONNACK within ${timeoutMs} ms`, tlsAlert: null } : { kind: 'unreachable', detail: `no connection within ${timeoutMs} ms` }), timeoutMs);
    const onData = (chunk: Buffer) => parse.parse(chunk);
    parse.on('packet', (packet: Packet) => {
      if (packet.cmd !== 'connack') return finish({ kind: 'refused', detail: `answered ${packet.cmd} instead of CONNACK`, tlsAlert: null });
      const reasonCode = packet.reasonCode ?? packet.returnCode ?? 0;
      const reasonString = packet.properties?.reasonString;
      if (reasonCode !== 0) return finish({ kind: 'connack', reasonCode, reasonString, session: null });
      finish({ kind: 'connack', reasonCode, reasonString, session: new MqttSession(socket, parse) }, true);
    });
    parse.on('error', (error: Error) => finish({ kind: 'refused', detail: `unreadable answer: ${error.message}`, tlsAlert: null }));
    socket.on('data', onData);
    socket.once(ready, () => {
      connected = true;
      socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 30 }, PROTOCOL));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ECONNREFUSED' || error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH')) return finish({ kind: 'unreachable', detail: `${error.code}: nothing listens on the port` });
      finish({ kind: 'refused', detail: error.code === undefined ? error.message : `${error.code}: ${error.message}`, tlsAlert: tlsAlertOf(error) });
    });
    socket.once('close', () => finish(connected ? { kind: 'refused', detail: 'connection closed without a CONNACK', tlsAlert: null } : { kind: 'refused', detail: 'connection closed during the TLS handshake', tlsAlert: null }));
  });
}

/** `ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED` → `certificate expired`; null for an error that is no TLS alert. */
export function tlsAlertOf(error: NodeJS.ErrnoException): string | null {
  const match = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(error.code ?? '');
  if (match !== null) return (match[1] as string).toLowerCase().replaceAll('_', ' ');
  const text = /alert ([a-z ]+)/.exec(error.message);
  return text === null ? null : (text[1] as string).trim();
}

/** An admitted connection: QoS 1 publishes and subscriptions answered in order, and what is delivered to it. */
export class MqttSession {
  readonly #socket: Socket;
  readonly #waiting = new Map<number, (ack: Acknowledgement) => void>();
  readonly received: IPublishPacket[] = [];
  #nextId = 1;
  #closed: string | null = null;

  constructor(socket: Socket, parse: ReturnType<typeof mqttParser>) {
    this.#socket = socket;
    parse.removeAllListeners('packet');
    parse.on('packet', (packet: Packet) => this.#onPacket(packet));
    socket.on('data', (chunk: Buffer) => parse.parse(chunk));
    socket.on('close', () => this.#fail('connection closed'));
  }

  get closedReason(): string | null {
    return this.#closed;
  }

  /** Publishes at QoS 1 and resolves with the PUBACK's reason (rejects if the connection ends first). */
  publish(topic: string, payload: Buffer, timeoutMs: number): Promise<Acknowledgement> {
    const messageId = this.#id();
    return this.#request(messageId, generate({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, messageId }, PROTOCOL), timeoutMs);
  }

  /** Subscribes to one filter at QoS 1 and resolves with the SUBACK's reason code for it. */
  subscribe(filter: string, timeoutMs: number): Promise<Acknowledgement> {
    const messageId = this.#id();
    return this.#request(messageId, generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic: filter, qos: 1 }] }, PROTOCOL), timeoutMs);
  }

  close(): void {
    if (this.#closed === null && this.#socket.writable) this.#socket.end(generate({ cmd: 'disconnect', reasonCode: 0 }, PROTOCOL));
    this.#socket.destroy();
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 65_535) + 1;
    return id;
  }

  #request(messageId: number, bytes: Buffer, timeoutMs: number): Promise<Acknowledgement> {
    if (this.#closed !== null) return Promise.reject(new Error(this.#closed));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(messageId);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(messageId, (ack) => {
        clearTimeout(timer);
        if (ack.reasonCode < 0) reject(new Error(ack.reasonString ?? 'connection closed'));
        else resolve(ack);
      });
      this.#socket.write(bytes);
    });
  }

  #onPacket(packet: Packet): void {
    if (packet.cmd === 'publish') {
      this.received.push(packet);
      if (packet.qos === 1 && packet.messageId !== undefined) this.#socket.write(generate({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 }, PROTOCOL));
      return;
    }
    if (packet.cmd === 'disconnect') {
      this.#fail(`server DISCONNECT 0x${(packet.reasonCode ?? 0).toString(16)}${packet.properties?.reasonString === undefined ? '' : ` (${packet.properties.reasonString})`}`);
      return;
    }
    if ((packet.cmd === 'puback' || packet.cmd === 'suback') && packet.messageId !== undefined) {
      const answer = this.#waiting.get(packet.messageId);
      this.#waiting.delete(packet.messageId);
      const reasonCode = packet.cmd === 'puback' ? (packet.reasonCode ?? 0) : Number((packet.granted as number[])[0] ?? 0x80);
      answer?.({ reasonCode, reasonString: packet.properties?.reasonString });
    }
  }

  #fail(why: string): void {
    if (this.#closed !== null) return;
    this.#closed = why;
    for (const answer of this.#waiting.values()) answer({ reasonCode: -1, reasonString: why });
    this.#waiting.clear();
  }
}
