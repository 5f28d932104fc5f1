import type { Redis } from 'ioredis';

type ScriptArgument = string | Buffer | number;
type ScriptCommand = (...args: ScriptArgument[]) => Promise<unknown>;

/**
 * A Lua script run atomically by Redis, for the writes that must not be seen half done. ioredis
 * sends its text the first time on each connection and its SHA after, so scripts keep the order
 * in which they were called relative to other commands on the same connection.
 */
export class RedisScript {
  readonly #name: string;
  readonly #keys: number;
  readonly #lua: string;

  constructor(name: string, keys: number, lua: string) {
    this.#name = name;
    this.#keys = keys;
    this.#lua = lua;
  }

  install(redis: Redis): void {
    redis.defineCommand(this.#name, { numberOfKeys: this.#keys, lua: this.#lua });
  }

  run(redis: Redis, keys: readonly string[], args: readonly ScriptArgument[]): Promise<unknown> {
    if (keys.length !== this.#keys) throw new RangeError(`script ${this.#name} takes ${this.#keys} keys`);
    const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[this.#name];
    if (command === undefined) throw new Error(`script ${this.#name} is not installed on this connection`);
    return command.call(redis, ...keys, ...args);
  }
}
