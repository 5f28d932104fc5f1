import { ReasonCode } from '@fleetward/protocol';

/**
 * Topic Aliases a client sets on this connection (MQTT 3.3.2.3.4). They live only as long as the
 * network connection (MQTT-3.3.2-7), so a new table is made for each one. Pure.
 */
export class InboundTopicAliases {
  readonly #maximum: number;
  readonly #topics = new Map<number, string>();

  /** `maximum` is the Topic Alias Maximum the server sent in CONNACK. */
  constructor(maximum: number) {
    this.#maximum = maximum;
  }

  /**
   * The topic a PUBLISH is for, or the reason code to disconnect with: an alias of 0 or above our
   * maximum is 0x94 (MQTT-3.3.2-12 bounds what we accept), an unknown alias with an empty topic 0x82.
   */
  resolve(alias: number, topic: string): string | number {
    if (alias === 0 || alias > this.#maximum) return ReasonCode.TopicAliasInvalid;
    if (topic.length > 0) {
      this.#topics.set(alias, topic);
      return topic;
    }
    return this.#topics.get(alias) ?? ReasonCode.ProtocolError;
  }
}
