import { randomUUID } from 'node:crypto';
import { ReasonCode } from '@fleetward/protocol';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { OpenedSession, Will } from '../engine/engine-context.js';
import { SessionSupersededError } from '../engine/session-errors.js';
import type { Admission, ConnectRequest } from '../hooks/broker-hooks.js';
import { negotiateKeepAlive, type KeepAlive } from '../session/keep-alive.js';
import { runSteps, type Step, type StepResult } from '../steps.js';
import { exceedsBytes } from '../topic/topic-limits.js';
import { checkTopicName } from '../topic/topic-name.js';
import type { ConnectChannel } from './connect-channel.js';
import { forwardedProperties } from './publish-flow.js';

interface ConnectContext<C> {
  readonly channel: ConnectChannel<C>;
  readonly packet: IConnectPacket;
  clientId: string;
  assignedClientId: string | undefined;
  keepAlive: KeepAlive;
  requestedExpiry: number;
  expiry: number;
  will: Will | undefined;
  authentication: { readonly method: string; readonly state: unknown; readonly data: Buffer | undefined } | undefined;
  responseInformation: string | undefined;
  opened: OpenedSession | undefined;
}

/**
 * A CONNECT, step by step (MQTT 3.1.4): the client identifier, the Will Message, Keep Alive and
 * Session Expiry, enhanced authentication, admission, the session (taken over, cleaned or resumed),
 * CONNACK, then resending what the session still owes the client.
 */
const connectSteps: readonly Step<ConnectContext<unknown>>[] = [
  checkClientId,
  checkWill,
  negotiate,
  authenticate,
  admit,
  openSession,
  acknowledge,
  resume,
];

export function runConnectFlow<C>(channel: ConnectChannel<C>, packet: IConnectPacket): StepResult | Promise<StepResult> {
  const context: ConnectContext<C> = {
    channel,
    packet,
    clientId: packet.clientId,
    assignedClientId: undefined,
    keepAlive: { seconds: 0, serverKeepAlive: undefined },
    requestedExpiry: 0,
    expiry: 0,
    will: undefined,
    authentication: undefined,
    responseInformation: undefined,
    opened: undefined,
  };
  return runSteps(connectSteps, context as ConnectContext<unknown>);
}

function checkClientId(context: ConnectContext<unknown>): StepResult {
  const { channel, packet } = context;
  if (packet.clientId.length === 0) {
    // 3.1.1 MQTT-3.1.3-8: an empty client id needs a clean session, else CONNACK 0x02 (mapped from 0x85).
    if (channel.version === 4 && packet.clean !== true) return refuse(channel, ReasonCode.ClientIdentifierNotValid, 'an empty client identifier needs a clean session');
    // MQTT-3.1.3-6: assign one unused by any session (MQTT-3.2.2-16).
    let assigned: string;
    do assigned = `auto-${randomUUID()}`;
    while (channel.engine.isClientIdTaken(assigned));
    context.assignedClientId = assigned;
    context.clientId = assigned;
    return 'next';
  }
  if (exceedsBytes(packet.clientId, channel.engine.limits.maxClientIdLengthBytes)) {
    channel.limit('maxClientIdLengthBytes');
    // MQTT-3.1.3-8 (3.1.1 MQTT-3.1.3-9): a refused client id gets 0x85 (3.1.1: 0x02) and the connection closes.
    return refuse(channel, ReasonCode.ClientIdentifierNotValid, 'client identifier too long');
  }
  return 'next';
}

function checkWill(context: ConnectContext<unknown>): StepResult {
  const { channel, packet } = context;
  const will = packet.will;
  if (will === undefined) return 'next';
  const limits = channel.engine.limits;
  const problem = checkTopicName(will.topic, limits);
  if (problem === 'malformed') return fail(channel, ReasonCode.MalformedPacket);
  if (problem !== undefined) {
    channel.limit(problem === 'too-long' ? 'maxTopicLengthBytes' : 'maxTopicLevels');
    return refuse(channel, ReasonCode.TopicNameInvalid, 'will topic exceeds the topic limits');
  }
  const properties = will.properties;
  const responseTopic = properties?.responseTopic;
  if (responseTopic !== undefined && (responseTopic.length === 0 || /[+#]/.test(responseTopic))) return fail(channel, ReasonCode.ProtocolError);
  const qos = will.qos ?? 0;
  if (qos > limits.maximumQoS) {
    // MQTT-3.2.2-12: a Will QoS beyond our maximum is refused with 0x9B.
    channel.limit('maximumQoS');
    return refuse(channel, ReasonCode.QoSNotSupported, 'will QoS not supported');
  }
  const payload = typeof will.payload === 'string' ? Buffer.from(will.payload, 'utf8') : Buffer.from(will.payload);
  context.will = {
    message: {
      topic: will.topic,
      payload,
      qos,
      retain: will.retain === true,
      properties: forwardedProperties(properties),
      expiresAt: undefined,
      publisher: context.clientId,
    },
    expirySeconds: properties?.messageExpiryInterval,
    delaySeconds: properties?.willDelayInterval ?? 0,
  };
  return 'next';
}

function negotiate(context: ConnectContext<unknown>): StepResult {
  const { channel, packet } = context;
  const limits = channel.engine.limits;
  context.keepAlive = negotiateKeepAlive(packet.keepalive ?? 0, channel.version, limits);
  if (channel.version === 5) context.requestedExpiry = packet.properties?.sessionExpiryInterval ?? 0;
  // A 3.1.1 persistent session has no expiry of its own: it lasts our maximum.
  else context.requestedExpiry = packet.clean === true ? 0 : limits.maxSessionExpirySeconds;
  context.expiry = Math.min(context.requestedExpiry, limits.maxSessionExpirySeconds);
  return 'next';
}

/** Enhanced authentication (MQTT 4.12): AUTH 0x18 exchanges until the hook succeeds or fails. */
function authenticate(context: ConnectContext<unknown>): StepResult | Promise<StepResult> {
  const { channel, packet } = context;
  const method = packet.properties?.authenticationMethod;
  if (method === undefined) return 'next';
  // MQTT-4.12.0-1: a method the server does not support gets 0x8C and the connection closes.
  if (!channel.engine.hooks.supportsAuthentication) return refuse(channel, ReasonCode.BadAuthenticationMethod, 'enhanced authentication is not supported');
  return exchange(context, method);
}

async function exchange(context: ConnectContext<unknown>, method: string): Promise<StepResult> {
  const { channel, packet } = context;
  let phase: 'connect' | 'continue' = 'connect';
  let data = packet.properties?.authenticationData;
  let state: unknown;
  for (;;) {
    const step = await channel.engine.hooks.authenticate({ method, data, phase, state, connect: connectRequest(context), connection: channel.info });
    if (channel.closed) return 'stop';
    if (step.outcome === 'failure') {
      channel.engine.counters.denied.authentication++;
      // MQTT-4.12.0-4: the server may refuse at any point, and closes.
      return refuse(channel, step.reasonCode ?? ReasonCode.NotAuthorized, step.reasonString);
    }
    state = step.state;
    if (step.outcome === 'success') {
      context.authentication = { method, state, data: step.data };
      return 'next';
    }
    // MQTT-4.12.0-2: AUTH 0x18 from the server; MQTT-4.12.0-3, -5: the client answers AUTH 0x18 with the same method.
    const reply = await channel.challenge(method, step.data);
    if (reply === undefined) return 'stop';
    if (reply.reasonCode !== ReasonCode.ContinueAuthentication || reply.properties?.authenticationMethod !== method) return fail(channel, ReasonCode.ProtocolError);
    phase = 'continue';
    data = reply.properties.authenticationData;
  }
}

function admit(context: ConnectContext<unknown>): StepResult | Promise<StepResult> {
  const request = connectRequest(context);
  const admission = context.channel.engine.hooks.admit(request, context.channel.info);
  if (admission instanceof Promise) return admission.then((settled) => admitted(context, request, settled));
  return admitted(context, request, admission);
}

function admitted(context: ConnectContext<unknown>, request: ConnectRequest, admission: Admission<unknown>): StepResult {
  const { channel, packet } = context;
  if (channel.closed) return 'stop';
  if (!admission.admit) {
    channel.engine.counters.denied.connect++;
    // MQTT-3.1.4-2: failed checks close the connection, after a CONNACK saying why.
    return refuse(channel, admission.reasonCode, admission.reasonString);
  }
  context.responseInformation = admission.responseInformation;
  const properties = packet.properties;
  channel.admitted({
    ref: { clientId: context.clientId, protocolVersion: channel.version, username: packet.username, context: admission.context, connection: channel.info },
    connect: request,
    will: context.will,
    keepAliveSeconds: context.keepAlive.seconds,
    requestedExpirySeconds: context.requestedExpiry,
    clientReceiveMaximum: properties?.receiveMaximum ?? 0xffff,
    clientMaximumPacketSize: properties?.maximumPacketSize ?? Number.MAX_SAFE_INTEGER,
    clientTopicAliasMaximum: properties?.topicAliasMaximum ?? 0,
    requestProblemInformation: properties?.requestProblemInformation !== false,
    authentication: context.authentication === undefined ? undefined : { method: context.authentication.method, state: context.authentication.state },
  });
  return 'next';
}

async function openSession(context: ConnectContext<unknown>): Promise<StepResult> {
  const { channel, packet } = context;
  let opened: OpenedSession;
  try {
    // MQTT-3.1.4-3 (takeover), MQTT-3.1.4-4 and MQTT-3.1.2-4..-6 (Clean Start).
    opened = await channel.engine.openSession(channel, context.clientId, packet.clean === true, context.expiry);
  } catch (error) {
    if (channel.closed) return 'stop';
    // A newer CONNECT on another node took the session first: closed, as a takeover closes (MQTT-3.1.4-3).
    if (error instanceof SessionSupersededError) {
      channel.takeOver();
      return 'stop';
    }
    // The session store or the cluster is away: the client may retry later.
    return refuse(channel, ReasonCode.ServerUnavailable, 'session state is unavailable, try again later');
  }
  if (!channel.adoptSession(opened)) return 'stop';
  context.opened = opened;
  return 'next';
}

function acknowledge(context: ConnectContext<unknown>): StepResult {
  const { channel, packet } = context;
  // MQTT-3.2.2-2, -3 (3.1.1 MQTT-3.2.2-1..-3): Session Present only when a session is resumed.
  const sessionPresent = (context.opened as OpenedSession).present;
  if (channel.version === 4) {
    channel.connack({ cmd: 'connack', returnCode: 0, sessionPresent });
    return 'next';
  }
  const limits = channel.engine.limits;
  const properties: NonNullable<IConnackPacket['properties']> = { maximumPacketSize: limits.maxPacketSizeBytes };
  if (context.expiry !== context.requestedExpiry) properties.sessionExpiryInterval = context.expiry;
  if (limits.receiveMaximum < 0xffff) properties.receiveMaximum = limits.receiveMaximum;
  if (limits.maximumQoS < 2) properties.maximumQoS = limits.maximumQoS;
  if (limits.topicAliasMaximum > 0) properties.topicAliasMaximum = limits.topicAliasMaximum;
  // MQTT-3.1.3-7, MQTT-3.2.2-16: the assigned client id goes back in CONNACK.
  if (context.assignedClientId !== undefined) properties.assignedClientIdentifier = context.assignedClientId;
  if (context.keepAlive.serverKeepAlive !== undefined) properties.serverKeepAlive = context.keepAlive.serverKeepAlive;
  // MQTT-3.1.2-28: Response Information only when it was asked for.
  if (packet.properties?.requestResponseInformation === true && context.responseInformation !== undefined) {
    properties.responseInformation = context.responseInformation;
  }
  // MQTT-4.12.0-5: a successful CONNACK after enhanced authentication carries the same method.
  if (context.authentication !== undefined) {
    properties.authenticationMethod = context.authentication.method;
    if (context.authentication.data !== undefined) properties.authenticationData = context.authentication.data;
  }
  channel.connack({ cmd: 'connack', reasonCode: ReasonCode.Success, sessionPresent, properties });
  return 'next';
}

function resume(context: ConnectContext<unknown>): StepResult {
  context.channel.resume((context.opened as OpenedSession).queued);
  return 'next';
}

function connectRequest(context: ConnectContext<unknown>): ConnectRequest {
  const { channel, packet, will } = context;
  return {
    protocolVersion: channel.version,
    clientId: packet.clientId,
    assignedClientId: context.assignedClientId,
    cleanStart: packet.clean === true,
    keepAliveSeconds: packet.keepalive ?? 0,
    sessionExpirySeconds: context.requestedExpiry,
    username: packet.username,
    password: packet.password,
    will:
      will === undefined
        ? undefined
        : { topic: will.message.topic, payload: will.message.payload, qos: will.message.qos, retain: will.message.retain, delaySeconds: will.delaySeconds },
    userProperties: packet.properties?.userProperties,
    authentication: context.authentication === undefined ? undefined : { method: context.authentication.method, state: context.authentication.state },
  };
}

function refuse(channel: ConnectChannel<unknown>, reasonCode: number, reasonString?: string): StepResult {
  channel.refuse(reasonCode, reasonString);
  return 'stop';
}

function fail(channel: ConnectChannel<unknown>, reasonCode: number): StepResult {
  channel.protocolError(reasonCode);
  return 'stop';
}
