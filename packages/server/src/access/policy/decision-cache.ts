import { POLICY_ACTIONS, type Decision, type PolicyAction } from './types.js';

/** Default entries per action and connection: devices use few topics; 5 actions x 128 x ~100 B ≈ 64 KiB at worst. */
export const DEFAULT_CACHE_ENTRIES_PER_ACTION = 128;

const ACTION_SLOT: Readonly<Record<PolicyAction, number>> = Object.fromEntries(POLICY_ACTIONS.map((action, i) => [action, i])) as Record<PolicyAction, number>;

/**
 * Decisions by action and resource, bounded: when an action's map is full its oldest entry goes
 * (first in, first out: a hit costs one Map lookup and no reordering). Decisions are frozen and
 * shared, so a hit allocates nothing.
 */
export class DecisionCache {
  readonly #maps: (Map<string, Decision> | undefined)[] = [];
  readonly #maxPerAction: number;

  constructor(maxPerAction: number) {
    this.#maxPerAction = Math.max(0, Math.floor(maxPerAction));
  }

  get(action: PolicyAction, resource: string): Decision | undefined {
    return this.#maps[ACTION_SLOT[action]]?.get(resource);
  }

  set(action: PolicyAction, resource: string, decision: Decision): void {
    if (this.#maxPerAction === 0) return;
    const slot = ACTION_SLOT[action];
    let map = this.#maps[slot];
    if (map === undefined) {
      map = new Map();
      this.#maps[slot] = map;
    }
    if (map.size >= this.#maxPerAction) map.delete(map.keys().next().value as string);
    map.set(resource, decision);
  }

  get size(): number {
    return this.#maps.reduce((sum, map) => sum + (map?.size ?? 0), 0);
  }
}
