import type { PacketCmd } from 'mqtt-packet';

export type ConnectionState = 'awaiting-connect' | 'connecting' | 'authenticating' | 'connected' | 'closed';
export type ConnectionEvent = 'connect' | 'challenge' | 'response' | 'accept' | 'close';

/**
 * The one transition table of a connection. `connecting` runs the CONNECT steps (admission,
 * session); `authenticating` waits for the client's AUTH during enhanced authentication (MQTT 4.12).
 */
export const connectionTransitions: Readonly<Record<ConnectionState, Readonly<Partial<Record<ConnectionEvent, ConnectionState>>>>> = {
  'awaiting-connect': { connect: 'connecting', close: 'closed' },
  connecting: { challenge: 'authenticating', accept: 'connected', close: 'closed' },
  authenticating: { response: 'connecting', close: 'closed' },
  connected: { close: 'closed' },
  closed: {},
};

export function nextConnectionState(state: ConnectionState, event: ConnectionEvent): ConnectionState {
  const next = connectionTransitions[state][event];
  if (next === undefined) throw new Error(`connection cannot ${event} while ${state}`);
  return next;
}

/**
 * Packets a client may send once its CONNECT is read (before that, only a CONNECT: MQTT-3.1.0-1).
 * Anything else closes the connection: a second CONNECT (MQTT-3.1.0-2), packets other than AUTH or
 * DISCONNECT during enhanced authentication (MQTT-3.1.2-30), and packets only a server sends.
 */
export const acceptedPackets: Readonly<Record<'authenticating' | 'connected', ReadonlySet<PacketCmd>>> = {
  authenticating: new Set(['auth', 'disconnect']),
  connected: new Set(['publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'unsubscribe', 'pingreq', 'disconnect', 'auth']),
};
