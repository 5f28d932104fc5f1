/**
 * Topic Aliases the server assigns to messages it sends on one connection, up to the client's
 * Topic Alias Maximum (MQTT-3.1.2-26, MQTT-3.3.2-11); none when the client gave none or 0
 * (MQTT-3.1.2-27). The first topics sent keep their alias for the life of the connection. Pure.
 */
export class OutboundTopicAliases {
  readonly #maximum: number;
  readonly #aliases = new Map<string, number>();

  constructor(maximum: number) {
    this.#maximum = maximum;
  }

  /**
   * How to name a topic in the next PUBLISH: by an alias already set (`known`), by a new alias to
   * be set with the full topic, or by the topic alone. A new alias counts only once `commit`ted,
   * so a packet that is never sent (too large, MQTT-3.1.2-25) leaves no alias the client lacks.
   */
  lookup(topic: string): { readonly alias: number; readonly known: boolean } | undefined {
    const alias = this.#aliases.get(topic);
    if (alias !== undefined) return { alias, known: true };
    if (this.#aliases.size >= this.#maximum) return undefined;
    return { alias: this.#aliases.size + 1, known: false };
  }

  commit(topic: string, alias: number): void {
    this.#aliases.set(topic, alias);
  }
}
