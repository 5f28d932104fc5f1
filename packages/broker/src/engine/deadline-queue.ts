interface Entry {
  readonly key: string;
  readonly at: number;
}

/**
 * Keys due at given times (epoch ms), in a binary heap: setting a key again or deleting it leaves
 * a stale entry that is skipped when it surfaces. Pure: the caller passes the time.
 */
export class DeadlineQueue {
  readonly #due = new Map<string, number>();
  #heap: Entry[] = [];

  get size(): number {
    return this.#due.size;
  }

  set(key: string, at: number): void {
    this.#due.set(key, at);
    this.#heap.push({ key, at });
    this.#up(this.#heap.length - 1);
    // Stale entries are dropped in bulk when they outnumber the live ones, so memory stays bounded.
    if (this.#heap.length > 64 && this.#heap.length > this.#due.size * 2) this.#rebuild();
  }

  /** When the key is due, if it is. */
  at(key: string): number | undefined {
    return this.#due.get(key);
  }

  delete(key: string): boolean {
    return this.#due.delete(key);
  }

  /** Removes and returns the keys due at or before `now`, earliest first. */
  takeDue(now: number): string[] {
    const due: string[] = [];
    while (this.#heap.length > 0 && (this.#heap[0] as Entry).at <= now) {
      const entry = this.#pop();
      if (this.#due.get(entry.key) !== entry.at) continue;
      this.#due.delete(entry.key);
      due.push(entry.key);
    }
    return due;
  }

  #rebuild(): void {
    this.#heap = [...this.#due].map(([key, at]) => ({ key, at }));
    for (let index = (this.#heap.length >> 1) - 1; index >= 0; index--) this.#down(index);
  }

  #pop(): Entry {
    const top = this.#heap[0] as Entry;
    const last = this.#heap.pop() as Entry;
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#down(0);
    }
    return top;
  }

  #up(index: number): void {
    const heap = this.#heap;
    let child = index;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if ((heap[parent] as Entry).at <= (heap[child] as Entry).at) return;
      [heap[parent], heap[child]] = [heap[child] as Entry, heap[parent] as Entry];
      child = parent;
    }
  }

  #down(index: number): void {
    const heap = this.#heap;
    let parent = index;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < heap.length && (heap[left] as Entry).at < (heap[smallest] as Entry).at) smallest = left;
      if (right < heap.length && (heap[right] as Entry).at < (heap[smallest] as Entry).at) smallest = right;
      if (smallest === parent) return;
      [heap[parent], heap[smallest]] = [heap[smallest] as Entry, heap[parent] as Entry];
      parent = smallest;
    }
  }
}
