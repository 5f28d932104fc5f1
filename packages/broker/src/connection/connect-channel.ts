import type { IAuthPacket, IConnackPacket } from 'mqtt-packet';
import type { LimitName } from '../broker-options.js';
import type { EngineContext, OpenedSession, SessionHolder, Will } from '../engine/engine-context.js';
import type { ClientRef, ConnectionInfo, ConnectRequest } from '../hooks/broker-hooks.js';
import type { Delivery } from '../message.js';

/** What a connection takes on once its client is admitted, before its session is opened. */
export interface Admitted<C> {
  readonly ref: ClientRef<C>;
  readonly connect: ConnectRequest;
  readonly will: Will | undefined;
  readonly keepAliveSeconds: number;
  /** The Session Expiry Interval the CONNECT asked for (MQTT 3.14.2.2.2 compares DISCONNECT with it). */
  readonly requestedExpirySeconds: number;
  readonly clientReceiveMaximum: number;
  readonly clientMaximumPacketSize: number;
  readonly clientTopicAliasMaximum: number;
  readonly requestProblemInformation: boolean;
  readonly authentication: { readonly method: string; readonly state: unknown } | undefined;
}

/** What the CONNECT steps use of their connection. */
export interface ConnectChannel<C> extends SessionHolder<C> {
  readonly engine: EngineContext<C>;
  readonly info: ConnectionInfo;
  readonly version: 4 | 5;
  readonly closed: boolean;
  limit(name: LimitName): void;
  /** Refuses the CONNECT: CONNACK with the reason (3.1.1: the nearest return code), then close (MQTT-3.2.2-7). */
  refuse(reasonCode: number, reasonString?: string): void;
  /** A CONNECT breaking the format: MQTT 5 gets a CONNACK with the code, then close (MQTT-3.1.4-1). */
  protocolError(reasonCode: number): void;
  /** Sends AUTH 0x18 and waits for the client's next AUTH; undefined when the connection closed meanwhile. */
  challenge(method: string, data: Buffer | undefined): Promise<IAuthPacket | undefined>;
  admitted(admitted: Admitted<C>): void;
  /** Holds the opened session; false when the connection closed meanwhile (and the session was given back). */
  adoptSession(opened: OpenedSession): boolean;
  /** Sends the successful CONNACK: the client is connected from here on. */
  connack(packet: IConnackPacket): void;
  /** Resends what was in flight (MQTT-4.4.0-1), then what was queued, and goes online. */
  resume(queued: readonly Delivery[]): void;
}
