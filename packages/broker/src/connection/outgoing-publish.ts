import type { IPublishPacket } from 'mqtt-packet';
import { remainingExpirySeconds, type Delivery } from '../message.js';

type PublishProperties = NonNullable<IPublishPacket['properties']>;

/**
 * The PUBLISH that carries a delivery to one client: its QoS and RETAIN flag as decided for it,
 * DUP only on a resend (MQTT-3.3.1-3), and for MQTT 5 the forwarded properties plus what is
 * particular to this client: the remaining expiry (MQTT-3.3.2-6), its Subscription Identifiers
 * (MQTT-3.3.4-3, -4) and the Topic Alias (MQTT-3.3.2-11).
 */
export function buildPublish(
  delivery: Delivery,
  version: 4 | 5,
  packetId: number | undefined,
  dup: boolean,
  alias: { readonly alias: number; readonly known: boolean } | undefined,
  now: number,
): IPublishPacket {
  const { message } = delivery;
  let properties: PublishProperties | undefined;
  if (version === 5) {
    const expiry = message.expiresAt === undefined ? undefined : remainingExpirySeconds(message, now);
    const ids = delivery.subscriptionIds;
    if (message.properties !== undefined || expiry !== undefined || ids !== undefined || alias !== undefined) {
      properties = { ...(message.properties as PublishProperties | undefined) };
      if (expiry !== undefined) properties.messageExpiryInterval = expiry;
      if (ids !== undefined) properties.subscriptionIdentifier = ids.length === 1 ? (ids[0]) : [...ids];
      if (alias !== undefined) properties.topicAlias = alias.alias;
    }
  }
  return {
    cmd: 'publish',
    topic: alias?.known === true ? '' : message.topic,
    payload: message.payload,
    qos: delivery.qos,
    retain: delivery.retain,
    dup: dup && delivery.qos > 0,
    messageId: packetId,
    properties,
  };
}
