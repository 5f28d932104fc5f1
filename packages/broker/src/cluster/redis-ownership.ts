import type { Redis } from 'ioredis';
import { encodeControl } from './bus-frames.js';
import type { ClaimResult, OwnershipRegistry, Release } from './cluster-transport.js';
import type { RedisClusterKeys } from './redis-cluster-keys.js';
import { adoptFromScript, adoptScript, claimScript, disownScript, leaseScript } from './redis-cluster-scripts.js';

const BATCH = 500;

/** Session ownership in Redis: one owner key per client id, and per node the set of client ids it owns. */
export class RedisOwnership implements OwnershipRegistry {
  readonly #redis: Redis;
  readonly #keys: RedisClusterKeys;
  readonly #node: string;
  readonly #nodeTimeoutMs: number;
  /** Sends the messages this node published so far, so that what follows on the bus comes after them. */
  readonly #flush: () => void;

  constructor(redis: Redis, keys: RedisClusterKeys, node: string, nodeTimeoutMs: number, flush: () => void) {
    this.#redis = redis;
    this.#keys = keys;
    this.#node = node;
    this.#nodeTimeoutMs = nodeTimeoutMs;
    this.#flush = flush;
    for (const script of [claimScript, disownScript, leaseScript, adoptScript, adoptFromScript]) script.install(redis);
  }

  async claim(clientId: string, cleanStart: boolean, token: string): Promise<ClaimResult> {
    this.#flush();
    const keys = this.#keys;
    const reply = await claimScript.run(
      this.#redis,
      [keys.owner(clientId), keys.nodes, keys.owned(this.#node)],
      [this.#node, clientId, cleanStart ? '1' : '0', this.#nodeTimeoutMs, keys.bus, keys.owned(''), token],
    );
    const [previous, handover] = reply as [string | null, number];
    return { previous: previous ?? undefined, handover: handover === 1 };
  }

  async release(release: Release): Promise<void> {
    this.#flush();
    await this.#redis.publish(this.#keys.bus, encodeControl({ kind: 'release', ...release }));
  }

  async disown(clientId: string): Promise<void> {
    await disownScript.run(this.#redis, [this.#keys.owner(clientId), this.#keys.owned(this.#node)], [this.#node, clientId]);
  }

  async lease(clientId: string, ttlMs: number): Promise<void> {
    await leaseScript.run(this.#redis, [this.#keys.owner(clientId)], [this.#node, Math.max(1, Math.ceil(ttlMs))]);
  }

  async adopt(clientIds: readonly string[]): Promise<string[]> {
    const keys = this.#keys;
    const taken: string[] = [];
    for (let start = 0; start < clientIds.length; start += BATCH) {
      const batch = clientIds.slice(start, start + BATCH);
      const reply = await adoptScript.run(this.#redis, [keys.nodes, keys.owned(this.#node)], [this.#node, this.#nodeTimeoutMs, keys.owner(''), keys.owned(''), ...batch]);
      taken.push(...(reply as string[]));
    }
    return taken;
  }

  async adoptFrom(node: string): Promise<string[]> {
    const keys = this.#keys;
    const taken: string[] = [];
    for (;;) {
      const reply = await adoptFromScript.run(this.#redis, [keys.owned(node), keys.owned(this.#node)], [this.#node, node, keys.owner(''), BATCH]);
      const [batch, left] = reply as [string[], number];
      taken.push(...batch);
      if (left === 0) return taken;
    }
  }

  async owners(clientIds: readonly string[]): Promise<(string | undefined)[]> {
    const owners: (string | undefined)[] = [];
    for (let start = 0; start < clientIds.length; start += BATCH) {
      const batch = clientIds.slice(start, start + BATCH).map((clientId) => this.#keys.owner(clientId));
      if (batch.length > 0) owners.push(...(await this.#redis.mget(batch)).map((owner) => owner ?? undefined));
    }
    return owners;
  }
}
