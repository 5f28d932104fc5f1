import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Message } from '../message.js';
import { closeRedis, DEFAULT_KEY_PREFIX, openRedis, type RedisConnectionOptions } from '../redis/redis-connection.js';
import { BatchWriter, readBatch, readFrame } from './bus-frames.js';
import type { ClusterListener, ClusterTransport, SharedChoice } from './cluster-transport.js';
import { RedisClusterKeys } from './redis-cluster-keys.js';
import { heartbeatScript, leaveScript } from './redis-cluster-scripts.js';
import { RedisOwnership } from './redis-ownership.js';
import { RedisShares } from './redis-shares.js';

export interface RedisClusterOptions extends RedisConnectionOptions {
  /** This node's id in the cluster (letters, digits, `.`, `_`, `-`); default: random. */
  readonly nodeId?: string;
  /** How often this node tells the others it is alive, in ms; default 2000. */
  readonly heartbeatIntervalMs?: number;
  /** How long a node may stay silent before the others take it for departed and adopt its sessions, in ms; default 10 000. */
  readonly nodeTimeoutMs?: number;
  /** How long a node taking over a session waits for the previous owner to hand it over, in ms; default 5000. */
  readonly handoverTimeoutMs?: number;
  /** Largest frame of messages sent in one PUBLISH, in bytes; default 256 KiB. */
  readonly maxBatchBytes?: number;
}

interface Settings {
  readonly nodeId: string;
  readonly heartbeatIntervalMs: number;
  readonly nodeTimeoutMs: number;
  readonly handoverTimeoutMs: number;
  readonly maxBatchBytes: number;
}

/**
 * Joins nodes through Redis: one pub/sub channel carries every node's messages and every session
 * handover, in the one order Redis executes them, and Lua scripts keep ownership and shared
 * subscriptions consistent. Resolves once both connections are up; rejects with a
 * RedisUnavailableError when Redis cannot be reached at start.
 */
export async function connectRedisCluster(options: RedisClusterOptions = {}): Promise<ClusterTransport> {
  const settings = resolveSettings(options);
  const commands = await openRedis(options, `cluster-${settings.nodeId}`);
  try {
    // Resubscribing is ours to do, so that we know when to resynchronise.
    const subscriber = await openRedis(options, `bus-${settings.nodeId}`, { autoResubscribe: false, commandTimeout: undefined });
    return new RedisClusterTransport(commands, subscriber, new RedisClusterKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX), settings);
  } catch (error) {
    await closeRedis(commands);
    throw error;
  }
}

class RedisClusterTransport implements ClusterTransport {
  readonly nodeId: string;
  readonly handoverTimeoutMs: number;
  readonly ownership: RedisOwnership;
  readonly shares: RedisShares;
  readonly #commands: Redis;
  readonly #subscriber: Redis;
  readonly #keys: RedisClusterKeys;
  readonly #settings: Settings;
  #listener: ClusterListener | undefined;
  #now: () => number = Date.now;
  #batch: BatchWriter | undefined;
  #flushScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #beaten = false;
  /** Subscribed to the bus on a live connection: set once SUBSCRIBE is through, cleared when the link drops. */
  #listening = false;

  constructor(commands: Redis, subscriber: Redis, keys: RedisClusterKeys, settings: Settings) {
    this.nodeId = settings.nodeId;
    this.handoverTimeoutMs = settings.handoverTimeoutMs;
    this.#commands = commands;
    this.#subscriber = subscriber;
    this.#keys = keys;
    this.#settings = settings;
    this.ownership = new RedisOwnership(commands, keys, settings.nodeId, settings.nodeTimeoutMs, () => this.#flush());
    this.shares = new RedisShares(commands, keys, settings.nodeId);
    heartbeatScript.install(commands);
    leaveScript.install(commands);
  }

  async join(listener: ClusterListener, now: () => number): Promise<void> {
    this.#listener = listener;
    this.#now = now;
    this.#subscriber.on('messageBuffer', (_channel: Buffer, frame: Buffer) => this.#receive(frame));
    this.#subscriber.on('ready', () => this.#resubscribe());
    this.#subscriber.on('close', () => (this.#listening = false));
    // Known alive before anything else, so no other node adopts what this one is about to own.
    await this.#beat();
    await this.#subscriber.subscribe(this.#keys.bus);
    this.#listening = true;
    this.#timer = setInterval(() => void this.#beat(), this.#settings.heartbeatIntervalMs);
    this.#timer.unref();
  }

  get connected(): boolean {
    return this.#listening && this.#commands.status === 'ready';
  }

  publish(seq: number, message: Message, shared: readonly SharedChoice[]): void {
    this.#batch ??= new BatchWriter(this.nodeId, this.#now());
    this.#batch.add(seq, message, shared);
    if (this.#batch.bytes >= this.#settings.maxBatchBytes) return this.#flush();
    if (this.#flushScheduled) return;
    // Everything published in this turn of the event loop leaves in one PUBLISH.
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  async leave(): Promise<void> {
    clearInterval(this.#timer);
    this.#flush();
    try {
      await leaveScript.run(this.#commands, [this.#keys.nodes, this.#keys.shares(this.nodeId)], [this.nodeId, this.#keys.bus]);
    } catch (error) {
      // Unannounced, the others notice this node's silence after the node timeout instead.
      this.#listener?.failed(error);
    }
    this.#listener = undefined;
    await Promise.all([closeRedis(this.#subscriber), closeRedis(this.#commands)]);
  }

  #flush(): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    this.#commands.publish(this.#keys.bus, batch.finish()).catch((error: unknown) => this.#listener?.failed(error));
  }

  #receive(frame: Buffer): void {
    const listener = this.#listener;
    if (listener === undefined) return;
    try {
      const event = readFrame(frame);
      switch (event.kind) {
        case 'batch':
          // Our own messages were routed here when they were published.
          if (event.node !== this.nodeId) for (const published of readBatch(event.node, event.reader, this.#now())) listener.published(published);
          return;
        case 'claim':
          return listener.claimed(event);
        case 'release':
          return listener.released(event);
        case 'share':
          if (event.node !== this.nodeId) listener.shareChanged(event);
          return;
        case 'leave':
          if (event.node !== this.nodeId) listener.nodeLeft(event.node);
          return;
      }
    } catch (error) {
      listener.failed(error);
    }
  }

  async #beat(): Promise<void> {
    try {
      const known = await heartbeatScript.run(this.#commands, [this.#keys.nodes], [this.nodeId, this.#settings.nodeTimeoutMs, this.#keys.bus, this.#keys.shares('')]);
      // Taken for departed while we could not beat: others may own our sessions now.
      if (known !== 1 && this.#beaten) this.#listener?.resync();
      this.#beaten = true;
    } catch (error) {
      this.#listener?.failed(error);
    }
  }

  #resubscribe(): void {
    if (this.#listener === undefined) return;
    this.#subscriber.subscribe(this.#keys.bus).then(
      () => {
        this.#listening = true;
        this.#listener?.resync();
      },
      (error: unknown) => this.#listener?.failed(error),
    );
  }
}

function resolveSettings(options: RedisClusterOptions): Settings {
  const nodeId = options.nodeId ?? randomBytes(6).toString('hex');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(nodeId)) throw new RangeError(`cluster node id "${nodeId}" must be 1 to 64 letters, digits, ".", "_" or "-"`);
  const settings: Settings = {
    nodeId,
    heartbeatIntervalMs: checked('heartbeatIntervalMs', options.heartbeatIntervalMs ?? 2000, 10, 60_000),
    nodeTimeoutMs: checked('nodeTimeoutMs', options.nodeTimeoutMs ?? 10_000, 30, 600_000),
    handoverTimeoutMs: checked('handoverTimeoutMs', options.handoverTimeoutMs ?? 5000, 10, 600_000),
    maxBatchBytes: checked('maxBatchBytes', options.maxBatchBytes ?? 256 * 1024, 1024, 64 * 1024 * 1024),
  };
  if (settings.nodeTimeoutMs < settings.heartbeatIntervalMs * 3) throw new RangeError('cluster nodeTimeoutMs must be at least three heartbeat intervals');
  return settings;
}

function checked(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`cluster ${name} must be an integer from ${min} to ${max}, not ${String(value)}`);
  return value;
}
