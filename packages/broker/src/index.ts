export type { Broker, BrokerStats, Decision, DisconnectReasonCode } from './broker.js';
export { defaultLimits, limitNames, type BrokerLimits, type BrokerOptions, type LimitName } from './broker-options.js';
export { createBroker } from './create-broker.js';
export type {
  Admission,
  AuthenticationHook,
  AuthenticationRequest,
  AuthenticationStep,
  Awaitable,
  BrokerHooks,
  ClientRef,
  ConnectionInfo,
  ConnectRefusalCode,
  ConnectRequest,
  HookName,
  LimitEvent,
  ObserverHooks,
  PublishRefusalCode,
  SecurityHooks,
  SubscribeRefusalCode,
  Verdict,
  WillRequest,
} from './hooks/broker-hooks.js';
export type { Delivery, Message, MessageProperties, QoS, Subscription, UserProperties } from './message.js';
export { createMemoryPersistence } from './persistence/memory-persistence.js';
export type { Persistence, QueueStore, RetainedStore, RetainOutcome, SessionStore, StoredSession } from './persistence/persistence.js';
export type { Flight, FlightState } from './session/outgoing-window.js';
export { topicMatches } from './topic/topic-matches.js';
