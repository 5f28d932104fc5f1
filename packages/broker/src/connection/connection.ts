import type { Duplex } from 'node:stream';
import { ReasonCode } from '@fleetward/protocol';
import type { IAuthPacket, IConnackPacket, IDisconnectPacket, Packet } from 'mqtt-packet';
import type { LimitName } from '../broker-options.js';
import { hasPasswordWithoutUserName, isSupportedLevel, readConnectPreamble } from '../codec/connect-preamble.js';
import { FrameReader, type Frame, type FrameSink } from '../codec/frame-reader.js';
import { PacketDecoder } from '../codec/packet-decoder.js';
import { encodePacket } from '../codec/packet-encoder.js';
import type { CloseCause, EngineContext, OpenedSession, Will } from '../engine/engine-context.js';
import type { ClientRef, ConnectionInfo, ConnectRequest } from '../hooks/broker-hooks.js';
import type { Delivery } from '../message.js';
import { InboundTopicAliases } from '../session/inbound-topic-aliases.js';
import type { Session } from '../session/session.js';
import type { ClientChannel } from './client-channel.js';
import { toConnackReturnCode } from './connack-return-code.js';
import type { Admitted, ConnectChannel } from './connect-channel.js';
import { runConnectFlow } from './connect-flow.js';
import { acceptedPackets, nextConnectionState, type ConnectionEvent, type ConnectionState } from './connection-state.js';
import { OutboundDeliveries, type OutboundChannel } from './outbound-deliveries.js';
import { dispatchPacket } from './packet-dispatch.js';
import type { Authentication } from './reauthentication.js';

/** Frames read ahead while a packet is being decided before reading pauses (backpressure). */
const BACKLOG_LIMIT = 32;
/** How long a closing connection waits for its peer to close before dropping the socket, in ms. */
const CLOSE_GRACE_MS = 1000;
/** The largest packet MQTT can express (MQTT 1.5.5): the client's limit when it gives none. */
const PROTOCOL_MAXIMUM_PACKET_SIZE = 268_435_460;
/** A 3.1.1 CONNACK with return code 0x01, for protocol levels we do not speak (MQTT-3.1.2-2). */
const UNACCEPTABLE_PROTOCOL_VERSION = Buffer.from([0x20, 0x02, 0x00, 0x01]);

/**
 * One client connection over any duplex stream: the I/O edge. It cuts and decodes packets, runs
 * them through the protocol flows one at a time and in order, and writes what they answer. Its
 * session and negotiated settings come from the CONNECT flow; its lifecycle from the state table.
 */
export class Connection<C> implements ClientChannel<C>, ConnectChannel<C>, OutboundChannel<C>, FrameSink {
  readonly engine: EngineContext<C>;
  readonly info: ConnectionInfo;
  readonly #stream: Duplex;
  readonly #reader: FrameReader;
  readonly #decoder = new PacketDecoder();
  readonly #onGone: () => void;
  readonly #openedAt: number;
  #state: ConnectionState = 'awaiting-connect';
  #version: 4 | 5 = 4;
  #admitted: Admitted<C> | undefined;
  #authentication: Authentication | undefined;
  #session: Session | undefined;
  #outbound: OutboundDeliveries<C> | undefined;
  #inboundAliases = new InboundTopicAliases(0);
  #clientMaximumPacketSize = PROTOCOL_MAXIMUM_PACKET_SIZE;
  #heard = false;
  #quietSince = 0;
  #blockedSince: number | undefined;
  #busy = false;
  #backlog: Frame[] = [];
  #authWaiter: ((packet: IAuthPacket | undefined) => void) | undefined;
  #corked = false;
  #gone = false;

  constructor(engine: EngineContext<C>, stream: Duplex, info: ConnectionInfo, onGone: () => void) {
    this.engine = engine;
    this.info = info;
    this.#stream = stream;
    this.#onGone = onGone;
    this.#openedAt = engine.now();
    this.#reader = new FrameReader(engine.limits.maxPacketSizeBytes, this);
    stream.on('data', (chunk: Buffer) => {
      this.#heard = true;
      this.#reader.push(chunk);
    });
    stream.on('error', () => this.#close({ publishWill: true }));
    stream.on('end', () => this.#close({ publishWill: true }));
    stream.on('close', () => {
      this.#close({ publishWill: true });
      if (!this.#gone) {
        this.#gone = true;
        this.#onGone();
      }
    });
  }

  get version(): 4 | 5 {
    return this.#version;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  get ref(): ClientRef<C> {
    return (this.#admitted as Admitted<C>).ref;
  }

  get connectRequest(): ConnectRequest {
    return (this.#admitted as Admitted<C>).connect;
  }

  get requestedExpirySeconds(): number {
    return (this.#admitted as Admitted<C>).requestedExpirySeconds;
  }

  get will(): Will | undefined {
    return this.#admitted?.will;
  }

  get session(): Session {
    return this.#session as Session;
  }

  get authentication(): Authentication | undefined {
    return this.#authentication;
  }

  get inboundAliases(): InboundTopicAliases {
    return this.#inboundAliases;
  }

  get pendingWriteBytes(): number {
    return this.#stream.writableLength;
  }

  // --- Reading ---------------------------------------------------------------------------------

  frame(frame: Frame): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'authenticating') return this.#duringAuthentication(frame);
    if (this.#busy) {
      this.#backlog.push(frame);
      if (this.#backlog.length === BACKLOG_LIMIT) this.#stream.pause();
      return;
    }
    this.#process(frame);
  }

  tooLarge(type: number, _size: number, head: Buffer): void {
    this.limit('maxPacketSizeBytes');
    if (this.#state === 'awaiting-connect' && type === 1) {
      // An MQTT 5 CONNECT can be told why (CONNACK 0x95); a 3.1.1 one only closed.
      const preamble = readConnectPreamble(head);
      if (preamble.kind === 'mqtt' && preamble.level === 5) {
        this.#version = 5;
        return this.refuse(ReasonCode.PacketTooLarge);
      }
    }
    // MQTT 3.2.2.3.6: a packet beyond our Maximum Packet Size is answered with DISCONNECT 0x95.
    this.closeWith(ReasonCode.PacketTooLarge);
  }

  malformed(): void {
    this.protocolError(ReasonCode.MalformedPacket);
  }

  #process(frame: Frame): void {
    if (this.#state === 'awaiting-connect') return this.#processConnect(frame);
    const decoded = this.#decoder.decode(frame);
    if ('error' in decoded) return this.protocolError(decoded.error);
    if (!acceptedPackets.connected.has(decoded.packet.cmd)) return this.protocolError(ReasonCode.ProtocolError);
    const pending = dispatchPacket(this, decoded.packet);
    if (pending !== undefined) this.#waitFor(pending);
  }

  #processConnect(frame: Frame): void {
    // MQTT-3.1.0-1: the first packet is a CONNECT, or the connection closes.
    if (frame.type !== 1) return this.protocolError(ReasonCode.ProtocolError);
    const preamble = readConnectPreamble(frame.bytes);
    // MQTT-3.1.2-1: not the MQTT protocol name: close.
    if (preamble.kind !== 'mqtt') return this.protocolError(ReasonCode.ProtocolError);
    if (!isSupportedLevel(preamble.level)) {
      // MQTT-3.1.2-2 (3.1.1): CONNACK 0x01, in the 3.1.1 format every level understands, then close.
      this.engine.counters.protocolErrors++;
      this.#writeNow(UNACCEPTABLE_PROTOCOL_VERSION);
      return this.#close({ publishWill: false });
    }
    this.#version = preamble.level;
    if (hasPasswordWithoutUserName(preamble.level, preamble.flags)) return this.protocolError(ReasonCode.MalformedPacket);
    const decoded = this.#decoder.decode(frame);
    if ('error' in decoded) return this.protocolError(decoded.error);
    if (decoded.packet.cmd !== 'connect') return this.protocolError(ReasonCode.ProtocolError);
    this.#transition('connect');
    const flow = runConnectFlow(this, decoded.packet);
    if (typeof flow !== 'string') this.#waitFor(flow);
  }

  /** Holds further packets until a flow that had to wait is done, so packets are handled in order. */
  #waitFor(pending: Promise<unknown>): void {
    this.#busy = true;
    pending.then(
      () => {
        this.#busy = false;
        this.#drainBacklog();
      },
      () => {
        this.#busy = false;
        this.closeWith(ReasonCode.ImplementationSpecificError);
      },
    );
  }

  #drainBacklog(): void {
    while (!this.#busy && this.#backlog.length > 0 && this.#state !== 'closed' && this.#state !== 'authenticating') {
      this.#process(this.#backlog.shift() as Frame);
    }
    if (this.#backlog.length < BACKLOG_LIMIT && this.#state !== 'closed') this.#stream.resume();
  }

  /** During enhanced authentication only AUTH and DISCONNECT may come (MQTT-3.1.2-30). */
  #duringAuthentication(frame: Frame): void {
    const decoded = this.#decoder.decode(frame);
    if ('error' in decoded) return this.protocolError(decoded.error);
    const packet = decoded.packet;
    if (!acceptedPackets.authenticating.has(packet.cmd)) return this.protocolError(ReasonCode.ProtocolError);
    if (packet.cmd === 'disconnect') return this.#close({ publishWill: false });
    this.#transition('response');
    const waiter = this.#authWaiter;
    this.#authWaiter = undefined;
    waiter?.(packet as IAuthPacket);
  }

  // --- The CONNECT flow's side -----------------------------------------------------------------

  limit(name: LimitName): void {
    this.engine.hooks.limit({ limit: name, clientId: this.#admitted?.ref.clientId, connection: this.info });
  }

  refuse(reasonCode: number, reasonString?: string): void {
    // MQTT-3.2.2-6 (3.1.1 MQTT-3.2.2-4): a refusing CONNACK has Session Present 0.
    if (this.#version === 5) {
      this.send({ cmd: 'connack', reasonCode, sessionPresent: false, properties: reasonString === undefined ? undefined : { reasonString } });
    } else {
      this.send({ cmd: 'connack', returnCode: toConnackReturnCode(reasonCode), sessionPresent: false });
    }
    this.#close({ publishWill: false });
  }

  challenge(method: string, data: Buffer | undefined): Promise<IAuthPacket | undefined> {
    this.send({ cmd: 'auth', reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: method, authenticationData: data } });
    this.#transition('challenge');
    return new Promise((resolve) => {
      this.#authWaiter = resolve;
    });
  }

  admitted(admitted: Admitted<C>): void {
    this.#admitted = admitted;
    this.#clientMaximumPacketSize = admitted.clientMaximumPacketSize;
    this.#authentication = admitted.authentication === undefined ? undefined : { ...admitted.authentication, reauthenticating: false };
    this.#inboundAliases = new InboundTopicAliases(this.#version === 5 ? this.engine.limits.topicAliasMaximum : 0);
    this.#outbound = new OutboundDeliveries(this, admitted.clientTopicAliasMaximum);
  }

  adoptSession(opened: OpenedSession): boolean {
    this.#session = opened.session;
    // The send quota is per connection (MQTT 4.9): the client's Receive Maximum, capped by ours.
    const receiveMaximum = (this.#admitted as Admitted<C>).clientReceiveMaximum;
    opened.session.outgoing.setCapacity(Math.min(receiveMaximum, this.engine.limits.maxInflightMessages));
    if (this.#state !== 'closed') return true;
    this.engine.connectionClosed(this, { publishWill: false });
    return false;
  }

  connack(packet: IConnackPacket): void {
    this.send(packet);
    this.#transition('accept');
    this.#quietSince = this.engine.now();
    this.#heard = false;
  }

  resume(queued: readonly Delivery[]): void {
    (this.#outbound as OutboundDeliveries<C>).resume(queued);
    if (this.closed) return;
    this.engine.sessionOnline(this);
    this.pump();
  }

  takeOver(): void {
    // MQTT-3.1.4-3: DISCONNECT 0x8E to the existing client, and its connection closes.
    this.#close({ publishWill: true, takenOver: true }, ReasonCode.SessionTakenOver);
  }

  // --- Delivering and writing ------------------------------------------------------------------

  deliver(delivery: Delivery): void {
    (this.#outbound as OutboundDeliveries<C>).deliver(delivery);
  }

  pump(): void {
    (this.#outbound as OutboundDeliveries<C>).pump();
  }

  send(packet: Packet): boolean {
    if (this.#state === 'closed') return false;
    let bytes: Buffer | undefined;
    try {
      bytes = encodePacket(packet, this.#version, this.#clientMaximumPacketSize);
    } catch {
      this.closeWith(ReasonCode.ImplementationSpecificError);
      return false;
    }
    if (bytes === undefined) {
      this.limit('clientMaximumPacketSize');
      return false;
    }
    this.#write(bytes);
    return true;
  }

  reasonString(text: string): string | undefined {
    return this.#admitted?.requestProblemInformation === false ? undefined : text;
  }

  #write(bytes: Buffer): void {
    const stream = this.#stream;
    if (!this.#corked) {
      // Packets written in the same tick leave in one system call.
      this.#corked = true;
      stream.cork();
      process.nextTick(() => {
        this.#corked = false;
        stream.uncork();
      });
    }
    if (!stream.write(bytes) && this.#blockedSince === undefined) {
      this.#blockedSince = this.engine.now();
      stream.once('drain', () => {
        this.#blockedSince = undefined;
      });
    }
  }

  #writeNow(bytes: Buffer): void {
    if (!this.#stream.destroyed) this.#stream.write(bytes);
  }

  // --- Timers ----------------------------------------------------------------------------------

  /** Called by the engine's sweep: connect timeout, keep alive and slow consumers. */
  tick(now: number): void {
    if (this.#state === 'closed') return;
    if (this.#state !== 'connected') {
      if (now - this.#openedAt > this.engine.limits.connectTimeoutMs) {
        this.limit('connectTimeoutMs');
        this.#close({ publishWill: false });
      }
      return;
    }
    if (this.#heard) {
      this.#heard = false;
      this.#quietSince = now;
    } else if (now - this.#quietSince > (this.#admitted as Admitted<C>).keepAliveSeconds * 1500) {
      // MQTT-3.1.2-22 (3.1.1 MQTT-3.1.2-24): silent for 1.5 times the Keep Alive: closed as if the network failed.
      this.engine.counters.keepAliveTimeouts++;
      return this.closeWith(ReasonCode.KeepAliveTimeout);
    }
    if (this.#blockedSince !== undefined && now - this.#blockedSince > this.engine.limits.drainTimeoutMs) {
      this.limit('drainTimeoutMs');
      this.#close({ publishWill: true });
      this.#stream.destroy();
    }
  }

  // --- Closing ---------------------------------------------------------------------------------

  protocolError(reasonCode: number): void {
    this.engine.counters.protocolErrors++;
    // MQTT 4.13.1: an error before CONNACK may be told in a CONNACK (MQTT-3.14.0-1: not in a DISCONNECT).
    if (this.#version === 5 && this.#state !== 'connected' && this.#state !== 'closed') return this.refuse(reasonCode);
    this.closeWith(reasonCode);
  }

  closeWith(reasonCode: number): void {
    this.#close({ publishWill: true }, reasonCode);
  }

  endByClient(publishWill: boolean): void {
    this.#close({ publishWill });
  }

  /** Closes for a server shutdown: MQTT 5 clients hear 0x8B; wills are not published (MQTT 3.1.2.5 lets a server defer them). */
  shutdown(): void {
    this.#close({ publishWill: false }, ReasonCode.ServerShuttingDown);
  }

  #close(cause: CloseCause, disconnectCode?: number): void {
    if (this.#state === 'closed') return;
    const wasConnected = this.#state === 'connected';
    this.#transition('close');
    this.#reader.stop();
    this.#backlog = [];
    this.#authWaiter?.(undefined);
    this.#authWaiter = undefined;
    // MQTT-3.14.0-1: a server DISCONNECT only after a successful CONNACK; MQTT-3.14.2-2: no session expiry in it.
    if (disconnectCode !== undefined && wasConnected && this.#version === 5) {
      const packet: IDisconnectPacket = { cmd: 'disconnect', reasonCode: disconnectCode };
      const bytes = encodePacket(packet, 5, this.#clientMaximumPacketSize);
      if (bytes !== undefined) this.#writeNow(bytes);
    }
    this.#endStream();
    // A Will Message belongs to an accepted connection only.
    if (this.#session !== undefined) this.engine.connectionClosed(this, { ...cause, publishWill: cause.publishWill && wasConnected });
  }

  #endStream(): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    // Keep reading (and discarding) until the peer closes: closing with unread data would reset
    // the connection and could lose the DISCONNECT or CONNACK just written.
    stream.resume();
    stream.end();
    const timer = setTimeout(() => stream.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
  }

  #transition(event: ConnectionEvent): void {
    this.#state = nextConnectionState(this.#state, event);
  }
}
