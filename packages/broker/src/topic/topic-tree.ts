interface TreeNode<T> {
  readonly children: Map<string, TreeNode<T>>;
  value: T | undefined;
}

/**
 * Values by Topic Name in a trie of levels, looked up by Topic Filter pattern: the mirror image of
 * the subscription index, used for retained messages. Pure.
 */
export class TopicTree<T> {
  readonly #root: TreeNode<T> = { children: new Map(), value: undefined };
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(topic: string): T | undefined {
    let node: TreeNode<T> | undefined = this.#root;
    for (const level of topic.split('/')) {
      node = node.children.get(level);
      if (node === undefined) return undefined;
    }
    return node.value;
  }

  set(topic: string, value: T): void {
    let node = this.#root;
    for (const level of topic.split('/')) {
      let child = node.children.get(level);
      if (child === undefined) {
        child = { children: new Map(), value: undefined };
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.value === undefined) this.#size++;
    node.value = value;
  }

  delete(topic: string): boolean {
    const levels = topic.split('/');
    const path: TreeNode<T>[] = [this.#root];
    for (const level of levels) {
      const child = (path[path.length - 1] as TreeNode<T>).children.get(level);
      if (child === undefined) return false;
      path.push(child);
    }
    const node = path[path.length - 1] as TreeNode<T>;
    if (node.value === undefined) return false;
    node.value = undefined;
    this.#size--;
    for (let depth = levels.length; depth > 0; depth--) {
      const current = path[depth] as TreeNode<T>;
      if (current.children.size > 0 || current.value !== undefined) break;
      (path[depth - 1] as TreeNode<T>).children.delete(levels[depth - 1] as string);
    }
    return true;
  }

  /** Every value whose topic the pattern matches (MQTT-4.7; `$` topics need a literal first level, MQTT-4.7.2-1). */
  match(pattern: string): T[] {
    const found: T[] = [];
    collect(this.#root, pattern.split('/'), 0, found);
    return found;
  }
}

function collect<T>(node: TreeNode<T>, levels: readonly string[], index: number, found: T[]): void {
  if (index === levels.length) {
    if (node.value !== undefined) found.push(node.value);
    return;
  }
  const level = levels[index] as string;
  if (level === '#') {
    // `#` matches the parent level too: `a/#` finds `a` (MQTT-4.7.1-1).
    if (index > 0 && node.value !== undefined) found.push(node.value);
    for (const [name, child] of node.children) if (index > 0 || !name.startsWith('$')) collectAll(child, found);
    return;
  }
  if (level === '+') {
    for (const [name, child] of node.children) if (index > 0 || !name.startsWith('$')) collect(child, levels, index + 1, found);
    return;
  }
  const child = node.children.get(level);
  if (child !== undefined) collect(child, levels, index + 1, found);
}

function collectAll<T>(node: TreeNode<T>, found: T[]): void {
  if (node.value !== undefined) found.push(node.value);
  for (const child of node.children.values()) collectAll(child, found);
}
