import { cidrContains, parseAddress, parseCidr, type Address, type Cidr } from '../policy/cidr.js';
import { positiveInteger } from './checks.js';

export type BanKind = 'thing' | 'client-id' | 'address';

/** What is banned: a thing name, an MQTT client id, or a source address or CIDR block (`192.0.2.0/24`, `2001:db8::/48`). */
export interface BanTarget {
  readonly kind: BanKind;
  readonly value: string;
}

/** `flapping`: set by the flapping detector; `operator`: set by hand. */
export type BanReason = 'flapping' | 'operator';

export interface Ban {
  readonly target: BanTarget;
  readonly reason: BanReason;
  readonly createdAt: number;
  /** Epoch ms at which the ban ends; null: until it is removed. */
  readonly expiresAt: number | null;
  /** Who set it (an operator name), for the audit trail and `list`. */
  readonly by?: string;
  readonly note?: string;
}

/** What the gateway knows about a connection when it asks: only the address before TLS, all three at CONNECT. */
export interface BanQuery {
  readonly thing?: string;
  readonly clientId?: string;
  readonly address?: string;
}

export type BanResult = 'added' | 'kept' | 'full';

export interface BanListOptions {
  readonly maxBans?: number;
  /** Address blocks are matched one by one, so they are capped lower than the rest. */
  readonly maxNetworkBans?: number;
}

interface NetworkBan {
  readonly key: string;
  readonly cidr: Cidr;
  ban: Ban;
}

/**
 * Bans by thing name, client id, and source address or block, each with an optional expiry.
 * Expired bans are ignored at once and dropped lazily (and by `sweep`). When two bans hit one
 * target, the longer one stands: a flapping ban never shortens an operator's. Bounded: `add`
 * answers 'full' rather than grow past `maxBans` (only admitted things can trip the flapping
 * detector, so only operators could fill it).
 */
export class BanList {
  readonly #maxBans: number;
  readonly #maxNetworkBans: number;
  readonly #things = new Map<string, Ban>();
  readonly #clientIds = new Map<string, Ban>();
  /** Single addresses (/32, /128), by their bytes. */
  readonly #hosts = new Map<string, Ban>();
  #networks: NetworkBan[] = [];

  constructor(options: BanListOptions = {}) {
    this.#maxBans = positiveInteger('maxBans', options.maxBans ?? 100_000);
    this.#maxNetworkBans = positiveInteger('maxNetworkBans', options.maxNetworkBans ?? 1_000);
  }

  get size(): number {
    return this.#things.size + this.#clientIds.size + this.#hosts.size + this.#networks.length;
  }

  /** Whether any address or block is banned: lets the handshake path skip parsing the address. */
  get hasAddressBans(): boolean {
    return this.#hosts.size > 0 || this.#networks.length > 0;
  }

  /** Adds a ban; throws a RangeError for an address that is not an address or CIDR block. */
  add(ban: Ban, now: number): BanResult {
    const location = locate(ban.target);
    const existing = this.#find(location);
    if (existing !== undefined && isActive(existing, now) && outlasts(existing, ban)) return 'kept';
    if (existing === undefined && !this.#hasRoom(location, now)) return 'full';
    this.#store(location, ban);
    return 'added';
  }

  /** Removes the ban on exactly this target; true if there was one. */
  remove(target: BanTarget): boolean {
    const location = locate(target);
    if (location.store === 'networks') {
      const before = this.#networks.length;
      this.#networks = this.#networks.filter((n) => n.key !== location.key);
      return this.#networks.length !== before;
    }
    return this.#map(location.store).delete(location.key);
  }

  /** The ban in force for any of the query's identities, or undefined. */
  isBanned(query: BanQuery, now: number): Ban | undefined {
    if (query.thing !== undefined) {
      const ban = this.#active(this.#things, query.thing, now);
      if (ban !== undefined) return ban;
    }
    if (query.clientId !== undefined) {
      const ban = this.#active(this.#clientIds, query.clientId, now);
      if (ban !== undefined) return ban;
    }
    return query.address === undefined ? undefined : this.#addressBan(query.address, now);
  }

  /** Bans in force, things first, then client ids, addresses and blocks. */
  list(now: number): Ban[] {
    const all = [...this.#things.values(), ...this.#clientIds.values(), ...this.#hosts.values(), ...this.#networks.map((n) => n.ban)];
    return all.filter((ban) => isActive(ban, now));
  }

  /** Drops expired bans; returns how many. */
  sweep(now: number): number {
    const before = this.size;
    for (const map of [this.#things, this.#clientIds, this.#hosts]) {
      for (const [key, ban] of map) if (!isActive(ban, now)) map.delete(key);
    }
    this.#networks = this.#networks.filter((n) => isActive(n.ban, now));
    return before - this.size;
  }

  #addressBan(address: string, now: number): Ban | undefined {
    const parsed = parseAddress(address);
    if (parsed === null) return undefined;
    const host = this.#active(this.#hosts, addressKey(parsed), now);
    if (host !== undefined) return host;
    return this.#networks.find((n) => isActive(n.ban, now) && cidrContains(n.cidr, parsed))?.ban;
  }

  #active(map: Map<string, Ban>, key: string, now: number): Ban | undefined {
    const ban = map.get(key);
    if (ban === undefined || isActive(ban, now)) return ban;
    map.delete(key);
    return undefined;
  }

  #find(location: Location): Ban | undefined {
    if (location.store === 'networks') return this.#networks.find((n) => n.key === location.key)?.ban;
    return this.#map(location.store).get(location.key);
  }

  #hasRoom(location: Location, now: number): boolean {
    if (this.size >= this.#maxBans) this.sweep(now);
    if (this.size >= this.#maxBans) return false;
    if (location.store !== 'networks') return true;
    if (this.#networks.length >= this.#maxNetworkBans) this.sweep(now);
    return this.#networks.length < this.#maxNetworkBans;
  }

  #store(location: Location, ban: Ban): void {
    if (location.store !== 'networks') {
      this.#map(location.store).set(location.key, ban);
      return;
    }
    const existing = this.#networks.find((n) => n.key === location.key);
    if (existing !== undefined) existing.ban = ban;
    else this.#networks.push({ key: location.key, cidr: location.cidr, ban });
  }

  #map(store: 'things' | 'clientIds' | 'hosts'): Map<string, Ban> {
    return store === 'things' ? this.#things : store === 'clientIds' ? this.#clientIds : this.#hosts;
  }
}

type Location =
  | { readonly store: 'things' | 'clientIds' | 'hosts'; readonly key: string }
  | { readonly store: 'networks'; readonly key: string; readonly cidr: Cidr };

function locate(target: BanTarget): Location {
  switch (target.kind) {
    case 'thing':
      return { store: 'things', key: target.value };
    case 'client-id':
      return { store: 'clientIds', key: target.value };
    case 'address':
      return locateAddress(target.value);
  }
}

/** A plain address is a host ban; a block with a full-length prefix is too. Mapped IPv4 counts as IPv4. */
function locateAddress(value: string): Location {
  if (!value.includes('/')) {
    const address = parseAddress(value);
    if (address === null) throw new RangeError(`ban address ${JSON.stringify(value)} is not an IPv4 or IPv6 address`);
    return { store: 'hosts', key: addressKey(address) };
  }
  const cidr = parseCidr(value);
  if (typeof cidr === 'string') throw new RangeError(`ban address block ${JSON.stringify(value)} ${cidr}`);
  const key = addressKey(cidr.network);
  if (cidr.prefix === cidr.network.bytes.length * 8) return { store: 'hosts', key };
  return { store: 'networks', key: `${key}/${cidr.prefix}`, cidr };
}

/** Bytes as text: unambiguous between families, since IPv4 has 4 and IPv6 16. */
function addressKey(address: Address): string {
  return address.bytes.join('.');
}

function isActive(ban: Ban, now: number): boolean {
  return ban.expiresAt === null || ban.expiresAt > now;
}

function outlasts(existing: Ban, incoming: Ban): boolean {
  if (existing.expiresAt === null) return true;
  return incoming.expiresAt !== null && existing.expiresAt >= incoming.expiresAt;
}
