/** Where the Redis cluster transport keeps things, under one prefix (see docs/broker.md, "Key layout"). */
export class RedisClusterKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Pub/sub channel: the bus every node publishes to and listens on. */
  get bus(): string {
    return `${this.prefix}bus`;
  }

  /** Sorted set: live node ids, scored by their last heartbeat (Redis time, ms). */
  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  /** String: the node that owns a client id's session. */
  owner(clientId: string): string {
    return `${this.prefix}owner:${clientId}`;
  }

  /** Set: the client ids a node owns, for adoption when it leaves or dies. */
  owned(node: string): string {
    return `${this.prefix}owned:${node}`;
  }

  /** Hash: a node's shared subscriptions (`group NUL pattern`) to "1" (a member connected) or "0". */
  shares(node: string): string {
    return `${this.prefix}shares:${node}`;
  }
}
