/** Where the Redis persistence keeps things, under one prefix (see docs/broker.md, "Key layout"). */
export class RedisPersistenceKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** String: the session record of a client id. */
  session(clientId: string): string {
    return `${this.prefix}session:${clientId}`;
  }

  /** List: the delivery records queued for a client id, oldest first. */
  queue(clientId: string): string {
    return `${this.prefix}queue:${clientId}`;
  }

  /** Hash: topic to retained message record. */
  get retained(): string {
    return `${this.prefix}retained`;
  }

  /** Sorted set (all scores 0): the retained topics in byte order, for prefix range scans. */
  get retainedTopics(): string {
    return `${this.prefix}retained-topics`;
  }
}
