import type { Redis } from 'ioredis';
import type { ShareEntry, ShareRegistry } from './cluster-transport.js';
import type { RedisClusterKeys } from './redis-cluster-keys.js';
import { shareScript, sharesSnapshotScript } from './redis-cluster-scripts.js';

/** Which nodes have members of which shared subscriptions: a hash per node, each change also on the bus. */
export class RedisShares implements ShareRegistry {
  readonly #redis: Redis;
  readonly #keys: RedisClusterKeys;
  readonly #node: string;

  constructor(redis: Redis, keys: RedisClusterKeys, node: string) {
    this.#redis = redis;
    this.#keys = keys;
    this.#node = node;
    shareScript.install(redis);
    sharesSnapshotScript.install(redis);
  }

  async set(pattern: string, group: string, online: boolean | undefined): Promise<void> {
    const state = online === undefined ? '' : online ? '1' : '0';
    await shareScript.run(this.#redis, [this.#keys.shares(this.#node)], [this.#node, this.#keys.bus, group, pattern, state]);
  }

  async snapshot(): Promise<ShareEntry[]> {
    const reply = (await sharesSnapshotScript.run(this.#redis, [this.#keys.nodes], [this.#keys.shares('')])) as (string | string[])[];
    const entries: ShareEntry[] = [];
    for (let index = 0; index + 1 < reply.length; index += 2) {
      const node = reply[index] as string;
      const fields = reply[index + 1] as string[];
      for (let field = 0; field + 1 < fields.length; field += 2) {
        const key = fields[field] as string;
        const separator = key.indexOf('\u0000');
        entries.push({ node, group: key.slice(0, separator), pattern: key.slice(separator + 1), online: fields[field + 1] === '1' });
      }
    }
    return entries;
  }
}
