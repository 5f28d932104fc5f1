import { SubscriptionIndex, type SharedGroup } from '../topic/subscription-index.js';
import type { ShareEntry, ShareUpdate } from './cluster-transport.js';

/**
 * Which nodes have members of which shared subscriptions, and whether one of them is connected:
 * the trie of filters holds node ids where a plain index holds client ids. A node publishing a
 * message picks one node per matching group from it; that node picks the member. Pure.
 */
export class SharedNodes {
  readonly #index = new SubscriptionIndex<boolean>();
  readonly #byNode = new Map<string, Map<string, ShareUpdate>>();
  /** Updates heard while a snapshot is being read, replayed over it (each sets a whole entry, so order is all that matters). */
  #pending: ShareUpdate[] | undefined;

  /** Applies another node's update, or holds it back while a snapshot is read. */
  update(update: ShareUpdate): void {
    if (this.#pending !== undefined) this.#pending.push(update);
    else this.set(update);
  }

  /** Applies an update at once (this node's own entries). */
  set(update: ShareUpdate): void {
    const key = `${update.group}\u0000${update.pattern}`;
    let entries = this.#byNode.get(update.node);
    if (update.online === undefined) {
      if (entries?.delete(key) !== true) return;
      if (entries.size === 0) this.#byNode.delete(update.node);
      this.#index.remove(update.pattern, update.node, update.group);
      return;
    }
    if (entries === undefined) {
      entries = new Map();
      this.#byNode.set(update.node, entries);
    }
    entries.set(key, update);
    this.#index.add(update.pattern, update.node, update.online, update.group);
  }

  beginSnapshot(): void {
    this.#pending ??= [];
  }

  /** Replaces every other node's entries with the snapshot, then replays what was heard meanwhile. */
  endSnapshot(entries: readonly ShareEntry[], self: string): void {
    for (const node of [...this.#byNode.keys()]) if (node !== self) this.removeNode(node);
    for (const entry of entries) if (entry.node !== self) this.set(entry);
    this.abortSnapshot();
  }

  /** The snapshot could not be read: apply what was heard anyway. */
  abortSnapshot(): void {
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    for (const update of pending) this.set(update);
  }

  removeNode(node: string): void {
    for (const entry of [...(this.#byNode.get(node)?.values() ?? [])]) this.set({ ...entry, online: undefined });
  }

  /** Visits each shared group whose filter matches the topic; its members are node ids. */
  match(topic: string, visit: (group: SharedGroup<boolean>) => void): void {
    this.#index.match(topic, { subscriber: () => undefined, group: visit });
  }
}
