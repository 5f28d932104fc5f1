import { ReasonCode } from '@fleetward/protocol';
import type { IAuthPacket } from 'mqtt-packet';
import type { ClientChannel } from './client-channel.js';

/** The enhanced authentication of a connection: its method, the hook's state, and a re-authentication under way. */
export interface Authentication {
  readonly method: string;
  state: unknown;
  reauthenticating: boolean;
}

/** An AUTH from a connected client: re-authentication (MQTT 4.12.1), each step handed to the hook. */
export async function handleAuth<C>(channel: ClientChannel<C>, packet: IAuthPacket): Promise<void> {
  const authentication = channel.authentication;
  const phase = packet.reasonCode === ReasonCode.ReAuthenticate ? 're-authenticate' : 'continue';
  // MQTT 3.15: AUTH only after a CONNECT naming a method, always with that method (MQTT-4.12.1-1).
  if (authentication === undefined || packet.properties?.authenticationMethod !== authentication.method) return channel.protocolError(ReasonCode.ProtocolError);
  if (phase === 'continue' && (packet.reasonCode !== ReasonCode.ContinueAuthentication || !authentication.reauthenticating)) {
    return channel.protocolError(ReasonCode.ProtocolError);
  }
  const step = await channel.engine.hooks.authenticate({
    method: authentication.method,
    data: packet.properties.authenticationData,
    phase,
    state: authentication.state,
    connect: channel.connectRequest,
    connection: channel.info,
  });
  if (channel.closed) return;
  if (step.outcome === 'failure') {
    channel.engine.counters.denied.authentication++;
    authentication.reauthenticating = false;
    // MQTT-4.12.1-2: a failed re-authentication closes the connection.
    return channel.closeWith(step.reasonCode ?? ReasonCode.NotAuthorized);
  }
  authentication.state = step.state;
  authentication.reauthenticating = step.outcome === 'continue';
  const reasonCode = step.outcome === 'continue' ? ReasonCode.ContinueAuthentication : ReasonCode.Success;
  channel.send({ cmd: 'auth', reasonCode, properties: { authenticationMethod: authentication.method, authenticationData: step.data } });
}
