import type { Broker } from './broker.js';
import type { BrokerOptions } from './broker-options.js';
import { MqttBroker } from './engine/mqtt-broker.js';
import type { BrokerHooks } from './hooks/broker-hooks.js';

/**
 * Builds an MQTT 3.1.1 and 5.0 broker engine. It binds no port: hand it streams with `handle()`.
 * Every security hook is mandatory and nothing is allowed without them; a missing one throws here.
 */
export function createBroker<C>(options: BrokerOptions, hooks: BrokerHooks<C>): Broker<C> {
  return new MqttBroker(options, hooks);
}
