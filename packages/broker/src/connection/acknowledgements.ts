import { ReasonCode } from '@fleetward/protocol';
import type { IPubackPacket, IPubcompPacket, IPubrecPacket, IPubrelPacket } from 'mqtt-packet';
import type { ClientChannel } from './client-channel.js';

/** PUBACK for a QoS 1 message we sent: its flight is done (MQTT-4.3.2-3), the window moves on. */
export function handlePuback<C>(channel: ClientChannel<C>, packet: IPubackPacket): void {
  if (channel.session.outgoing.acknowledge(packet.messageId as number, 'puback') === 'done') channel.pump();
}

/**
 * PUBREC for a QoS 2 message we sent: answer PUBREL with the same id (MQTT-4.3.3-4), or, for a
 * reason code of 0x80 or more, treat it as acknowledged and never resend it (MQTT-4.4.0-2).
 */
export function handlePubrec<C>(channel: ClientChannel<C>, packet: IPubrecPacket): void {
  const packetId = packet.messageId as number;
  const outgoing = channel.session.outgoing;
  const refused = (packet.reasonCode ?? 0) >= 0x80;
  if (outgoing.stateOf(packetId) === 'awaiting-pubcomp') {
    channel.send({ cmd: 'pubrel', messageId: packetId, reasonCode: ReasonCode.Success });
    return;
  }
  const next = outgoing.acknowledge(packetId, refused ? 'pubrec-refused' : 'pubrec');
  if (next === 'awaiting-pubcomp') channel.send({ cmd: 'pubrel', messageId: packetId, reasonCode: ReasonCode.Success });
  else if (next === 'done') channel.pump();
  else if (!refused) channel.send({ cmd: 'pubrel', messageId: packetId, reasonCode: ReasonCode.PacketIdentifierNotFound });
}

/** PUBREL for a QoS 2 message we received: release its id and answer PUBCOMP (MQTT-4.3.3-11, -12). */
export function handlePubrel<C>(channel: ClientChannel<C>, packet: IPubrelPacket): void {
  const packetId = packet.messageId as number;
  const known = channel.session.incomingQos2.delete(packetId);
  channel.send({ cmd: 'pubcomp', messageId: packetId, reasonCode: known ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound });
}

/** PUBCOMP for a QoS 2 message we sent: its flight is done (MQTT-4.3.3-5). */
export function handlePubcomp<C>(channel: ClientChannel<C>, packet: IPubcompPacket): void {
  if (channel.session.outgoing.acknowledge(packet.messageId as number, 'pubcomp') === 'done') channel.pump();
}
