import { isUtf8 } from 'node:buffer';
import { ReasonCode } from '@fleetward/protocol';
import type { IPublishPacket } from 'mqtt-packet';
import type { PublishDecided, Refused } from '../hooks/guarded-hooks.js';
import { withPayload, type Message, type MessageProperties } from '../message.js';
import { runSteps, type Step, type StepResult } from '../steps.js';
import { checkTopicName } from '../topic/topic-name.js';
import type { ClientChannel } from './client-channel.js';

interface PublishContext<C> {
  readonly channel: ClientChannel<C>;
  readonly packet: IPublishPacket;
  topic: string;
  message: Message | undefined;
}

/**
 * An incoming PUBLISH, step by step: the header, the topic (through its alias), the properties,
 * QoS 2 duplicates, flow control, the publish policy, the reach of the cluster, the retained store,
 * routing, and the acknowledgement its QoS calls for (MQTT-3.3.4-1).
 */
const publishSteps: readonly Step<PublishContext<unknown>>[] = [
  checkHeader,
  resolveTopic,
  checkTopic,
  checkProperties,
  skipDuplicate,
  checkReceiveMaximum,
  authorize,
  requireFanOut,
  retainIfAsked,
  route,
  acknowledge,
];

export function handlePublish<C>(channel: ClientChannel<C>, packet: IPublishPacket): StepResult | Promise<StepResult> {
  const context: PublishContext<C> = { channel, packet, topic: packet.topic, message: undefined };
  return runSteps(publishSteps, context as PublishContext<unknown>);
}

function checkHeader({ channel, packet }: PublishContext<unknown>): StepResult {
  // MQTT-3.3.1-2: a QoS 0 PUBLISH has DUP 0. MQTT-2.2.1-3 (3.1.1 MQTT-2.3.1-1): packet ids are non-zero.
  if (packet.qos === 0 && packet.dup) return fail(channel, ReasonCode.MalformedPacket);
  if (packet.qos > 0 && packet.messageId === 0) return fail(channel, ReasonCode.ProtocolError);
  if (packet.qos > channel.engine.limits.maximumQoS) {
    // MQTT 3.3.1.2: a QoS above the Maximum QoS in CONNACK is answered with DISCONNECT 0x9B.
    channel.limit('maximumQoS');
    channel.closeWith(ReasonCode.QoSNotSupported);
    return 'stop';
  }
  return 'next';
}

function resolveTopic(context: PublishContext<unknown>): StepResult {
  const { channel, packet } = context;
  const alias = packet.properties?.topicAlias;
  if (alias !== undefined) {
    const resolved = channel.inboundAliases.resolve(alias, packet.topic);
    if (typeof resolved === 'number') {
      if (resolved === ReasonCode.TopicAliasInvalid) channel.limit('topicAliasMaximum');
      return fail(channel, resolved);
    }
    context.topic = resolved;
  } else if (packet.topic.length === 0 && channel.version === 5) {
    // MQTT 3.3.2.1: an empty Topic Name without a Topic Alias is a Protocol Error.
    return fail(channel, ReasonCode.ProtocolError);
  }
  return 'next';
}

function checkTopic(context: PublishContext<unknown>): StepResult | Promise<StepResult> {
  const { channel } = context;
  const problem = checkTopicName(context.topic, channel.engine.limits);
  if (problem === undefined) return 'next';
  // MQTT-3.3.2-2, MQTT-4.7.3-1: no wildcard, not empty.
  if (problem === 'malformed') return fail(channel, ReasonCode.ProtocolError);
  channel.limit(problem === 'too-long' ? 'maxTopicLengthBytes' : 'maxTopicLevels');
  return refuse(context, { reasonCode: ReasonCode.TopicNameInvalid, reasonString: `topic exceeds the ${problem === 'too-long' ? 'length' : 'level'} limit` });
}

function checkProperties(context: PublishContext<unknown>): StepResult | Promise<StepResult> {
  const { channel, packet } = context;
  const properties = packet.properties;
  if (properties !== undefined) {
    // MQTT-3.3.4-6: a client never sends a Subscription Identifier; MQTT-3.3.2-14: no wildcard in a Response Topic.
    if (properties.subscriptionIdentifier !== undefined) return fail(channel, ReasonCode.ProtocolError);
    const responseTopic = properties.responseTopic;
    if (responseTopic !== undefined && (responseTopic.length === 0 || /[+#]/.test(responseTopic))) return fail(channel, ReasonCode.ProtocolError);
    // MQTT 3.3.2.3.2: the server may check a payload said to be UTF-8, and answer 0x99 if it is not.
    if (properties.payloadFormatIndicator === true && !isUtf8(payloadOf(packet))) {
      return refuse(context, { reasonCode: ReasonCode.PayloadFormatInvalid, reasonString: 'payload is not valid UTF-8' });
    }
  }
  context.message = toMessage(context);
  return 'next';
}

function skipDuplicate({ channel, packet }: PublishContext<unknown>): StepResult {
  // MQTT-4.3.3-10: until PUBREL, a PUBLISH with the same id is acknowledged again, never delivered twice.
  if (packet.qos !== 2 || !channel.session.incomingQos2.has(packet.messageId as number)) return 'next';
  channel.send({ cmd: 'pubrec', messageId: packet.messageId as number, reasonCode: ReasonCode.Success });
  return 'stop';
}

function checkReceiveMaximum({ channel, packet }: PublishContext<unknown>): StepResult {
  // MQTT-3.3.4-7: QoS 2 messages awaiting PUBREL count against our Receive Maximum; one more is 0x93.
  // QoS 1 messages are acknowledged before the next packet is read, so they never accumulate.
  if (packet.qos !== 2 || channel.version !== 5 || channel.session.incomingQos2.size < channel.engine.limits.receiveMaximum) return 'next';
  channel.limit('receiveMaximum');
  channel.closeWith(ReasonCode.ReceiveMaximumExceeded);
  return 'stop';
}

function authorize(context: PublishContext<unknown>): StepResult | Promise<StepResult> {
  const { channel } = context;
  const decided = channel.engine.hooks.authorizePublish(channel.ref, context.message as Message);
  if (decided === true) return 'next';
  if (!(decided instanceof Promise)) return decide(context, decided);
  return decided.then((settled) => decide(context, settled));
}

function decide(context: PublishContext<unknown>, decided: PublishDecided): StepResult {
  if (decided === true) return 'next';
  if ('payload' in decided) {
    // Allowed with the hook's payload: it is the one retained and fanned out from here on.
    context.message = withPayload(context.message as Message, decided.payload);
    return 'next';
  }
  context.channel.engine.counters.denied.publish++;
  return refuse(context, decided);
}

/**
 * A node cut off from the cluster's bus cannot pass messages to the other nodes: a QoS 1 or 2
 * publish is refused (MQTT 5: 0x80; 3.1.1: the connection closes, MQTT-3.3.5-2) rather than
 * acknowledged and then lost for their subscribers; the client publishes it again later. QoS 0
 * promises nothing: it still reaches this node's subscribers.
 */
function requireFanOut(context: PublishContext<unknown>): StepResult {
  if (context.packet.qos === 0 || context.channel.engine.canFanOut()) return 'next';
  context.channel.engine.counters.clusterErrors++;
  return refuse(context, { reasonCode: ReasonCode.UnspecifiedError, reasonString: 'the cluster is unreachable: publish again later' });
}

function retainIfAsked(context: PublishContext<unknown>): StepResult | Promise<StepResult> {
  return context.packet.retain ? storeRetained(context) : 'next';
}

async function storeRetained(context: PublishContext<unknown>): Promise<StepResult> {
  const { channel } = context;
  try {
    // MQTT-3.3.1-5..-7 (3.1.1 MQTT-3.3.1-5, -10, -11): replace, or delete with an empty payload.
    if ((await channel.engine.retain(context.message as Message)) !== 'full') return 'next';
  } catch {
    channel.engine.counters.persistenceErrors++;
    return refuse(context, { reasonCode: ReasonCode.UnspecifiedError });
  }
  channel.limit('maxRetainedMessages');
  return refuse(context, { reasonCode: ReasonCode.QuotaExceeded, reasonString: 'retained message limit reached' });
}

function route({ channel, message }: PublishContext<unknown>): StepResult {
  if (channel.closed) return 'stop';
  channel.engine.counters.messagesReceived++;
  channel.engine.route(message as Message);
  return 'next';
}

function acknowledge({ channel, packet }: PublishContext<unknown>): StepResult {
  // MQTT-4.3.2-4 (PUBACK), MQTT-4.3.3-8 (PUBREC, keeping the id until PUBREL: MQTT-4.3.3-10).
  if (packet.qos === 1) channel.send({ cmd: 'puback', messageId: packet.messageId as number, reasonCode: ReasonCode.Success });
  else if (packet.qos === 2) {
    channel.session.incomingQos2.add(packet.messageId as number);
    channel.send({ cmd: 'pubrec', messageId: packet.messageId as number, reasonCode: ReasonCode.Success });
  }
  return 'next';
}

/**
 * A publish the server will not accept. MQTT 5 says why in PUBACK or PUBREC (a QoS 0 one is
 * dropped); 3.1.1 cannot, so the network connection is closed (MQTT-3.3.5-2).
 */
function refuse({ channel, packet }: PublishContext<unknown>, refusal: Refused<number>): StepResult {
  if (channel.version === 4) {
    channel.closeWith(refusal.reasonCode);
    return 'stop';
  }
  const properties = refusal.reasonString === undefined ? undefined : { reasonString: channel.reasonString(refusal.reasonString) };
  if (packet.qos === 1) channel.send({ cmd: 'puback', messageId: packet.messageId as number, reasonCode: refusal.reasonCode, properties });
  // MQTT-4.3.3-9: after a PUBREC of 0x80 or more, the same id starts a new message.
  if (packet.qos === 2) channel.send({ cmd: 'pubrec', messageId: packet.messageId as number, reasonCode: refusal.reasonCode, properties });
  return 'stop';
}

function fail(channel: ClientChannel<unknown>, reasonCode: number): StepResult {
  channel.protocolError(reasonCode);
  return 'stop';
}

function payloadOf(packet: IPublishPacket): Buffer {
  return typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
}

function toMessage({ channel, packet, topic }: PublishContext<unknown>): Message {
  const raw = payloadOf(packet);
  // A message that may outlive this tick gets its own copy, not a view pinning the socket's chunk.
  const payload = packet.qos > 0 || packet.retain ? Buffer.from(raw) : raw;
  const interval = packet.properties?.messageExpiryInterval;
  return {
    topic,
    payload,
    qos: packet.qos,
    retain: packet.retain,
    properties: forwardedProperties(packet.properties),
    expiresAt: interval === undefined ? undefined : channel.engine.now() + interval * 1000,
    publisher: channel.ref.clientId,
  };
}

/** The properties forwarded unaltered (MQTT-3.3.2-4, -15, -16, -17, -20); the alias stays on this hop. */
export function forwardedProperties(properties: IPublishPacket['properties']): MessageProperties | undefined {
  if (properties === undefined) return undefined;
  const { payloadFormatIndicator, contentType, responseTopic, correlationData, userProperties } = properties;
  const forwarded: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {};
  if (payloadFormatIndicator !== undefined) forwarded.payloadFormatIndicator = payloadFormatIndicator;
  if (contentType !== undefined) forwarded.contentType = contentType;
  if (responseTopic !== undefined) forwarded.responseTopic = responseTopic;
  if (correlationData !== undefined) forwarded.correlationData = Buffer.from(correlationData);
  if (userProperties !== undefined) forwarded.userProperties = userProperties;
  return Object.keys(forwarded).length === 0 ? undefined : forwarded;
}
