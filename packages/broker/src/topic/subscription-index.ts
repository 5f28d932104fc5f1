/** The sessions sharing one shared subscription (MQTT-4.8.2): each message goes to one of them. */
export class SharedGroup<T> {
  readonly name: string;
  /** The filter the members subscribed to, without `$share/{name}/`. */
  readonly pattern: string;
  readonly #members = new Map<string, T>();
  #order: string[] = [];
  #cursor = 0;

  constructor(name: string, pattern: string) {
    this.name = name;
    this.pattern = pattern;
  }

  get size(): number {
    return this.#members.size;
  }

  set(clientId: string, value: T): void {
    if (!this.#members.has(clientId)) this.#order.push(clientId);
    this.#members.set(clientId, value);
  }

  delete(clientId: string): boolean {
    if (!this.#members.delete(clientId)) return false;
    this.#order = this.#order.filter((id) => id !== clientId);
    return true;
  }

  /**
   * Round robin over the members, starting after the last one chosen; `accept` may pass over a
   * member (offline, say). When no member is accepted, the first one tried is returned.
   */
  pick(accept: (clientId: string, value: T) => boolean): { readonly clientId: string; readonly value: T } | undefined {
    const count = this.#order.length;
    if (count === 0) return undefined;
    let fallback: string | undefined;
    for (let tried = 0; tried < count; tried++) {
      const clientId = this.#order[(this.#cursor + tried) % count] as string;
      fallback ??= clientId;
      if (accept(clientId, this.#members.get(clientId) as T)) {
        this.#cursor = (this.#cursor + tried + 1) % count;
        return { clientId, value: this.#members.get(clientId) as T };
      }
    }
    this.#cursor = (this.#cursor + 1) % count;
    return { clientId: fallback as string, value: this.#members.get(fallback as string) as T };
  }

  /** Whether some member is accepted, without moving the round robin. */
  some(accept: (clientId: string) => boolean): boolean {
    for (const clientId of this.#order) if (accept(clientId)) return true;
    return false;
  }
}

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  subscribers: Map<string, T> | undefined;
  groups: Map<string, SharedGroup<T>> | undefined;
}

export interface MatchVisitor<T> {
  subscriber(clientId: string, value: T): void;
  group(group: SharedGroup<T>): void;
}

/**
 * Subscriptions by Topic Filter in a trie of levels, matched against a Topic Name by walking only
 * the branches that can match: the exact level, `+` and `#`. Pure: it knows nothing of sessions.
 */
export class SubscriptionIndex<T> {
  readonly #root: TrieNode<T> = newNode();
  #count = 0;

  /** Subscriptions held (a shared subscription counts once per member). */
  get size(): number {
    return this.#count;
  }

  add(pattern: string, clientId: string, value: T, shareGroup?: string): void {
    let node = this.#root;
    for (const level of pattern.split('/')) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (shareGroup === undefined) {
      node.subscribers ??= new Map();
      if (!node.subscribers.has(clientId)) this.#count++;
      node.subscribers.set(clientId, value);
      return;
    }
    node.groups ??= new Map();
    let group = node.groups.get(shareGroup);
    if (group === undefined) {
      group = new SharedGroup(shareGroup, pattern);
      node.groups.set(shareGroup, group);
    }
    const before = group.size;
    group.set(clientId, value);
    this.#count += group.size - before;
  }

  /** Removes one subscription; empty branches are pruned so memory follows the live filters. */
  remove(pattern: string, clientId: string, shareGroup?: string): boolean {
    const levels = pattern.split('/');
    const path: TrieNode<T>[] = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const child = node.children.get(level);
      if (child === undefined) return false;
      path.push(child);
      node = child;
    }
    let removed: boolean;
    if (shareGroup === undefined) {
      removed = node.subscribers?.delete(clientId) ?? false;
      if (node.subscribers?.size === 0) node.subscribers = undefined;
    } else {
      const group = node.groups?.get(shareGroup);
      removed = group?.delete(clientId) ?? false;
      if (group?.size === 0) node.groups?.delete(shareGroup);
      if (node.groups?.size === 0) node.groups = undefined;
    }
    if (!removed) return false;
    this.#count--;
    for (let depth = levels.length; depth > 0; depth--) {
      const current = path[depth] as TrieNode<T>;
      if (current.children.size > 0 || current.subscribers !== undefined || current.groups !== undefined) break;
      (path[depth - 1] as TrieNode<T>).children.delete(levels[depth - 1] as string);
    }
    return true;
  }

  /** The shared group subscribed to exactly this pattern, if it has members. */
  group(pattern: string, shareGroup: string): SharedGroup<T> | undefined {
    let node: TrieNode<T> | undefined = this.#root;
    for (const level of pattern.split('/')) {
      node = node.children.get(level);
      if (node === undefined) return undefined;
    }
    return node.groups?.get(shareGroup);
  }

  /** Visits every subscription whose filter matches the topic name (each once per filter). */
  match(topic: string, visitor: MatchVisitor<T>): void {
    const levels = topic.split('/');
    // MQTT-4.7.2-1: a filter starting with a wildcard does not match a topic starting with `$`.
    walk(this.#root, levels, 0, topic.charCodeAt(0) === 0x24, visitor);
  }
}

function walk<T>(node: TrieNode<T>, levels: readonly string[], index: number, dollar: boolean, visitor: MatchVisitor<T>): void {
  const wildcards = index > 0 || !dollar;
  if (wildcards) {
    // `#` matches the rest, including no level at all: `a/#` matches `a` (MQTT-4.7.1-1).
    const hash = node.children.get('#');
    if (hash !== undefined) emit(hash, visitor);
  }
  if (index === levels.length) {
    emit(node, visitor);
    return;
  }
  const exact = node.children.get(levels[index] as string);
  if (exact !== undefined) walk(exact, levels, index + 1, dollar, visitor);
  if (wildcards) {
    const plus = node.children.get('+');
    if (plus !== undefined) walk(plus, levels, index + 1, dollar, visitor);
  }
}

function emit<T>(node: TrieNode<T>, visitor: MatchVisitor<T>): void {
  if (node.subscribers !== undefined) for (const [clientId, value] of node.subscribers) visitor.subscriber(clientId, value);
  if (node.groups !== undefined) for (const group of node.groups.values()) visitor.group(group);
}

function newNode<T>(): TrieNode<T> {
  return { children: new Map(), subscribers: undefined, groups: undefined };
}
