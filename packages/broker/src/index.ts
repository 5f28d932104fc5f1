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
  PayloadRewrite,
  PublishRefusalCode,
  PublishVerdict,
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
export { connectRedisPersistence, type RedisPersistenceOptions } from './persistence/redis-persistence.js';
export { RedisUnavailableError, type RedisConnectionOptions } from './redis/redis-connection.js';
export { connectRedisCluster, type RedisClusterOptions } from './cluster/redis-cluster-transport.js';
export { connectRedisNode, type RedisNode, type RedisNodeOptions } from './redis/connect-redis-node.js';
export type {
  Claim,
  ClaimResult,
  ClusterListener,
  ClusterTransport,
  OwnershipRegistry,
  Release,
  RemotePublish,
  SharedChoice,
  ShareEntry,
  ShareRegistry,
  ShareUpdate,
} from './cluster/cluster-transport.js';
