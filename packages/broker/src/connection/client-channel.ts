import type { Packet } from 'mqtt-packet';
import type { LimitName } from '../broker-options.js';
import type { EngineContext } from '../engine/engine-context.js';
import type { ClientRef, ConnectionInfo, ConnectRequest } from '../hooks/broker-hooks.js';
import type { Delivery } from '../message.js';
import type { InboundTopicAliases } from '../session/inbound-topic-aliases.js';
import type { Session } from '../session/session.js';
import type { Authentication } from './reauthentication.js';

/** What the packet flows of a connected client use of its connection. */
export interface ClientChannel<C> {
  readonly engine: EngineContext<C>;
  readonly info: ConnectionInfo;
  readonly version: 4 | 5;
  readonly ref: ClientRef<C>;
  readonly connectRequest: ConnectRequest;
  readonly session: Session;
  readonly inboundAliases: InboundTopicAliases;
  /** The Session Expiry Interval the CONNECT asked for (MQTT 3.14.2.2.2 compares DISCONNECT with it). */
  readonly requestedExpirySeconds: number;
  readonly authentication: Authentication | undefined;
  readonly closed: boolean;
  /** Encodes and writes a packet; false when it was not sent (closed, or too large for the client). */
  send(packet: Packet): boolean;
  deliver(delivery: Delivery): void;
  /** Sends queued messages while the client's Receive Maximum leaves room. */
  pump(): void;
  /** A Malformed Packet or Protocol Error: DISCONNECT with the code (MQTT 5) and close (MQTT-4.13.1-1). */
  protocolError(reasonCode: number): void;
  /** Closes for a refusal 3.1.1 cannot express (MQTT-3.3.5-2), or with an MQTT 5 DISCONNECT reason. */
  closeWith(reasonCode: number): void;
  /** The client sent DISCONNECT: close, publishing the Will Message or not. */
  endByClient(publishWill: boolean): void;
  /** A Reason String, unless the client asked for no problem information (MQTT-3.1.2-29). */
  reasonString(text: string): string | undefined;
  limit(name: LimitName): void;
}
