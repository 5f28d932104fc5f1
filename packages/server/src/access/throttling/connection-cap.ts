import { positiveInteger } from './checks.js';

export interface ConnectionCapOptions {
  /** Admitted device connections on this node. */
  readonly maxConnections: number;
  /** Live connections one thing may hold at once, under different client ids. */
  readonly maxConnectionsPerThing: number;
}

export type CapVerdict = 'ok' | 'server-full' | 'thing-full';

/** Live connections of one thing, by client id (two, briefly, while one takes the other over). */
interface ThingConnections {
  total: number;
  readonly byClientId: Map<string, number>;
}

/**
 * The node's cap on admitted device connections, and a per-thing cap. Called last in `admit`
 * (after bans, flapping and connect rate): `open` reserves a place, and the gateway calls `close`
 * once when that connection ends (its socket's 'close' event), or at once if a later step
 * refuses it. A CONNECT for a client id that is already connected takes the older connection over
 * (the engine sends it 0x8E) and frees its place, so it is always let through: a device whose old
 * TCP connection is half-open must not be locked out by it. Refusals: CONNACK 0x89 Server busy
 * for the node cap, 0x97 Quota exceeded for the thing cap (3.1.1: return code 3 for both).
 * Memory: one entry per connected thing, removed with its last connection.
 */
export class ConnectionCap {
  readonly #maxConnections: number;
  readonly #maxPerThing: number;
  readonly #things = new Map<string, ThingConnections>();
  #connections = 0;

  constructor(options: ConnectionCapOptions) {
    this.#maxConnections = positiveInteger('maxConnections', options.maxConnections);
    this.#maxPerThing = positiveInteger('maxConnectionsPerThing', options.maxConnectionsPerThing);
  }

  get connections(): number {
    return this.#connections;
  }

  connectionsOf(thing: string): number {
    return this.#things.get(thing)?.total ?? 0;
  }

  /** Reserves a place for a connection of `thing` under `clientId`, or says which cap is reached. */
  open(thing: string, clientId: string): CapVerdict {
    const live = this.#things.get(thing);
    // Parallel takeovers could pass together; the connect-rate limit, checked before, bounds them.
    const takeover = (live?.byClientId.get(clientId) ?? 0) > 0;
    if (!takeover) {
      if (this.#connections >= this.#maxConnections) return 'server-full';
      if ((live?.total ?? 0) >= this.#maxPerThing) return 'thing-full';
    }
    const entry = live ?? { total: 0, byClientId: new Map<string, number>() };
    entry.total++;
    entry.byClientId.set(clientId, (entry.byClientId.get(clientId) ?? 0) + 1);
    this.#things.set(thing, entry);
    this.#connections++;
    return 'ok';
  }

  /** Frees the place of one connection opened with `open`; a close without an open is ignored. */
  close(thing: string, clientId: string): void {
    const entry = this.#things.get(thing);
    const count = entry?.byClientId.get(clientId) ?? 0;
    if (entry === undefined || count === 0) return;
    if (count === 1) entry.byClientId.delete(clientId);
    else entry.byClientId.set(clientId, count - 1);
    entry.total--;
    this.#connections--;
    if (entry.total === 0) this.#things.delete(thing);
  }
}
