import { ReasonCode } from '@fleetward/protocol';
import type { Packet } from 'mqtt-packet';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './acknowledgements.js';
import type { ClientChannel } from './client-channel.js';
import { handleDisconnect } from './client-disconnect.js';
import { handlePublish } from './publish-flow.js';
import { handleAuth } from './reauthentication.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe-flow.js';

/**
 * Runs each packet of a connected client through its flow. A flow that has to wait returns a
 * promise, and the connection reads no further packet until it settles.
 */
export function dispatchPacket<C>(channel: ClientChannel<C>, packet: Packet): Promise<unknown> | undefined {
  switch (packet.cmd) {
    case 'publish': {
      const result = handlePublish(channel, packet);
      return typeof result === 'string' ? undefined : result;
    }
    case 'puback':
      return void handlePuback(channel, packet);
    case 'pubrec':
      return void handlePubrec(channel, packet);
    case 'pubrel':
      return void handlePubrel(channel, packet);
    case 'pubcomp':
      return void handlePubcomp(channel, packet);
    case 'subscribe':
      return handleSubscribe(channel, packet);
    case 'unsubscribe':
      return void handleUnsubscribe(channel, packet);
    case 'pingreq':
      // MQTT-3.12.4-1.
      return void channel.send({ cmd: 'pingresp' });
    case 'disconnect':
      return void handleDisconnect(channel, packet);
    case 'auth':
      return handleAuth(channel, packet);
    case 'connect':
    case 'connack':
    case 'suback':
    case 'unsuback':
    case 'pingresp':
      // MQTT-3.1.0-2: a second CONNECT is a protocol error; so is a packet only a server sends.
      return void channel.protocolError(ReasonCode.ProtocolError);
  }
}
