import type { QueuedMessage } from './queue-record.js';

export interface OfflineQueueLimits {
  /** Messages kept; the oldest are dropped beyond it. */
  readonly maxEntries: number;
  /** Bytes of queued records (as stored on disk, which bounds memory too); the oldest are dropped beyond it. */
  readonly maxBytes: number;
}

export const DEFAULT_QUEUE_LIMITS: OfflineQueueLimits = { maxEntries: 10_000, maxBytes: 16 * 1024 * 1024 };

/** Removed entries are compacted out of the array once this many have accumulated at its front. */
const SPARE_SLOTS = 1024;

/**
 * The queue's messages in memory, oldest first, with the byte size of each one's record. Removal
 * happens only at the front (acknowledged or dropped), so a moving start index keeps it O(1).
 */
export class QueueEntries {
  #items: { readonly message: QueuedMessage; readonly size: number }[] = [];
  #start = 0;
  #bytes = 0;

  get size(): number {
    return this.#items.length - this.#start;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get oldest(): QueuedMessage | undefined {
    return this.#items[this.#start]?.message;
  }

  push(message: QueuedMessage, size: number): void {
    this.#items.push({ message, size });
    this.#bytes += size;
  }

  /** Removes the entries with `seq <= through`; returns how many. */
  removeThrough(through: number): number {
    let removed = 0;
    for (let oldest = this.oldest; oldest !== undefined && oldest.seq <= through; oldest = this.oldest) {
      this.#removeFirst();
      removed += 1;
    }
    return removed;
  }

  /** Removes the `count` oldest entries; returns how many there were. */
  removeOldest(count: number): number {
    let removed = 0;
    while (removed < count && this.size > 0) {
      this.#removeFirst();
      removed += 1;
    }
    return removed;
  }

  /** Drops the oldest entries until the limits hold; returns how many. */
  fit(limits: OfflineQueueLimits): number {
    let removed = 0;
    while (this.size > 0 && (this.size > limits.maxEntries || this.#bytes > limits.maxBytes)) {
      this.#removeFirst();
      removed += 1;
    }
    return removed;
  }

  peek(max: number): QueuedMessage[] {
    const end = Math.min(this.#items.length, this.#start + Math.max(0, Math.floor(max)));
    return this.#items.slice(this.#start, end).map((item) => item.message);
  }

  *[Symbol.iterator](): IterableIterator<QueuedMessage> {
    for (const item of this.#items.slice(this.#start)) yield item.message;
  }

  #removeFirst(): void {
    this.#bytes -= this.#items[this.#start]?.size ?? 0;
    this.#start += 1;
    if (this.#start >= SPARE_SLOTS && this.#start * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#start);
      this.#start = 0;
    }
  }
}
