import { positiveInteger } from './checks.js';

/** What a `BoundedTable` needs to know about its entries. */
export interface EntryLifecycle<V> {
  /** A new entry for a key the table does not hold. */
  create(key: string, now: number): V;
  /**
   * True when forgetting the entry changes no later decision, because a fresh one made by `create`
   * would answer the same (a full bucket, an empty window). Only such entries are ever dropped.
   */
  isIdle(entry: V, now: number): boolean;
}

/** How many entries one insertion into a full table inspects, at most: keeps insertion O(1). */
const SCAN_LIMIT = 8;

/**
 * A map with a hard size limit whose entries are only forgotten when that is invisible (idle).
 * Lookups are one `Map.get`: nothing is reordered on the hot path. When the table is full, an
 * insertion looks at the next few entries under a rotating hand (the CLOCK algorithm) and takes the
 * place of the first idle one; if none is idle it creates nothing and returns undefined, and the
 * caller falls back to something shared (an overflow bucket) that can only be stricter.
 */
export class BoundedTable<V> {
  readonly maxEntries: number;
  readonly #lifecycle: EntryLifecycle<V>;
  readonly #entries = new Map<string, V>();
  #hand: Iterator<[string, V]> | undefined;

  constructor(maxEntries: number, lifecycle: EntryLifecycle<V>) {
    this.maxEntries = positiveInteger('maxEntries', maxEntries);
    this.#lifecycle = lifecycle;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  /** The key's entry, created if needed; undefined only when the table is full of active entries. */
  getOrCreate(key: string, now: number): V | undefined {
    const existing = this.#entries.get(key);
    if (existing !== undefined) return existing;
    if (this.#entries.size >= this.maxEntries && !this.#evictOne(now)) return undefined;
    const created = this.#lifecycle.create(key, now);
    this.#entries.set(key, created);
    return created;
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Drops every idle entry; returns how many. For a periodic job, so an idle fleet costs no memory. */
  sweep(now: number): number {
    let dropped = 0;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [key, entry] of this.#entries) {
      if (this.#lifecycle.isIdle(entry, now)) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  #evictOne(now: number): boolean {
    for (let i = 0; i < SCAN_LIMIT; i++) {
      let step = this.#hand?.next();
      if (step === undefined || step.done === true) {
        // Map iterators are live: they skip deleted entries and reach new ones, so the hand can be kept.
        this.#hand = this.#entries.entries();
        step = this.#hand.next();
        if (step.done === true) return false;
      }
      const [key, entry] = step.value;
      if (this.#lifecycle.isIdle(entry, now)) {
        this.#entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
