import { ReasonCode } from '@fleetward/protocol';
import type { IDisconnectPacket } from 'mqtt-packet';
import type { ClientChannel } from './client-channel.js';

/** A DISCONNECT from the client: it may change the Session Expiry Interval, and says whether the Will Message goes. */
export function handleDisconnect<C>(channel: ClientChannel<C>, packet: IDisconnectPacket): void {
  const reasonCode = packet.reasonCode ?? ReasonCode.NormalDisconnection;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (channel.version === 5 && expiry !== undefined) {
    // MQTT 3.14.2.2.2: a non-zero Session Expiry Interval at DISCONNECT when CONNECT asked for 0 is a Protocol Error.
    if (channel.requestedExpirySeconds === 0 && expiry !== 0) return channel.protocolError(ReasonCode.ProtocolError);
    channel.session.expiryIntervalSeconds = Math.min(expiry, channel.engine.limits.maxSessionExpirySeconds);
  }
  // MQTT-3.14.4-3 (3.1.1 MQTT-3.1.2-10): DISCONNECT 0x00 discards the Will Message; 0x04 asks for it.
  channel.endByClient(channel.version === 5 && reasonCode !== ReasonCode.NormalDisconnection);
}
